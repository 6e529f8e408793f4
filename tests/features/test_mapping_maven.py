"""The worked example: the public Maven "CRM Sales Opportunities" export through its mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from salespilot.features.custom_fields import read_custom_fields
from salespilot.features.loader import load_history
from salespilot.features.mapping import import_history
from salespilot.features.pit import observed_end

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "examples" / "maven_crm" / "mapping.yaml"
# SALESPILOT_MAVEN_DIR, or where CI provides the public exports: shared/data/ beside the checkout
MAVEN = Path(os.environ.get("SALESPILOT_MAVEN_DIR") or ROOT.parent / "shared/data/maven-crm")

_MISSING = f"the Maven CRM files are not at {MAVEN} (set SALESPILOT_MAVEN_DIR)"
if os.environ.get("CI") and not (MAVEN / "sales_pipeline.csv").is_file():
    # a developer without the data may skip these; CI has the data, so a skip there hides a bug
    raise RuntimeError(_MISSING)
pytestmark = pytest.mark.skipif(not (MAVEN / "sales_pipeline.csv").is_file(), reason=_MISSING)


@pytest.fixture(scope="module")
def maven_history_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maven") / "history"
    result = import_history(MAPPING, MAVEN, out, now="2018-01-01")
    assert result.notes == []  # every product found in the price list (GTXPro mapped)
    return out


def test_maven_imports_and_validates(maven_history_dir):
    history = load_history(maven_history_dir, now="2018-01-01")
    assert len(history.reps) == 35
    opps = history.opportunities
    assert len(opps) == 8_800
    assert opps["status"].value_counts().to_dict() == {"won": 4238, "lost": 2473, "open": 2089}
    assert observed_end(history) == pd.Timestamp("2017-12-31")
    # 1,425 open deals without an account each got a placeholder account
    placeholders = history.accounts["account_id"].str.startswith("unknown-")
    assert placeholders.sum() == 1_425 == len(history.accounts) - 85
    assert set(history.accounts["industry"].dropna()) >= {"technology"}
    assert "technolgy" not in set(history.accounts["industry"].dropna())
    # the amount is the list price, never the close value (0 for every lost deal: a leak)
    assert (opps["amount"] > 0).all()
    pro = opps[opps["product_line"] == "GTX Pro"]
    assert len(pro) == 1_480 and (pro["amount"] == 4821).all()
    assert history.stage_changes is not None and len(history.stage_changes) == 500 + 8_300 + 6_711


def test_maven_declares_custom_features_and_excludes_the_close_value(maven_history_dir):
    fields = read_custom_fields(maven_history_dir)
    assert fields.categorical == {"opportunities": ("series",)}
    assert fields.numeric == {"accounts": ("revenue", "year_established")}
    assert fields.excluded == {"opportunities": ("close_value",)}


def test_maven_win_model_trains_and_ranks_open_deals(maven_history_dir):
    """Steps 3-4 of docs/maven-example.md without MLflow: the win model fits on the imported
    history, uses the declared custom fields, and the serving path scores its open deals even
    though the export has no subscriptions (no account snapshots)."""
    from salespilot.features.accounts import account_snapshot
    from salespilot.models import SPECS
    from salespilot.serving.state import _with_subscriptions
    from salespilot.training.core import fit_and_evaluate
    from salespilot.training.train import build_dataset, declared_custom_features

    history = load_history(maven_history_dir, now="2018-01-01")
    spec = SPECS["win_probability"]
    extra = declared_custom_features(spec, history)
    assert extra == {
        "custom_series": "categorical",
        "custom_revenue": "numeric",
        "custom_year_established": "numeric",
    }
    spec = spec.with_features(extra=extra)
    ev = fit_and_evaluate(spec, build_dataset(spec, history))
    assert "custom_series" in ev.model.features
    # every open deal of the training rows is "engaging": the stage rule has nothing to stand
    # on, so it is left out (and said to be) instead of showing a constant 0.5
    assert "stage_rule" not in ev.baselines
    assert "same 'stage' ('engaging')" in ev.baselines_left_out["stage_rule"]
    assert ev.metrics["roc_auc"] > 0.6
    assert not [w for w in ev.warnings if "likely leak" in w]
    # the placeholder accounts (only never-closed deals lack an account) are named: the
    # account's fields are missing on exactly those deals; on the deals with a real account
    # the model's test ROC AUC is far below its overall one (about 0.5 today)
    assert {"custom_revenue", "custom_year_established"} <= set(ev.leak_review)
    (placeholder,) = [w for w in ev.warnings if "'custom_revenue'" in w]
    assert "never closed" in placeholder and "placeholder" in placeholder
    real = ~ev.test["account_id"].astype(str).str.startswith("unknown-").to_numpy()
    real_auc = roc_auc_score(ev.y_test[real], ev.p_test[real])
    assert real_auc < min(0.65, ev.metrics["roc_auc"] - 0.1)
    assert f"{real_auc:.3f}" in placeholder
    # won against lost is a coin flip here, no better than the deal's age: not_ready
    wl = ev.readiness.won_vs_lost
    assert 0.45 < wl.auc < 0.55 and wl.within_noise
    assert ev.readiness.verdict == "not_ready"
    assert any("no better than the deal's age" in r for r in ev.readiness.reasons)
    accounts = account_snapshot(_with_subscriptions(history), observed_end(history))
    assert accounts.empty and "account_id" in accounts.columns
