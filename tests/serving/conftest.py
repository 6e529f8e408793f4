"""Serving fixtures: the real app over the small trained models (``trained_state``), tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from salespilot.serving.app import create_app
from salespilot.serving.state import ServingState


@pytest.fixture(scope="session")
def serving_settings(trained_state, tmp_path_factory):
    """The trained state's data and registry, with tokens and lists in a folder of our own."""
    # the shared client is not what the rate limits are tested on (tests/serving/test_limits.py)
    return trained_state.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("serving-state"),
            "serving_rate_burst": 100_000,
        }
    )


@pytest.fixture(scope="session")
def client(serving_settings):
    app = create_app(serving_settings)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def state(client) -> ServingState:
    s = client.app.state.holder.state
    assert s is not None, client.app.state.holder.last_error
    return s


@dataclass(frozen=True)
class People:
    rep: str  # a rep with the longest list
    teammate: str  # another rep of the same team
    outsider: str  # a rep of another team
    team: str
    other_team: str
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="session")
def people(client, state) -> People:
    sizes = {r: len(items) for r, items in state.rep_items.items()}
    rep = max(sizes, key=lambda r: (sizes[r], r))
    team = state.rep_team(rep)
    reps = state.reps
    teammate = next(r for r in reps.index if r != rep and reps.at[r, "team"] == team)
    outsider = max(
        (r for r in reps.index if reps.at[r, "team"] != team), key=lambda r: (sizes.get(r, 0), r)
    )
    other_team = str(reps.at[outsider, "team"])
    store = client.app.state.tokens
    tokens = {
        "rep": store.create(role="rep", rep_id=rep)[0],
        "outsider": store.create(role="rep", rep_id=outsider)[0],
        "manager": store.create(role="manager", team=team)[0],
        "other_manager": store.create(role="manager", team=other_team)[0],
        "admin": store.create(role="admin")[0],
    }
    return People(rep, teammate, outsider, team, other_team, tokens)
