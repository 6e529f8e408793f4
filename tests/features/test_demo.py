"""The demo generator: contract tables, determinism, planted effects, calibrated truth."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salespilot.features.demo import DemoKnobs, generate_history
from salespilot.features.demo.truth import (
    contact_profile,
    oracle_attempt,
    oracle_churn,
    oracle_win,
    read_meta,
    read_truth,
)
from salespilot.features.loader import load_history
from salespilot.features.pit import observed_end
from salespilot.features.schema import TABLES

END = pd.Timestamp("2026-06-30")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read(folder: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])
    for col in TABLES[name].timestamp_columns:
        df[col] = pd.to_datetime(df[col])
    return df


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate_history(out, reps=6, months=4, seed=3, end=END)
    return out


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    again = tmp_path / "again"
    generate_history(again, reps=6, months=4, seed=3, end=END)
    assert _hashes(small) == _hashes(again)
    other = tmp_path / "other"
    generate_history(other, reps=6, months=4, seed=4, end=END)
    assert _hashes(other)["activities.csv"] != _hashes(small)["activities.csv"]


def test_a_run_split_in_two_ranges_of_days_writes_the_same_history(small, tmp_path):
    """What-if replays (bench/insights.py) run the first days, copy the state, run the rest."""
    from salespilot.features.demo.generator import Simulation
    from salespilot.features.demo.writer import HistoryWriter

    out = tmp_path / "split"
    sim = Simulation(
        reps=6, months=4, seed=3, end=END, knobs=DemoKnobs(), writer=HistoryWriter(out, "csv")
    )
    sim.meta = {"seed": 3, "reps": 6, "months": 4, "format": "csv"}
    sim.seed_world(6)
    sim.run(range(50))
    sim.run(range(50, sim.days))
    sim.finish()
    assert _hashes(out) == _hashes(small)


def test_writes_every_contract_table_with_its_columns(demo_history_dir):
    for name, schema in TABLES.items():
        df = _read(demo_history_dir, name)
        assert list(df.columns) == list(schema.column_names), name
        assert not df.duplicated(list(schema.key)).any(), name
        assert len(df) > 0, name
    for name in ("opportunities", "attempts", "churn", "contact_profiles", "opportunity_latent"):
        assert (demo_history_dir / "truth" / f"{name}.csv").exists()


def test_nothing_happens_at_or_after_end(demo_history_dir):
    for name, schema in TABLES.items():
        df = _read(demo_history_dir, name)
        for col in schema.event_timestamp_columns:
            assert (df[col].dropna() < END).all(), (name, col)


def test_references_and_enums_hold(demo_history_dir):
    t = {n: _read(demo_history_dir, n) for n in TABLES}
    for name, schema in TABLES.items():
        for col in schema.columns:
            vals = t[name][col.name].dropna()
            if col.references:
                ref_table, ref_col = col.references
                assert vals.isin(t[ref_table][ref_col]).all(), (name, col.name)
            if col.allowed:
                assert vals.isin(col.allowed).all(), (name, col.name)
    o = t["opportunities"]
    closed = o["status"] != "open"
    assert o.loc[closed, "closed_at"].notna().all()
    assert (o.loc[closed, "closed_at"] >= o.loc[closed, "created_at"]).all()
    assert o.loc[~closed, "closed_at"].isna().all()


def test_volumes_are_realistic(demo_history_dir):
    o = _read(demo_history_dir, "opportunities")
    a = _read(demo_history_dir, "activities")
    deals_per_rep_month = len(o) / 20 / 12
    assert 7 <= deals_per_rep_month <= 16
    closed = o[o["status"] != "open"]
    assert 0.2 <= (closed["status"] == "won").mean() <= 0.4
    assert 15 <= a["opportunity_id"].notna().sum() / len(o) <= 70


def test_csv_and_parquet_load_to_the_same_history(tmp_path):
    generate_history(tmp_path / "c", reps=3, months=2, seed=1, end=END)
    generate_history(tmp_path / "p", reps=3, months=2, seed=1, end=END, fmt="parquet")
    assert sorted(p.name for p in (tmp_path / "p").glob("*.parquet")) == sorted(
        f"{n}.parquet" for n in TABLES
    )
    csv, parquet = load_history(tmp_path / "c", now=END), load_history(tmp_path / "p", now=END)
    assert csv.content_hash() == parquet.content_hash()
    assert read_truth(tmp_path / "p", "opportunities").equals(
        read_truth(tmp_path / "c", "opportunities")
    )


def test_loads_and_validates(demo_history):
    assert len(demo_history.opportunities) > 1000
    assert observed_end(demo_history) < END
    for name in TABLES:
        assert demo_history.table(name) is not None, name


def test_oracle_lookups(demo_history_dir):
    o = _read(demo_history_dir, "opportunities")
    rows = pd.DataFrame({"opportunity_id": o["opportunity_id"], "as_of": o["created_at"]})
    # strictly before: at the creation instant the deal is not known yet
    assert oracle_win(demo_history_dir, rows).isna().all()
    rows["as_of"] = o["created_at"] + pd.Timedelta(seconds=1)
    p = oracle_win(demo_history_dir, rows)
    assert p.between(0, 1).all()
    assert p.index.equals(rows.index)
    a = _read(demo_history_dir, "activities")
    attempts = a[(a["direction"] == "outbound") & a["channel"].isin(["call", "email"])]
    pa_ = oracle_attempt(demo_history_dir, attempts["activity_id"])
    assert pa_.notna().all() and pa_.between(0, 1).all()
    others = a[~a.index.isin(attempts.index)]
    assert oracle_attempt(demo_history_dir, others["activity_id"]).isna().all()
    prof = contact_profile(demo_history_dir)
    assert len(prof) == 168 * len(_read(demo_history_dir, "contacts"))
    churn = read_truth(demo_history_dir, "churn")
    first = churn.iloc[:50]
    r = pd.DataFrame({"account_id": first["account_id"], "as_of": first["period_start"]})
    p7 = oracle_churn(demo_history_dir, r, 7)
    assert np.allclose(p7.to_numpy(), first["p_churn"].to_numpy())
    assert np.allclose(oracle_churn(demo_history_dir, r, 7, method="realized"), p7)
    p30 = oracle_churn(demo_history_dir, r, 30, method="realized")
    p90 = oracle_churn(demo_history_dir, r, 90, method="realized")
    # an account that churned in its first week has no later periods: no more risk after it
    assert (p90 >= p30).all() and (p30 >= p7).all() and (p30 > p7).mean() > 0.9
    assert (oracle_churn(demo_history_dir, r.assign(account_id="nobody"), 30) == 0).all()
    expected30 = oracle_churn(demo_history_dir, r, 30)
    assert (expected30 > p7).all() and expected30.between(0, 1).all()


def test_knobs_are_a_dataclass_with_defaults():
    k = DemoKnobs()
    assert 0.1 < k.strong_source_share < 0.3
    assert dataclasses.replace(k, bad_handover_share=1.0).bad_handover_share == 1.0


# ---------------------------------------------------------------- internal consistency


def test_stage_changes_agree_with_deals_and_truth(demo_history):
    o, sc = demo_history.opportunities, demo_history.stage_changes
    first = sc.sort_values("changed_at").groupby("opportunity_id").first()
    assert (first["stage"] == "qualification").all()
    assert (
        first["changed_at"] == o.set_index("opportunity_id").loc[first.index, "created_at"]
    ).all()
    last = sc.sort_values("changed_at").groupby("opportunity_id").last()
    closed = o[o["status"] != "open"].set_index("opportunity_id")
    assert (last.loc[closed.index, "stage"] == "closed_" + closed["status"]).all()
    assert (last.loc[closed.index, "changed_at"] == closed["closed_at"]).all()


def test_no_outbound_touch_after_a_deal_closed(demo_history):
    a, o = demo_history.activities, demo_history.opportunities
    m = a.merge(o[["opportunity_id", "closed_at"]], on="opportunity_id")
    late = m[(m["direction"] == "outbound") & (m["occurred_at"] >= m["closed_at"])]
    assert late.empty


def test_churn_draws_match_subscriptions(demo_history_dir, demo_history):
    churn = read_truth(demo_history_dir, "churn")
    subs = demo_history.subscriptions
    churned = churn[churn["churned"]]
    assert len(churned) > 20
    ends = subs.dropna(subset=["ended_at"]).groupby("account_id")["ended_at"].apply(set)
    for row in churned.itertuples():
        assert any(row.period_start <= e < row.period_end for e in ends[row.account_id])
    # a subscription ends only through a churn draw
    drawn = churned.groupby("account_id")["period_start"].apply(list)
    for acc, e in subs.dropna(subset=["ended_at"])[["account_id", "ended_at"]].itertuples(
        index=False
    ):
        assert any(ps <= e < ps + pd.Timedelta(days=7) for ps in drawn[acc])


# ---------------------------------------------------------------- planted effects


def _won(df: pd.DataFrame) -> float:
    return float((df["status"] == "won").mean())


def test_strong_lead_source_is_a_fifth_of_leads_and_converts_far_better(demo_history):
    o = demo_history.opportunities
    share = (o["lead_source"] == "referral").mean()
    assert 0.14 <= share <= 0.23
    closed = o[o["status"] != "open"]
    ref, rest = (
        closed[closed["lead_source"] == "referral"],
        closed[closed["lead_source"] != "referral"],
    )
    assert _won(ref) > 1.4 * _won(rest)


def test_regions_differ_in_price_and_cycle(demo_history):
    o = demo_history.opportunities.merge(
        demo_history.reps[["rep_id", "team", "region"]], left_on="owner_rep_id", right_on="rep_id"
    )
    won = o[o["status"] == "won"].assign(cycle=lambda d: (d["closed_at"] - d["created_at"]).dt.days)
    by_team = won.groupby("team")[["amount", "cycle"]].median()
    assert by_team.loc["NA Enterprise", "amount"] > 5 * by_team.loc["APAC Velocity", "amount"]
    assert by_team.loc["NA Enterprise", "cycle"] > 2 * by_team.loc["APAC Velocity", "cycle"]


def test_summer_dip_in_new_deals(demo_history):
    created = demo_history.opportunities["created_at"]
    per_month = created.groupby(created.dt.month).size()
    assert per_month.loc[[7, 8]].mean() < 0.9 * per_month.loc[[9, 10, 11]].mean()


def test_repeated_postponements_come_before_lost_deals(demo_history):
    a, o = demo_history.activities, demo_history.opportunities
    meet = a[a["channel"].isin(["meeting", "demo"]) & a["opportunity_id"].notna()]
    post = meet[meet["outcome"] == "postponed"].groupby("opportunity_id").size()
    closed = o[(o["status"] != "open") & o["opportunity_id"].isin(meet["opportunity_id"])]
    n_post = closed["opportunity_id"].map(post).fillna(0)
    assert _won(closed[n_post >= 2]) < 0.6 * _won(closed[n_post == 0])


def test_contacts_best_hours_differ(demo_history_dir, demo_history):
    prof = contact_profile(demo_history_dir)
    weekday = prof[prof["weekday"] < 5]
    best = (
        weekday.groupby(["contact_id", "hour"])["p_connect_call"].mean().groupby(level=0).idxmax()
    )
    best_hour = best.map(lambda x: x[1])
    assert best_hour.nunique() >= 8
    # the observed data show it: morning people answer in the morning, afternoon people later
    a = demo_history.activities
    calls = a[(a["channel"] == "call") & (a["direction"] == "outbound")].merge(
        demo_history.contacts[["contact_id", "timezone"]], on="contact_id"
    )
    local_hour = pd.Series(0, index=calls.index)
    for tz, idx in calls.groupby("timezone").groups.items():
        local_hour.loc[idx] = (
            calls.loc[idx, "occurred_at"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.hour
        )
    calls["local_hour"] = local_hour
    calls["connected"] = calls["outcome"] == "connected"
    calls["type"] = calls["contact_id"].map(
        best_hour.map(lambda h: "early" if h <= 10 else ("late" if h >= 15 else "mid"))
    )
    morning = calls[calls["local_hour"].between(8, 10)].groupby("type")["connected"].mean()
    afternoon = calls[calls["local_hour"].between(15, 17)].groupby("type")["connected"].mean()
    assert morning["early"] > 1.3 * morning["late"]
    assert afternoon["late"] > 1.3 * afternoon["early"]


def test_churn_higher_for_low_engagement_accounts(demo_history):
    subs, a = demo_history.subscriptions, demo_history.activities
    inbound = a[(a["direction"] == "inbound") & a["opportunity_id"].isna()]
    rows = []
    for as_of in pd.date_range(
        END - pd.DateOffset(months=9), END - pd.DateOffset(months=3), freq="MS"
    ):

        def active(t: pd.Timestamp) -> set:
            on = (subs["started_at"] <= t) & (subs["ended_at"].isna() | (subs["ended_at"] > t))
            return set(subs.loc[on, "account_id"])

        now, later = active(as_of), active(as_of + pd.Timedelta(days=90))
        recent = inbound[
            (inbound["occurred_at"] < as_of)
            & (inbound["occurred_at"] >= as_of - pd.Timedelta(days=60))
        ]
        counts = recent.groupby("account_id").size()
        for acc in now:
            rows.append((counts.get(acc, 0), acc not in later))
    df = pd.DataFrame(rows, columns=["inbound_60d", "churned"])
    low = df[df["inbound_60d"] <= df["inbound_60d"].quantile(0.33)]
    high = df[df["inbound_60d"] > df["inbound_60d"].quantile(0.67)]
    assert low["churned"].mean() > 2 * high["churned"].mean()


def test_deals_handed_over_without_a_touch_lose_more(tmp_path_factory):
    out = tmp_path_factory.mktemp("handover")
    # many leavers (the knob), so both kinds of hand-over have enough closed deals
    generate_history(
        out, reps=25, months=10, seed=5, end=END, knobs=DemoKnobs(leaver_rate_per_year=1.5)
    )
    h = load_history(out, now=END)
    o, a, r = h.opportunities, h.activities, h.reps
    outbound = a[(a["direction"] == "outbound") & a["opportunity_id"].notna()]
    left = r.dropna(subset=["left_at"])[["rep_id", "left_at"]].rename(
        columns={"rep_id": "old_owner"}
    )
    # deals a leaver worked on, open when they left, now owned by someone else
    x = outbound.merge(left, left_on="rep_id", right_on="old_owner")[
        ["opportunity_id", "old_owner", "left_at"]
    ]
    x = x.drop_duplicates("opportunity_id").merge(o, on="opportunity_id")
    x = x[(x["owner_rep_id"] != x["old_owner"]) & (x["created_at"] < x["left_at"])]
    x = x[x["closed_at"].isna() | (x["closed_at"] > x["left_at"])]
    nxt = outbound.merge(
        x[["opportunity_id", "left_at", "owner_rep_id"]], on="opportunity_id", suffixes=("", "_now")
    )
    nxt = nxt[
        (nxt["occurred_at"] > nxt["left_at"])
        & (nxt["occurred_at"] <= nxt["left_at"] + pd.Timedelta(days=7))
        & (nxt["rep_id"] == nxt["owner_rep_id"])
    ]
    x["touched"] = x["opportunity_id"].isin(nxt["opportunity_id"])
    closed = x[x["status"] != "open"]
    assert closed["touched"].sum() > 50 and (~closed["touched"]).sum() > 50
    assert _won(closed[~closed["touched"]]) < 0.8 * _won(closed[closed["touched"]])


# ---------------------------------------------------------------- calibrated truth


def _assert_calibrated(p: np.ndarray, y: np.ndarray, bins: int, slack: float) -> None:
    """Binned mean probability vs observed rate, within binomial noise (+ slack)."""
    order = np.argsort(p, kind="stable")
    for chunk in np.array_split(order, bins):
        mean_p, rate = p[chunk].mean(), y[chunk].mean()
        se = np.sqrt(max(mean_p * (1 - mean_p), 1e-4) / len(chunk))
        assert abs(rate - mean_p) <= 3.5 * se + slack, (mean_p, rate, len(chunk))


def test_attempt_probabilities_are_calibrated(demo_history_dir, demo_history):
    a = demo_history.activities
    att = a[
        (a["direction"] == "outbound") & a["channel"].isin(["call", "email"]) & a["outcome"].notna()
    ]
    p = oracle_attempt(demo_history_dir, att["activity_id"]).to_numpy()
    y = att["outcome"].isin(["connected", "replied"]).to_numpy()
    for channel in ("call", "email"):
        m = (att["channel"] == channel).to_numpy()
        assert m.sum() > 10_000
        _assert_calibrated(p[m], y[m], bins=10, slack=0.01)


def test_win_probabilities_are_calibrated(demo_history_dir, demo_history):
    o = demo_history.opportunities
    truth = read_truth(demo_history_dir, "opportunities")
    # the row at creation: picking a random row per deal would favour short-lived (lost) deals
    pick = truth[truth["event"] == "created"]
    pick = pick.merge(o[["opportunity_id", "status", "created_at"]], on="opportunity_id")
    pick = pick[pick["created_at"] < END - pd.DateOffset(months=5)]
    assert (pick["status"] == "open").mean() < 0.03
    pick = pick[pick["status"] != "open"]
    _assert_calibrated(
        pick["p_win"].to_numpy(), (pick["status"] == "won").to_numpy(), bins=5, slack=0.03
    )
    # and every later row: the truth is a martingale, so a deal's mean p never drifts
    last = truth.groupby("opportunity_id")["p_win"].last()
    first = truth.groupby("opportunity_id")["p_win"].first()
    assert abs(last.mean() - first.mean()) < 3.5 * first.std() / np.sqrt(len(first))


def test_churn_probabilities_are_calibrated(demo_history_dir):
    churn = read_truth(demo_history_dir, "churn")
    expected, observed = churn["p_churn"].sum(), churn["churned"].sum()
    assert abs(observed - expected) <= 3.5 * np.sqrt(expected)
    high = churn["p_churn"] > churn["p_churn"].quantile(0.8)
    e_high, o_high = churn.loc[high, "p_churn"].sum(), churn.loc[high, "churned"].sum()
    assert abs(o_high - e_high) <= 3.5 * np.sqrt(e_high)
    assert churn.loc[high, "churned"].mean() > 3 * churn.loc[~high, "churned"].mean()


def test_win_within_a_horizon_is_calibrated_and_below_eventual(demo_history_dir, demo_history):
    o = demo_history.opportunities
    frames = []
    for as_of in pd.date_range("2025-08-04", END - pd.Timedelta(days=60), freq="14D"):
        live = o[(o["created_at"] < as_of) & (o["closed_at"].isna() | (o["closed_at"] >= as_of))]
        soon = (live["status"] == "won") & (live["closed_at"] < as_of + pd.Timedelta(days=60))
        frames.append(
            pd.DataFrame({"opportunity_id": live["opportunity_id"], "as_of": as_of, "y": soon})
        )
    rows = pd.concat(frames, ignore_index=True)
    p60 = oracle_win(demo_history_dir, rows, horizon_days=60).to_numpy()
    eventual = oracle_win(demo_history_dir, rows).to_numpy()
    assert (p60 <= eventual + 1e-6).all()
    assert (oracle_win(demo_history_dir, rows, horizon_days=30).to_numpy() <= p60 + 1e-9).all()
    _assert_calibrated(p60, rows["y"].to_numpy(), bins=8, slack=0.03)
    assert read_meta(demo_history_dir)["knobs"] == dataclasses.asdict(DemoKnobs())


# ---------------------------------------------------------------- command line


def test_generate_command_prints_one_json_summary(tmp_path):
    from typer.testing import CliRunner

    from salespilot.cli import app

    out = tmp_path / "cli"
    args = ["generate", "--out", str(out), "--reps", "2", "--months", "1", "--seed", "3"]
    result = CliRunner().invoke(app, [*args, "--end", "2026-06-30", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"]["opportunities"] == len(pd.read_csv(out / "opportunities.csv"))
    assert summary["end"] == "2026-06-30T00:00:00"
    bad = CliRunner().invoke(app, [*args, "--format", "xlsx"])
    assert bad.exit_code == 1 and "csv or parquet" in bad.output
    bad_end = CliRunner().invoke(app, [*args, "--end", "someday"])
    assert bad_end.exit_code == 1 and "not a date" in bad_end.output


def test_expected_churn_over_a_horizon_is_calibrated_and_ranks(demo_history_dir):
    churn = read_truth(demo_history_dir, "churn")
    horizon = 91  # 13 weekly periods
    starts = churn[(churn["period_start"] <= END - pd.Timedelta(days=horizon))]
    rows = starts.iloc[::4][["account_id", "period_start"]].rename(
        columns={"period_start": "as_of"}
    )
    rows = rows.reset_index(drop=True)
    drawn = churn.loc[churn["churned"], ["account_id", "period_start"]]
    m = rows.reset_index().merge(drawn, on="account_id", how="left")
    hit = (m["period_start"] >= m["as_of"]) & (
        m["period_start"] < m["as_of"] + pd.Timedelta(days=horizon)
    )
    y = hit.groupby(m["index"]).any().reindex(rows.index).to_numpy()
    p = oracle_churn(demo_history_dir, rows, horizon).to_numpy()
    assert abs(p.mean() - y.mean()) < 0.25 * y.mean()
    top = p > np.quantile(p, 0.8)
    assert y[top].mean() > 2.5 * y[~top].mean()
    _assert_calibrated(p[top], y[top], bins=1, slack=0.02)
