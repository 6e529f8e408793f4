"""A flattened demo: a generated history turned into a lead list, imported and trained like a
customer's flat export, against hand-built flat models on the same test rows.

    uv run python bench/flat_exports.py [--reps 30] [--months 18] [--seed 11]

The lead list has one row per deal (lead id, rep, source, product, amount, the creation time
written day first with dashes, and the outcome columns: result and decision date). It goes
through ``salespilot import`` (``date_format: "%d-%m-%Y %H:%M"``, each lead its own account)
and the win model with decision-time rows (each lead scored
once, at its creation; horizon ``--horizon`` days). A hand-built flat LightGBM and a logistic
regression are fitted on the lead list's own columns, on the training rows of SalesPilot's
split, and scored on its test rows. Prints test ROC AUC and ECE of each.

Only the lead list is built so far: the call list and the churn snapshot are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import pandas as pd
from demo_history import add_arguments, demo_history

MAPPING = {
    "date_format": "%d-%m-%Y %H:%M",
    "tables": {
        "reps": {"source": "reps.csv"},
        "accounts": {
            "source": "leads.csv",
            "columns": {
                "account_id": "lead_id",
                "name": "lead_id",
                "industry": {"constant": None},
                "region": {"constant": None},
                "employees": {"constant": None},
                "created_at": "created",
                "owner_rep_id": {"constant": None},
            },
        },
        "opportunities": {
            "source": "leads.csv",
            "columns": {
                "opportunity_id": "lead_id",
                "account_id": "lead_id",
                "owner_rep_id": "rep",
                "product_line": "product",
                "lead_source": "source",
                "amount": "amount",
                "created_at": "created",
                "expected_close_at": {"constant": None},
                "closed_at": "decided",
                "status": "result",
            },
        },
    },
}

FLAT_CATEGORICAL = ["rep", "source", "product"]


def lead_list(history, folder: Path) -> pd.DataFrame:
    """One row per deal with its outcome columns, dates day first with dashes."""
    opps = history.opportunities
    leads = pd.DataFrame(
        {
            "lead_id": opps["opportunity_id"],
            "rep": opps["owner_rep_id"],
            "source": opps["lead_source"],
            "product": opps["product_line"],
            "amount": opps["amount"],
            "created": opps["created_at"].dt.strftime("%d-%m-%Y %H:%M"),
            "decided": opps["closed_at"].dt.strftime("%d-%m-%Y %H:%M"),
            "result": opps["status"],
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    leads.to_csv(folder / "leads.csv", index=False)
    history.reps.to_csv(folder / "reps.csv", index=False)
    return leads


def flat_matrix(leads: pd.DataFrame) -> pd.DataFrame:
    created = pd.to_datetime(leads["created"], format="%d-%m-%Y %H:%M")
    out = pd.DataFrame(
        {
            "amount": pd.to_numeric(leads["amount"]),
            "weekday": created.dt.weekday,
            "hour": created.dt.hour,
        },
        index=leads.index,
    )
    for c in FLAT_CATEGORICAL:
        out[c] = leads[c].astype("category")
    return out


def hand_built(x_train, y_train, x_test) -> dict[str, object]:
    """Test-row probabilities of a flat LightGBM and a logistic regression."""
    import lightgbm as lgb
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    gbm = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, verbose=-1)
    gbm.fit(x_train, y_train)
    numeric = ["amount", "weekday", "hour"]
    lr = make_pipeline(
        make_column_transformer(
            (StandardScaler(), numeric),
            (OneHotEncoder(handle_unknown="ignore"), FLAT_CATEGORICAL),
        ),
        LogisticRegression(max_iter=1000),
    )
    lr.fit(x_train.astype({c: str for c in FLAT_CATEGORICAL}), y_train)
    return {
        "flat LightGBM": gbm.predict_proba(x_test)[:, 1],
        "flat logistic regression": lr.predict_proba(
            x_test.astype({c: str for c in FLAT_CATEGORICAL})
        )[:, 1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    ap.set_defaults(reps=30, months=18)
    ap.add_argument("--horizon", type=int, default=120, help="label horizon in days")
    args = ap.parse_args()

    from sklearn.metrics import roc_auc_score

    from salespilot.features.loader import load_history
    from salespilot.features.mapping import import_history, parse_mapping
    from salespilot.models import SPECS
    from salespilot.training.core import fit_and_evaluate, labelled_rows
    from salespilot.training.evaluate import expected_calibration_error
    from salespilot.training.train import build_dataset, check_tables

    _, history = demo_history(args)
    work = Path(tempfile.mkdtemp(prefix="salespilot-flat-"))
    leads = lead_list(history, work / "export")
    result = import_history(parse_mapping(MAPPING), work / "export", work / "history")
    print(f"lead list: {len(leads):,} rows -> imported {result.rows['opportunities']:,} deals")
    imported = load_history(work / "history")

    spec = dataclasses.replace(SPECS["win_probability"], rows="decision", horizon_days=args.horizon)
    check_tables(spec, imported)
    frame = build_dataset(spec, imported)
    ev = fit_and_evaluate(spec, frame)
    rows = labelled_rows(spec, frame)
    y = rows[spec.label].astype(int).to_numpy()
    flat = flat_matrix(leads.set_index("lead_id").loc[rows["opportunity_id"]].reset_index())
    split = ev.split
    print(
        f"decision-time rows: {len(frame):,} ({len(rows):,} labelled); train "
        f"{split.train.sum():,}, valid {split.valid.sum():,}, test {split.test.sum():,} "
        f"(test from {split.test_start.date()}, embargo {split.embargo_days:.0f} days)"
    )
    y_test = y[split.test]
    table = {"SalesPilot": (ev.metrics["roc_auc"], ev.metrics["ece"])}
    for name, p in hand_built(flat[split.train], y[split.train], flat[split.test]).items():
        table[name] = (roc_auc_score(y_test, p), expected_calibration_error(y_test, p))
    print(f"\nlead list, {split.test.sum():,} test rows, {y_test.mean():.1%} won")
    print(f"{'model':<26} {'ROC AUC':>8} {'ECE':>7}")
    for name, (auc, ece) in table.items():
        print(f"{name:<26} {auc:>8.3f} {ece:>7.3f}")


if __name__ == "__main__":
    main()
