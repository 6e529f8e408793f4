"""Scores for "now" come from the stored feature snapshot when it matches the data."""

from __future__ import annotations

import pandas as pd


def test_state_scores_the_stored_snapshot(serving_settings, state, people, tmp_path):
    from salespilot.features.accounts import account_snapshot
    from salespilot.features.deals import deal_snapshot
    from salespilot.features.store import write_feature_tables
    from salespilot.serving.state import ModelSlot, build_state

    h = state.history
    models = {**state.models, "contact_time": ModelSlot("contact_time", None)}  # keep it quick
    t = state.as_of.normalize() + pd.Timedelta(days=1)  # "the day after the last event"
    settings = serving_settings.model_copy(update={"features_dir": tmp_path / "features"})
    tables = {"snapshots/deals": deal_snapshot(h, t), "snapshots/accounts": account_snapshot(h, t)}
    write_feature_tables(tables, settings.features_dir, history_hash=h.content_hash())
    s = build_state(
        settings, history=h, models=models, persist_scores=False, only_reps={people.rep}
    )
    assert s.as_of == t
    d = tables["snapshots/deals"]
    assert set(s.win.ids) == set(
        d.loc[d["owner_rep_id"] == people.rep, "opportunity_id"].astype(str)
    )

    # a snapshot of other data is ignored
    write_feature_tables(tables, settings.features_dir, history_hash="someone-else")
    s = build_state(
        settings, history=h, models=models, persist_scores=False, only_reps={people.rep}
    )
    assert s.as_of == state.as_of
