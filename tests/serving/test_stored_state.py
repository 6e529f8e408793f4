"""A full build stores the scored, explained lists; the next start reads them back unchanged."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pandas as pd
import pytest

from salespilot.features.history import TABLE_FIELDS


@pytest.fixture(scope="module")
def built_and_restored(serving_settings, tmp_path_factory):
    from salespilot.serving.state import build_state

    settings = serving_settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("stored")})
    built = build_state(settings)  # through the registry; exports and stores for the next start
    restored = build_state(settings, trust_export=True)
    return settings, built, restored


def test_a_restored_state_answers_as_the_state_that_was_stored(built_and_restored):
    _, built, restored = built_and_restored
    assert restored is not built and restored.versions == built.versions
    assert restored.rep_items_json == built.rep_items_json
    assert restored.rep_items == built.rep_items and restored.at_risk == built.at_risk
    for key in ("as_of", "slots_from", "content_hash", "source", "rules_left_out"):
        assert getattr(restored, key) == getattr(built, key), key
    for key in ("account_owner", "account_names", "contact_account", "contact_zone"):
        assert getattr(restored, key) == getattr(built, key), key
    assert restored.contact_role == built.contact_role and restored.deal_owner == built.deal_owner
    assert restored.rep_timezones == built.rep_timezones
    assert restored.cache["_account_deal_reps"] == built.cache["_account_deal_reps"]
    pd.testing.assert_frame_equal(restored.reps, built.reps)
    # the start did not wait for the history: it arrives behind the ready server
    assert isinstance(restored.history_source, Future)
    assert restored.present_tables == built.present_tables == built.history.present_tables
    for name in TABLE_FIELDS:
        a, b = getattr(restored.history, name), getattr(built.history, name)
        assert (a is None) == (b is None), name
        if a is not None:
            pd.testing.assert_frame_equal(a, b)
    for key in ("win", "churn"):
        a, b = getattr(restored, key), getattr(built, key)
        assert list(a.ids) == list(b.ids) and a.features == b.features and a.index == b.index
        for arr in ("proba", "raw", "contrib", "base"):
            np.testing.assert_array_equal(getattr(a, arr), getattr(b, arr))
        pd.testing.assert_frame_equal(a.values, b.values)


def test_stored_lists_are_not_served_for_other_settings_or_versions(built_and_restored):
    import dataclasses

    from salespilot.serving import stored_state

    settings, built, _ = built_and_restored
    models, signature = built.models, built.data_signature
    assert stored_state.restore(settings, signature, models) is not None
    other = settings.model_copy(update={"warn_no_reply_hours": settings.warn_no_reply_hours + 1})
    assert stored_state.restore(other, signature, models) is None
    moved = dict(models)
    moved["win_probability"] = dataclasses.replace(moved["win_probability"], version="0")
    assert stored_state.restore(settings, signature, moved) is None
    touched = (*signature[:-1], (signature[-1][0], signature[-1][1], signature[-1][2] + 1))
    assert stored_state.restore(settings, touched, models) is None


def test_stored_activities_that_cannot_be_read_are_read_from_the_data(built_and_restored):
    from salespilot.serving import stored_state
    from salespilot.serving.state import build_state

    settings, built, _ = built_and_restored
    path = stored_state.stored_dir(settings) / "history" / "activities.parquet"
    kept = path.read_bytes()
    try:
        path.write_bytes(b"not parquet")
        again = build_state(settings, trust_export=True)
        assert again.rep_items_json == built.rep_items_json  # served from the stored lists
        pd.testing.assert_frame_equal(again.history.activities, built.history.activities)
    finally:
        path.write_bytes(kept)


def test_a_state_stored_before_the_rules_left_out_were_is_built_once_more(built_and_restored):
    """An older stored state (no ``rules_left_out`` in its manifest) would make every start
    judge the rules from the whole history, waiting for the activities: it is not restored,
    and the build that replaces it stores the current format."""
    import json

    from salespilot.serving import stored_state
    from salespilot.serving.state import build_state

    settings, built, _ = built_and_restored
    path = stored_state.stored_dir(settings) / stored_state.MANIFEST
    kept = path.read_text()
    try:
        older = json.loads(kept)
        del older["rules_left_out"]
        path.write_text(json.dumps(older))
        assert stored_state.restore(settings, built.data_signature, built.models) is None
        rebuilt = build_state(settings, trust_export=True)
        assert rebuilt.rep_items_json == built.rep_items_json
        assert rebuilt.rules_left_out == built.rules_left_out
        assert json.loads(path.read_text())["rules_left_out"] == dict(built.rules_left_out)
        assert stored_state.restore(settings, built.data_signature, built.models) is not None
    finally:
        path.write_text(kept)
