"""A flattened demo: a generated history turned into three flat exports - a lead list, a call
list and a churn snapshot - imported and trained like a customer's, against hand-built flat
models on the same test rows.

    uv run python bench/flat_exports.py [--reps 30] [--months 18] [--seed 11]
        [--churn-reps 150] [--churn-months 24] [--only EXPORT] [--params KEY=VALUE]

Each export has one row per entity and its outcome columns, as such files come:

* **lead list**: one row per lead (rep, source, product, amount, the creation time written day
  first with dashes, result and decision date); each lead its own account. The win model scores
  each lead once, at its creation (horizon ``--lead-horizon`` days).
* **call list**: campaign-style, one row per outbound call (the client, the rep, the start in the
  client's local time, the duration - known only after the call - and the result: did it
  connect), with the client list beside it. Each call is a deal opened and decided at its start
  and an activity, so the client's earlier calls are point-in-time history; the win model scores
  each call once, at its start (horizon 1 day). The latest ``--calls`` calls are kept.
* **churn snapshot**: one row per customer active ``--churn-days`` before the export date, with
  its tenure in months, monthly charges and "left within the last ``--churn-days`` days"; an
  empty deals file and the CRM's activity log of these customers beside it (the flat models use
  the customer table; SalesPilot reads the log as point-in-time history). Churn risk scores
  each customer once, at the snapshot date. The snapshot comes from its own, bigger history
  (``--churn-reps`` x ``--churn-months``, same seed), sized for statistical power, not for
  any result: one snapshot of the 30 x 18 world holds about 920 customers and 56 churners
  (seed 11), a test period of 14 churners, whose ROC AUC has a standard error of about 0.08
  (Hanley and McNeil at AUC 0.65) - a 0.08 gap between two models there is noise. A test
  period of at least ~50 churners (a standard error of about 0.04) needs about 1,100 test
  rows at the demo's lowest churn rate (4.6 %, seed 12), so about 5,500 customers (a fifth
  of them are the test period): 150 x 24 gives about 5,600 (100 x 24: about 3,800, 35 test
  churners on seed 12).

Each goes through the mapping import (``import_history``, what ``salespilot import`` runs, with
the mapping's ``models:`` choosing decision-time rows) and ``train_model`` (what ``salespilot
train`` runs, into a throw-away MLflow store). A flat LightGBM and a logistic regression are
fitted on the export's own columns, on the training rows of SalesPilot's split, and scored on
its test rows. Prints one table: test ROC AUC and ECE of each, per export, and for each flat
model the paired 90 % bootstrap interval of SalesPilot's ROC AUC minus its own on the same test
rows (the readiness verdict's bootstrap: seeded, 200 resamples, one row per entity here).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from demo_history import END, add_arguments, demo_history

DAY_FIRST = "%d-%m-%Y %H:%M"


@dataclass
class Export:
    """One flat export: how it is written from a history, mapped, and modelled flat."""

    name: str
    model: str
    write: Callable  # (history, folder, args) -> the flat frame, indexed by the entity id
    mapping: Callable  # (args) -> mapping dict
    numeric: list[str]
    categorical: list[str]
    horizon: Callable  # (args) -> label horizon in days


# -- lead list ------------------------------------------------------------------------------
def lead_list(history, folder: Path, args) -> pd.DataFrame:
    """One row per deal with its outcome columns, dates day first with dashes."""
    opps = history.opportunities
    leads = pd.DataFrame(
        {
            "lead_id": opps["opportunity_id"],
            "rep": opps["owner_rep_id"],
            "source": opps["lead_source"],
            "product": opps["product_line"],
            "amount": opps["amount"],
            "created": opps["created_at"].dt.strftime(DAY_FIRST),
            "decided": opps["closed_at"].dt.strftime(DAY_FIRST),
            "result": opps["status"],
        }
    )
    leads.to_csv(folder / "leads.csv", index=False)
    history.reps.to_csv(folder / "reps.csv", index=False)
    created = pd.to_datetime(leads["created"], format=DAY_FIRST)
    return leads.assign(weekday=created.dt.day_of_week, hour=created.dt.hour).set_index("lead_id")


def lead_mapping(args) -> dict:
    return {
        "date_format": DAY_FIRST,
        "models": {"win_probability": {"rows": "decision", "decision_at": "created_at"}},
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


# -- call list ------------------------------------------------------------------------------
def call_list(history, folder: Path, args) -> pd.DataFrame:
    """One row per outbound call (the latest ``args.calls``), times in the client's local time."""
    acts = history.activities
    calls = acts[
        (acts["channel"] == "call") & (acts["direction"] == "outbound") & acts["contact_id"].notna()
    ]
    calls = calls.sort_values("occurred_at").tail(args.calls)
    contacts = history.contacts.set_index("contact_id")
    tz = contacts.loc[calls["contact_id"], "timezone"].to_numpy()
    local = [
        t.tz_localize("UTC").tz_convert(z).tz_localize(None)
        for t, z in zip(calls["occurred_at"], tz, strict=True)
    ]
    start = pd.Series(local, index=calls.index)
    out = pd.DataFrame(
        {
            "call_id": calls["activity_id"],
            "client": calls["contact_id"],
            "rep": calls["rep_id"],
            "start": start.dt.strftime(DAY_FIRST),
            "duration": calls["duration_s"],
            "result": np.where(calls["outcome"] == "connected", "yes", "no"),
        }
    )
    out.to_csv(folder / "calls.csv", index=False)
    clients = contacts.loc[calls["contact_id"].unique(), ["role", "timezone"]]
    clients.rename_axis("client").reset_index().to_csv(folder / "clients.csv", index=False)
    history.reps.to_csv(folder / "reps.csv", index=False)
    flat = out.join(clients, on="client")
    return flat.assign(weekday=start.dt.day_of_week, hour=start.dt.hour).set_index("call_id")


def call_mapping(args) -> dict:
    first = "01-01-2000 00:00"
    return {
        "date_format": DAY_FIRST,
        "models": {"win_probability": {"rows": "decision"}},  # a call at its start
        "tables": {
            "reps": {"source": "reps.csv"},
            "accounts": {
                "source": "clients.csv",
                "columns": {
                    "account_id": "client",
                    "name": "client",
                    "industry": {"constant": None},
                    "region": "timezone",
                    "employees": {"constant": None},
                    "created_at": {"constant": first},
                    "owner_rep_id": {"constant": None},
                    "client_role": "role",
                },
                "features": {"categorical": ["client_role"]},
            },
            "contacts": {
                "source": "clients.csv",
                "columns": {"contact_id": "client", "account_id": "client"},
            },
            "opportunities": {
                "source": "calls.csv",
                "columns": {
                    "opportunity_id": "call_id",
                    "account_id": "client",
                    "owner_rep_id": "rep",
                    "product_line": {"constant": "campaign"},
                    "lead_source": {"constant": "campaign"},
                    "amount": {"constant": 1},  # a call has no amount at stake
                    "created_at": "start",
                    "expected_close_at": {"constant": None},
                    "closed_at": "start",
                    "status": {"column": "result", "values": {"yes": "won", "no": "lost"}},
                    "call_hour": {"column": "start", "derive": "hour"},
                    "call_weekday": {"column": "start", "derive": "weekday"},
                    "call_duration": {"column": "duration", "known": "after_outcome"},
                },
                "features": {"numeric": ["call_hour", "call_weekday"]},
            },
            "activities": {
                "source": "calls.csv",
                "columns": {
                    "activity_id": "call_id",
                    "occurred_at": "start",
                    "rep_id": "rep",
                    "account_id": "client",
                    "contact_id": "client",
                    "opportunity_id": "call_id",
                    "channel": {"constant": "call"},
                    "direction": {"constant": "outbound"},
                    "outcome": {
                        "column": "result",
                        "values": {"yes": "connected", "no": "no_answer"},
                    },
                    "duration_s": "duration",
                },
            },
        },
    }


# -- churn snapshot -------------------------------------------------------------------------
def churn_snapshot(history, folder: Path, args) -> pd.DataFrame:
    """One row per customer active at the snapshot date, with tenure in months (since signing
    up, as of the export date) and "left" (within the last ``args.churn_days`` days)."""
    subs, accounts = history.subscriptions, history.accounts.set_index("account_id")
    snapshot = END - pd.Timedelta(days=args.churn_days)
    active = subs[
        (subs["started_at"] <= snapshot) & (subs["ended_at"].isna() | (subs["ended_at"] > snapshot))
    ]
    mine = subs[subs["account_id"].isin(active["account_id"])]
    still = mine.groupby("account_id")["ended_at"].apply(lambda e: e.isna().any())
    left = ~still & (mine.groupby("account_id")["ended_at"].max() <= END)
    since = mine.groupby("account_id")["started_at"].min()
    # months since signing up, as of the export date (a churner's too: one start for all)
    tenure = ((END - since).dt.days / 30.44).round().astype(int)
    charges = active.groupby("account_id")["monthly_value"].sum()
    ids = charges.index
    out = pd.DataFrame(
        {
            "customer_id": ids,
            "industry": accounts.loc[ids, "industry"].to_numpy(),
            "region": accounts.loc[ids, "region"].to_numpy(),
            "employees": accounts.loc[ids, "employees"].to_numpy(),
            "tenure": tenure.loc[ids].to_numpy(),
            "monthly_charges": charges.to_numpy().round(2),
            "left": np.where(left.loc[ids], "Yes", "No"),
        }
    )
    out.to_csv(folder / "customers.csv", index=False)
    history.reps.to_csv(folder / "reps.csv", index=False)
    history.opportunities.head(0).to_csv(folder / "deals.csv", index=False)
    # the CRM's activity log of these customers (no deals, no contacts in this export)
    log = history.activities[history.activities["account_id"].isin(ids)]
    cols = ["activity_id", "occurred_at", "rep_id", "account_id", "channel", "direction"]
    log[[*cols, "outcome", "duration_s"]].to_csv(folder / "activities.csv", index=False)
    return out.set_index("customer_id")


def churn_mapping(args) -> dict:
    export = END.strftime("%Y-%m-%d")
    # "left within the last N days": the day it left is not in the export; mid-window
    left_on = (END - pd.Timedelta(days=args.churn_days // 2)).strftime("%Y-%m-%d")
    return {
        "observed_until": export,  # the export date: the snapshot is this minus the horizon
        "models": {"churn_risk": {"rows": "decision", "decision_at": "snapshot"}},
        "tables": {
            "reps": {"source": "reps.csv"},
            "accounts": {
                "source": "customers.csv",
                "columns": {
                    "account_id": "customer_id",
                    "name": "customer_id",
                    "created_at": {"constant": export, "minus": {"months": "tenure"}},
                    "owner_rep_id": {"constant": None},
                },
            },
            "opportunities": {"source": "deals.csv"},
            "activities": {
                "source": "activities.csv",
                "columns": {"contact_id": {"constant": None}, "opportunity_id": {"constant": None}},
            },
            "subscriptions": {
                "source": "customers.csv",
                "columns": {
                    "subscription_id": "customer_id",
                    "account_id": "customer_id",
                    "product_line": {"constant": "plan"},
                    "started_at": {"constant": export, "minus": {"months": "tenure"}},
                    "ended_at": {"column": "left", "values": {"Yes": left_on, "No": None}},
                    "monthly_value": "monthly_charges",
                },
            },
        },
    }


EXPORTS = [
    Export(
        "lead list",
        "win_probability",
        lead_list,
        lead_mapping,
        numeric=["amount", "weekday", "hour"],
        categorical=["rep", "source", "product"],
        horizon=lambda a: a.lead_horizon,
    ),
    Export(
        "call list",
        "win_probability",
        call_list,
        call_mapping,
        numeric=["weekday", "hour"],
        categorical=["rep", "role", "timezone"],
        horizon=lambda a: 1,
    ),
    Export(
        "churn snapshot",
        "churn_risk",
        churn_snapshot,
        churn_mapping,
        numeric=["employees", "tenure", "monthly_charges"],
        categorical=["industry", "region"],
        horizon=lambda a: a.churn_days,
    ),
]


def hand_built(export: Export, x_train, y_train, x_test) -> dict[str, np.ndarray]:
    """Test-row probabilities of a flat LightGBM and a logistic regression."""
    import lightgbm as lgb
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cols = export.numeric + export.categorical
    gbm = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, verbose=-1)
    cats = {
        c: pd.CategoricalDtype(sorted(x_train[c].dropna().astype(str).unique()))
        for c in export.categorical
    }

    def as_gbm(x):
        return x[cols].astype({c: str for c in export.categorical}).astype(cats)

    gbm.fit(as_gbm(x_train), y_train)
    lr = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), export.numeric),
            (OneHotEncoder(handle_unknown="ignore"), export.categorical),
        ),
        LogisticRegression(max_iter=1000),
    )

    def as_lr(x):
        return x[cols].astype({c: str for c in export.categorical})

    lr.fit(as_lr(x_train), y_train)
    return {
        "flat LightGBM": gbm.predict_proba(as_gbm(x_test))[:, 1],
        "flat logistic regression": lr.predict_proba(as_lr(x_test))[:, 1],
    }


def _trees(params: dict) -> str:
    """Which trees the validation period chose (see ``_fit_chosen_trees``)."""
    thresholds = "random" if params.get("extra_trees") else "best"
    if params["num_leaves"] == 2:
        return f"one-split trees at the {thresholds} thresholds"
    return f"the spec's trees ({params['num_leaves']} leaves, {thresholds} thresholds)"


def run(export: Export, history, work: Path, args) -> list[tuple]:
    from sklearn.metrics import roc_auc_score

    from salespilot.features.loader import load_history
    from salespilot.features.mapping import import_history, parse_mapping
    from salespilot.models import SPECS
    from salespilot.settings import Settings
    from salespilot.training.core import labelled_rows
    from salespilot.training.evaluate import expected_calibration_error
    from salespilot.training.readiness import bootstrap_auc_difference_interval
    from salespilot.training.train import (
        build_dataset,
        horizon_spec,
        observed_horizon_rows,
        spec_for_history,
        train_model,
    )

    folder = work / export.name.replace(" ", "-")
    (folder / "export").mkdir(parents=True)
    flat = export.write(history, folder / "export", args)
    result = import_history(
        parse_mapping(export.mapping(args)), folder / "export", folder / "history"
    )
    imported = load_history(folder / "history")
    settings = Settings(data_dir=folder / "history", state_dir=work / "state")
    horizon = export.horizon(args)  # what `salespilot train --horizon-days` passes
    spec = spec_for_history(horizon_spec(SPECS[export.model], settings, horizon), imported)
    frame = observed_horizon_rows(spec, build_dataset(spec, imported), imported)
    ev = train_model(
        spec,
        imported,
        settings,
        frame=frame,
        figures=False,
        horizon_days=horizon,
        params=args.params,
    ).evaluation
    rows = labelled_rows(ev.spec, frame)
    y = rows[ev.spec.label].astype(int).to_numpy()
    x = flat.loc[rows[ev.spec.entity].astype(str)].reset_index(drop=True)
    split = ev.split
    print(
        f"{export.name}: {len(flat):,} rows -> imported {sum(result.rows.values()):,} table rows; "
        f"{len(rows):,} labelled {ev.spec.rows} rows: train {split.train.sum():,}, valid "
        f"{split.valid.sum():,}, test {split.test.sum():,} (from {split.test_start.date()}, "
        f"embargo {split.embargo_days:.0f} days); kept {_trees(ev.spec.params)}; readiness "
        + (f"{ev.readiness.verdict} ({'; '.join(ev.readiness.reasons)})" if ev.readiness else "-")
    )
    y_test = y[split.test]
    out = [(export.name, "SalesPilot", ev.metrics["roc_auc"], ev.metrics["ece"], y_test, None)]
    for name, p in hand_built(export, x[split.train], y[split.train], x[split.test]).items():
        out.append(
            (
                export.name,
                name,
                roc_auc_score(y_test, p),
                expected_calibration_error(y_test, p),
                y_test,
                bootstrap_auc_difference_interval(y_test, ev.p_test, p),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    ap.set_defaults(reps=30, months=18)
    ap.add_argument("--lead-horizon", type=int, default=120, help="lead list label horizon, days")
    ap.add_argument("--calls", type=int, default=20_000, help="latest calls in the call list")
    ap.add_argument("--churn-days", type=int, default=90, help="churn snapshot label window")
    ap.add_argument("--churn-reps", type=int, default=150, help="reps of the churn history")
    ap.add_argument("--churn-months", type=int, default=24, help="months of the churn history")
    ap.add_argument("--only", choices=[e.name for e in EXPORTS], default=None)
    ap.add_argument(
        "--params",
        action="append",
        help="LightGBM parameter override key=value for SalesPilot's models, as `salespilot "
        "train --params` takes it (e.g. seed=3 or extra_trees=false)",
    )
    args = ap.parse_args()
    from salespilot.cli.model_cmds import parse_params

    args.params = parse_params(args.params)

    histories = {}

    def history_of(export: Export):
        size = (args.reps, args.months)
        if export.model == "churn_risk":
            size = (args.churn_reps, args.churn_months)
        if size not in histories:
            reps, months = size
            histories[size] = demo_history(
                argparse.Namespace(**{**vars(args), "reps": reps, "months": months})
            )[1]
        return histories[size]

    work = Path(tempfile.mkdtemp(prefix="salespilot-flat-"))
    table = []
    for export in EXPORTS:
        if args.only in (None, export.name):
            table += run(export, history_of(export), work, args)
    print(
        f"\n{'export':<16} {'test rows':>9} {'positive':>8} {'model':<26} {'ROC AUC':>8} "
        f"{'ECE':>6}  SalesPilot minus it (90 % interval)"
    )
    for name, model, auc, ece, y_test, gap in table:
        sp_auc = next(t[2] for t in table if t[0] == name and t[1] == "SalesPilot")
        versus = "" if gap is None else f"  {sp_auc - auc:+.3f} ({gap[0]:+.3f} to {gap[1]:+.3f})"
        print(
            f"{name:<16} {len(y_test):>9,} {y_test.mean():>8.1%} {model:<26} {auc:>8.3f} "
            f"{ece:>6.3f}{versus}"
        )
    for name in dict.fromkeys(t[0] for t in table):
        mine = [t for t in table if t[0] == name]
        sp, flats = mine[0], mine[1:]
        held = all(sp[2] >= f[2] for f in flats) and sp[3] <= 0.05
        missed = [
            f"below the {f[1]} by {f[2] - sp[2]:.3f} (90 % interval of the difference "
            f"{-f[5][1]:+.3f} to {-f[5][0]:+.3f}{': within noise' if f[5][0] < 0 < f[5][1] else ''})"
            for f in flats
            if sp[2] < f[2]
        ]
        if sp[3] > 0.05:
            missed.append(f"ECE {sp[3]:.3f} > 0.05")
        print(
            f"{name}: bar {'met' if held else 'NOT met'} (ROC AUC >= both flat models, ECE <= 0.05)"
            + ("" if held else ": " + "; ".join(missed))
        )


if __name__ == "__main__":
    main()
