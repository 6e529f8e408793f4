"""The API through the real app and the small trained models: lists, access rules, errors."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from salespilot.serving.errors import ApiError


def _err(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"]
    assert "Traceback" not in r.text
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# -- the priority list ---------------------------------------------------------------------------


def test_rep_gets_ranked_list_with_reasons(client, state, people):
    r = client.get(f"/v1/reps/{people.rep}/priorities?limit=50", headers=people.h("rep"))
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["items"]
    assert body["rep_id"] == people.rep and body["team"] == people.team
    assert body["total"] == len(state.rep_items[people.rep]) and len(items) == min(
        50, body["total"]
    )
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    stakes = [i["value_at_stake"] for i in items]
    assert stakes == sorted(stakes, reverse=True)
    assert body["model_versions"]["win_probability"] is not None
    assert body["data"]["content_hash"] == state.content_hash
    assert pd.Timestamp(body["as_of"]) == state.as_of.tz_localize("UTC")  # +00:00 served
    for it in items:
        assert 0 <= it["score"] <= 1
        w = 1.0  # default weights
        assert it["value_at_stake"] == pytest.approx(
            w * it["score"] * it["value"], rel=1e-4, abs=0.02
        )
        assert it["grade"] in "ABCD" and it["next_step"]
        assert it["trend"]["direction"] in ("new", "improving", "steady", "declining")
        for warning in it["warnings"]:
            assert warning["code"] and warning["message"] and isinstance(warning["evidence"], dict)
        for f in it["factors"]["positive"]:
            assert f["contribution"] > 0 and f["text"]
        for f in it["factors"]["negative"]:
            assert f["contribution"] < 0 and f["text"]
    grades = [i["grade"] for i in items]
    assert grades == sorted(grades)  # A before B before C before D
    kinds = {i.kind for i in state.rep_items[people.rep]}
    assert "deal" in kinds


def test_handed_over_items_carry_the_hand_over_note_in_the_new_owners_list(client, state, people):
    from salespilot.targets.handover import handover_risk

    risk = handover_risk(state.history, as_of=state.as_of)
    assert len(risk) > 0  # the demo's leavers hand deals and customers over
    lists = {}
    for r in risk.itertuples():
        if r.owner_rep_id not in lists:
            got = client.get(
                f"/v1/reps/{r.owner_rep_id}/priorities?limit=500", headers=people.h("admin")
            )
            assert got.status_code == 200, got.text
            lists[r.owner_rep_id] = {it["entity_id"]: it for it in got.json()["items"]}
        item = lists[r.owner_rep_id].get(r.id)
        assert item is not None, (r.kind, r.id)  # whatever its score or churn risk
        h = item["handover"]
        assert h["previous_owner_rep_id"] == r.previous_owner
        assert h["missing"] == list(r.missing) and h["previous_owner_left"] == r.previous_owner_left
        assert f"Taken over from {r.previous_owner}" in h["note"]
        assert "hand-over note" in item["next_step"]
    noted = {
        (it["kind"], e) for items in lists.values() for e, it in items.items() if it["handover"]
    }
    assert noted == set(zip(risk["kind"], risk["id"], strict=True))
    # the rest of the list has no note
    assert all(
        it["handover"] is None
        for it in client.get(
            f"/v1/reps/{people.rep}/priorities?limit=500", headers=people.h("admin")
        ).json()["items"]
        if (it["kind"], it["entity_id"]) not in noted
    )


def test_best_time_is_in_contact_and_rep_zones(client, state, people):
    items = client.get(
        f"/v1/reps/{people.rep}/priorities?limit=50", headers=people.h("rep")
    ).json()["items"]
    timed = [i["best_time"] for i in items if i["best_time"]]
    assert timed, "no item has a best time"
    for bt in timed:
        c_local = pd.Timestamp(bt["contact_local_time"])
        r_local = pd.Timestamp(bt["rep_local_time"])
        assert c_local == r_local  # the same instant, two zones
        assert c_local.tz is not None and r_local.tz is not None
        assert bt["contact_timezone"] == state.contact_zone[bt["contact_id"]]
        assert c_local.tz_convert(bt["contact_timezone"]).hour == c_local.hour
        assert 8 <= c_local.hour < 18  # working hours, contact's local time
        assert c_local.weekday() < 5
        assert c_local > state.as_of.tz_localize("UTC")
        assert 0 <= bt["connect_probability"] <= 1


def test_limit_and_as_of(client, state, people):
    r = client.get(f"/v1/reps/{people.rep}/priorities?limit=3", headers=people.h("rep"))
    assert len(r.json()["items"]) == min(3, len(state.rep_items[people.rep]))
    earlier = (state.as_of - pd.Timedelta(days=14)).isoformat()
    r = client.get(
        f"/v1/reps/{people.rep}/priorities", params={"as_of": earlier}, headers=people.h("rep")
    )
    assert r.status_code == 200, r.text
    # floored to the hour, so nearby instants share one rebuild
    assert pd.Timestamp(r.json()["as_of"]) == pd.Timestamp(earlier).floor("h").tz_localize("UTC")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "validation_error"),
        ("limit=abc", "validation_error"),
        ("limit=100000", "validation_error"),
        ("as_of=yesterday", "validation_error"),
        ("as_of=2999-01-01T00:00:00", "as_of_out_of_range"),
    ],
)
def test_bad_parameters_are_422(client, people, query, code):
    r = client.get(f"/v1/reps/{people.rep}/priorities?{query}", headers=people.h("rep"))
    _err(r, 422, code)


# -- access per role -------------------------------------------------------------------------------


def test_list_access_per_role(client, people):
    url = "/v1/reps/{}/priorities"
    ok = [("rep", people.rep), ("manager", people.rep), ("manager", people.teammate),
          ("admin", people.rep), ("admin", people.outsider), ("other_manager", people.outsider)]  # fmt: skip
    for who, rep in ok:
        assert client.get(url.format(rep), headers=people.h(who)).status_code == 200, (who, rep)
    denied = [("rep", people.teammate), ("rep", people.outsider), ("outsider", people.rep),
              ("manager", people.outsider), ("other_manager", people.rep)]  # fmt: skip
    for who, rep in denied:
        _err(client.get(url.format(rep), headers=people.h(who)), 403, "forbidden")
    _err(client.get(url.format("R_NOBODY"), headers=people.h("admin")), 404, "rep_not_found")
    _err(client.get(url.format("R_NOBODY"), headers=people.h("manager")), 403, "forbidden")
    _err(client.get(url.format(people.rep)), 401, "missing_token")


def _my_contact(state, rep: str) -> str:
    return next(c for c, a in state.contact_account.items() if state.account_owner.get(a) == rep)


def test_best_times_access_and_grid(client, state, people):
    contact = _my_contact(state, people.rep)
    r = client.get(f"/v1/contacts/{contact}/best-times", headers=people.h("rep"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contact_timezone"] == state.contact_zone[contact]
    grid = body["grid"]
    assert len(grid) == 7 and all(len(row) == 24 for row in grid)
    probs = [p for row in grid for p in row if p is not None]
    assert len(probs) >= 24 * 5 and all(0 <= p <= 1 for p in probs)
    top = body["top_slots"]
    assert 1 <= len(top) <= 5
    assert [s["connect_probability"] for s in top] == sorted(
        (s["connect_probability"] for s in top), reverse=True
    )
    for s in top:
        assert grid[s["weekday"]][s["hour"]] == pytest.approx(s["connect_probability"], abs=1e-4)
    assert (
        client.get(f"/v1/contacts/{contact}/best-times", headers=people.h("manager")).status_code
        == 200
    )
    _err(client.get(f"/v1/contacts/{contact}/best-times", headers=people.h("outsider")), 403)
    _err(client.get(f"/v1/contacts/{contact}/best-times", headers=people.h("other_manager")), 403)
    _err(
        client.get("/v1/contacts/NOPE/best-times", headers=people.h("admin")),
        404,
        "contact_not_found",
    )


def test_at_risk_scopes(client, state, people):
    r = client.get("/v1/accounts/at-risk?limit=500", headers=people.h("admin"))
    assert r.status_code == 200
    every = r.json()["items"]
    stakes = [a["value_at_stake"] for a in every]
    assert stakes == sorted(stakes, reverse=True) and len(every) > 0
    mine = client.get("/v1/accounts/at-risk?limit=500", headers=people.h("rep")).json()["items"]
    assert {a["owner_rep_id"] for a in mine} <= {people.rep}
    team = client.get("/v1/accounts/at-risk?limit=500", headers=people.h("manager")).json()
    assert team["team"] == people.team and {a["team"] for a in team["items"]} <= {people.team}
    assert len(team["items"]) == sum(a["team"] == people.team for a in every)
    _err(
        client.get(f"/v1/accounts/at-risk?team={people.other_team}", headers=people.h("manager")),
        403,
    )
    r = client.get(f"/v1/accounts/at-risk?team={people.other_team}", headers=people.h("admin"))
    assert r.status_code == 200 and {a["team"] for a in r.json()["items"]} <= {people.other_team}
    _err(
        client.get("/v1/accounts/at-risk?team=Nowhere", headers=people.h("admin")),
        404,
        "team_not_found",
    )
    _err(client.get("/v1/accounts/at-risk?limit=-1", headers=people.h("admin")), 422)


def test_explanations_add_up_to_raw_score(client, state, people):
    deal = next(i for i in state.rep_items[people.rep] if i.kind == "deal")
    r = client.get(f"/v1/explanations/win_probability/{deal.entity_id}", headers=people.h("rep"))
    assert r.status_code == 200, r.text
    e = r.json()
    total = e["base_value"] + sum(c["contribution"] for c in e["contributions"])
    assert total == pytest.approx(e["raw_score"], abs=1e-6)
    assert e["probability"] == pytest.approx(deal.score, abs=1e-6)
    model = state.model("win_probability")
    assert {c["feature"] for c in e["contributions"]} == set(model.features)
    assert all(c["readable_name"] == model.readable_names[c["feature"]] for c in e["contributions"])
    # the served raw score is the booster's own
    i = state.win.row(deal.entity_id)
    assert e["raw_score"] == pytest.approx(float(state.win.raw[i]), abs=1e-9)
    _err(
        client.get(
            f"/v1/explanations/win_probability/{deal.entity_id}", headers=people.h("outsider")
        ),
        403,
    )
    _err(
        client.get("/v1/explanations/win_probability/NOPE", headers=people.h("admin")),
        404,
        "entity_not_found",
    )
    _err(
        client.get(f"/v1/explanations/not_a_model/{deal.entity_id}", headers=people.h("admin")), 422
    )


def test_explanations_for_churn_and_contact_time(client, state, people):
    acc = state.at_risk[0].account_id
    e = client.get(f"/v1/explanations/churn_risk/{acc}", headers=people.h("admin")).json()
    assert e["base_value"] + sum(c["contribution"] for c in e["contributions"]) == pytest.approx(
        e["raw_score"], abs=1e-6
    )
    contact = _my_contact(state, people.rep)
    r = client.get(f"/v1/explanations/contact_time/{contact}", headers=people.h("rep"))
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["base_value"] + sum(c["contribution"] for c in e["contributions"]) == pytest.approx(
        e["raw_score"], abs=1e-6
    )


def test_models_endpoint_is_admin_only(client, people):
    r = client.get("/v1/models", headers=people.h("admin"))
    assert r.status_code == 200
    body = r.json()
    names = {m["name"] for m in body["models"]}
    assert names == {"win_probability", "churn_risk", "contact_time"}
    for m in body["models"]:
        assert m["loaded"] and m["version"] and m["trained_at"] and not m["stale"]
        assert "roc_auc" in m["metrics"]
        assert m["readiness"]["verdict"] in {"ready", "usable", "not_ready"}
        assert m["readiness"]["reasons"]
    verdicts = {m["name"]: m["readiness"]["verdict"] for m in body["models"]}
    assert verdicts["win_probability"] == "ready"
    won_lost = {m["name"]: m["readiness"]["won_vs_lost"] for m in body["models"]}
    assert won_lost["churn_risk"] is None and won_lost["contact_time"] is None
    win = won_lost["win_probability"]  # won against lost among the closed test deals
    assert win["auc"] > win["age_baseline_auc"] and win["gain_interval"][0] > 0
    assert body["degraded"] is False
    _err(client.get("/v1/models", headers=people.h("rep")), 403, "admin_only")
    _err(client.get("/v1/models", headers=people.h("manager")), 403, "admin_only")


def test_ready_reports_versions(client):
    r = client.get("/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["degraded"] is False
    assert all(body["models"].values())


def test_unhandled_errors_are_500_json_without_trace(client, people, monkeypatch):
    import salespilot.serving.routes as routes

    def boom(*a, **k):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(routes, "at_risk_accounts", boom)
    c = TestClient(client.app, raise_server_exceptions=False)  # no lifespan: keeps the state
    r = c.get("/v1/accounts/at-risk", headers=people.h("admin"))
    err = _err(r, 500, "internal_error")
    assert "secret internal detail" not in r.text and "RuntimeError" not in err["message"]


def test_api_error_shape():
    e = ApiError(404, "No rep with id 'X'.", code="rep_not_found", rep_id="X")
    assert (e.status_code, e.code, e.details) == (404, "rep_not_found", {"rep_id": "X"})
