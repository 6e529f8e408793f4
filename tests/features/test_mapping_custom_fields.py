"""A customer's own fields as features: declared -> in the snapshots -> used by the model,
and a field filled in after the outcome caught by training's leak warning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from salespilot.features.custom_fields import (
    CustomFields,
    add_custom_features,
    model_custom_features,
    read_custom_fields,
    write_custom_fields,
)
from salespilot.features.history import History
from salespilot.features.loader import load_history

REASONS = np.array(["price", "competitor", "no budget", "timing"])


@pytest.fixture(scope="module")
def custom_history(tmp_path_factory) -> History:
    """A small generated history whose deals carry two extra fields: a lead score known at
    creation (a noisy view of the generator's latent deal quality) and a loss reason."""
    from salespilot.features.demo import generate_history

    out = tmp_path_factory.mktemp("custom") / "history"
    generate_history(out, reps=6, months=9, seed=7, end=pd.Timestamp("2026-06-30"))
    opps = pd.read_csv(out / "opportunities.csv", dtype=str)
    latent = pd.read_csv(out / "truth" / "opportunity_latent.csv").set_index("opportunity_id")
    rng = np.random.default_rng(0)
    quality = latent["quality"].reindex(opps["opportunity_id"]).to_numpy()
    opps["lead_score"] = np.round(quality + rng.normal(0, 0.3, len(opps)), 3)
    lost = opps["status"] == "lost"
    opps["loss_reason"] = np.where(lost, REASONS[rng.integers(0, 4, len(opps))], None)
    opps.to_csv(out / "opportunities.csv", index=False)
    write_custom_fields(
        out,
        CustomFields(
            categorical={"opportunities": ("loss_reason",)},
            numeric={"opportunities": ("lead_score",)},
        ),
    )
    return load_history(out)


def test_custom_fields_file_round_trips_and_maps_to_model_features(tmp_path):
    fields = CustomFields(
        categorical={"opportunities": ("series",)},
        numeric={"accounts": ("revenue",)},
        excluded={"opportunities": ("close_value",)},
    )
    write_custom_fields(tmp_path, fields)
    assert read_custom_fields(tmp_path) == fields
    assert model_custom_features("deals", fields) == {
        "custom_series": "categorical",
        "custom_revenue": "numeric",
    }
    assert model_custom_features("accounts", fields) == {"custom_revenue": "numeric"}
    assert read_custom_fields(tmp_path / "elsewhere").empty


def test_snapshot_columns_join_each_table_on_its_own_id():
    history = History(
        reps=pd.DataFrame({"rep_id": ["r"]}),
        accounts=pd.DataFrame({"account_id": ["a1", "a2"], "revenue": ["10.5", None]}),
        opportunities=pd.DataFrame(
            {"opportunity_id": ["o1", "o2"], "account_id": ["a2", "a1"], "series": ["GTX", None]}
        ),
    )
    fields = CustomFields(
        categorical={"opportunities": ("series",)}, numeric={"accounts": ("revenue",)}
    )
    snap = pd.DataFrame({"opportunity_id": ["o2", "o1", "o2"], "account_id": ["a1", "a2", "a1"]})
    out = add_custom_features(snap, history, "deals", fields)
    assert list(out["custom_revenue"].fillna(-1)) == [10.5, -1, 10.5]
    assert out["custom_series"].dtype == "category"
    assert list(out["custom_series"].astype(object).fillna("-")) == ["-", "GTX", "-"]


def test_a_declared_field_is_used_by_the_model_and_a_loss_reason_is_caught(custom_history):
    from salespilot.models import SPECS
    from salespilot.training.core import fit_and_evaluate
    from salespilot.training.train import build_dataset, declared_custom_features

    spec = SPECS["win_probability"]
    extra = declared_custom_features(spec, custom_history)
    assert extra == {"custom_loss_reason": "categorical", "custom_lead_score": "numeric"}
    frame = build_dataset(spec, custom_history)
    assert frame["custom_lead_score"].dtype == np.float64
    assert frame["custom_loss_reason"].dtype == "category"
    # keep the spec's own features that the deals table has (robust to renames in progress)
    spec = dataclasses.replace(
        spec,
        features=tuple(f for f in spec.features if f in frame.columns),
        categorical=tuple(c for c in spec.categorical if c in frame.columns),
    ).with_features(extra=extra)
    ev = fit_and_evaluate(spec, frame)
    booster = ev.model.booster
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    assert gain["custom_lead_score"] > 0
    leaks = [w for w in ev.warnings if "likely leak" in w]
    assert any("'custom_loss_reason'" in w for w in leaks), ev.warnings
    assert not any("custom_lead_score" in w for w in leaks)
