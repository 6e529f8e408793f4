"""The serving export: a registered version as plain files scores exactly as the MLflow model."""

from __future__ import annotations

import numpy as np
import pytest

from salespilot.training.tracking import raw_features


@pytest.mark.parametrize("name", ["win_probability", "churn_risk"])
def test_the_exported_champion_scores_as_the_registered_mlflow_model(
    trained_state, demo_history, name
):
    import mlflow

    from salespilot.features.accounts import account_snapshot
    from salespilot.features.deals import deal_snapshot
    from salespilot.features.pit import data_as_of
    from salespilot.training.export import exported_alias, load_exported
    from salespilot.training.loading import load_model
    from salespilot.training.tracking import client

    as_of = data_as_of(demo_history)
    snapshot = deal_snapshot if name == "win_probability" else account_snapshot
    rows = snapshot(demo_history, as_of).reset_index(drop=True)
    assert len(rows) > 20
    exported = load_exported(trained_state, name, "champion")
    registered = load_model(name, settings=trained_state)
    assert exported is not None
    assert exported.version == registered.version == exported_alias(trained_state, name, "champion")
    assert exported.metrics == registered.metrics
    # the tags at registration (promotion tags come later and serving does not read them)
    assert exported.tags.items() <= registered.tags.items() and "readiness" in exported.tags
    assert exported.trained_at == registered.trained_at
    client(trained_state)  # the tracking URI for models:/ below
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{registered.version}")
    via_mlflow = pyfunc.predict(raw_features(exported.model, rows))["probability"].to_numpy()
    np.testing.assert_allclose(exported.predict_proba(rows), via_mlflow, rtol=0, atol=1e-9)
    # explanations: LightGBM's pred_contrib on the exported booster, adding up to its raw score
    proba, raw, contrib = exported.score_all(rows)
    np.testing.assert_allclose(raw, exported.raw_score(rows), atol=1e-9)
    want = registered.contributions(rows).to_numpy()
    np.testing.assert_allclose(contrib, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(contrib.sum(axis=1), registered.raw_score(rows), atol=1e-9)
    np.testing.assert_allclose(proba, via_mlflow, rtol=0, atol=1e-9)
