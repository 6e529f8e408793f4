"""How much of the churn oracle can any model reach from what a CRM records?

    uv run python bench/churn_ceiling.py                 # the bench/quality.py history
    uv run python bench/churn_ceiling.py --data DIR      # another generated history

The churn oracle knows each customer's latent health; a CRM only sees what health drives:
how often the customer gets in touch, how often the owner checks in, and whether customer
meetings are held. This script estimates health from exactly those records with a particle
filter that is *given* the generator's true dynamics and rates (`demo/chain.py`) - the best
any estimate from these records can do - and scores the test period of the churn model:

- true health alone, and filtered health alone (single-feature ROC AUC);
- the churn model as trained by `train_model`, then the same model with the filtered
  health handed to it as an extra feature;
- the oracle.

The distance between the oracle and "model + filtered health" is the part of the oracle gap
that no feature built from these records can close. Diagnostic only: the filter reads the
generator's constants, so it is not a model for real data.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd
from demo_history import add_arguments, demo_history


def weekly_counts(
    acts: pd.DataFrame, accounts: pd.Index, start: pd.Timestamp, weeks: int
) -> dict[str, np.ndarray]:
    """Per account and generator week: the customer's own contacts, check-ins, meeting outcomes."""
    no_deal = acts["opportunity_id"].isna()
    inbound = acts["direction"] == "inbound"
    outbound = acts["direction"] == "outbound"
    meeting = outbound & no_deal & acts["channel"].isin(["meeting", "demo"])
    masks = {
        "contacts": inbound & no_deal,
        "checkins": outbound & no_deal,
        "held": meeting & (acts["outcome"] == "held"),
        "postponed": meeting & (acts["outcome"] == "postponed"),
        "cancelled": meeting & (acts["outcome"] == "cancelled"),
    }
    out = {}
    for name, mask in masks.items():
        a = acts[mask.to_numpy(dtype=bool, na_value=False)]
        row = accounts.get_indexer(a["account_id"].astype(str))
        week = ((a["occurred_at"] - start) // pd.Timedelta(days=7)).to_numpy()
        ok = (row >= 0) & (week >= 0) & (week < weeks)
        counts = np.zeros((len(accounts), weeks))
        np.add.at(counts, (row[ok], week[ok]), 1)
        out[name] = counts
    return out


def filtered_health(
    counts: dict[str, np.ndarray], first_week: np.ndarray, particles: int = 300, seed: int = 0
) -> np.ndarray:
    """E[health of week w | records of the weeks before w], shape (accounts, weeks)."""
    from salespilot.features.demo import chain

    rng = np.random.default_rng(seed)
    n, weeks = counts["contacts"].shape
    days = 5 + 2 * chain.WEEKEND_SHARE
    mu = rng.normal(0.1, 0.6, (n, particles))  # new and book customers' means (generator)
    h = mu + rng.normal(0, 0.4, (n, particles))
    out = np.empty((n, weeks))
    rows = np.arange(n)[:, None]
    for w in range(weeks):
        h = mu + chain.HEALTH_AR * (h - mu) + rng.normal(0, chain.HEALTH_SD, h.shape)
        out[:, w] = h.mean(axis=1)
        lam_in = chain.CUSTOMER_INBOUND_PER_DAY * days * np.exp(chain.CUSTOMER_INBOUND_HEALTH * h)
        lam_out = chain.CUSTOMER_TOUCH_PER_DAY * 5 * np.exp(chain.CUSTOMER_TOUCH_HEALTH * h)
        p_post, p_canc = chain.meeting_outcome_probabilities(h < chain.STALLED_HEALTH, h)
        c = {k: v[:, w : w + 1] for k, v in counts.items()}
        loglik = (
            c["contacts"] * np.log(lam_in)
            - lam_in
            + c["checkins"] * np.log(lam_out)
            - lam_out
            + c["held"] * np.log1p(-p_post - p_canc)
            + c["postponed"] * np.log(p_post)
            + c["cancelled"] * np.log(p_canc)
        )
        loglik = np.where((first_week <= w)[:, None], loglik, 0.0)
        weight = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        cdf = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
        cdf[:, -1] = 1.0
        # systematic resampling of every account at once (offset each account by its row)
        u = (rng.random((n, 1)) + np.arange(particles)) / particles
        pick = np.searchsorted((cdf + rows).ravel(), (u + rows).ravel()).reshape(n, particles)
        pick = np.minimum(pick - rows * particles, particles - 1)
        h = np.take_along_axis(h, pick, axis=1)
        mu = np.take_along_axis(mu, pick, axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from sklearn.metrics import roc_auc_score

    from salespilot.features.demo.truth import read_meta, read_truth
    from salespilot.features.pit import observed_end
    from salespilot.models import SPECS
    from salespilot.training.core import fit_and_evaluate
    from salespilot.training.oracle import oracle_for
    from salespilot.training.train import build_dataset, truth_dir

    data, history = demo_history(args)
    spec = SPECS["churn_risk"]
    frame = build_dataset(spec, history)

    t0 = time.perf_counter()
    start = pd.Timestamp(read_meta(data)["start"]).tz_localize(None)
    weeks = int((observed_end(history) - start) / pd.Timedelta(days=7)) + 1
    accounts = pd.Index(frame["account_id"].astype(str).unique())
    counts = weekly_counts(history.activities, accounts, start, weeks)
    subs = history.subscriptions
    first = subs.groupby(subs["account_id"].astype(str))["started_at"].min().reindex(accounts)
    first_week = ((first - start) // pd.Timedelta(days=7)).clip(lower=0).to_numpy(dtype=int)
    post = filtered_health(counts, first_week)
    row = accounts.get_indexer(frame["account_id"].astype(str))
    week = ((frame["as_of"] - start) // pd.Timedelta(days=7)).to_numpy()
    frame["filtered_health"] = post[row, np.clip(week, 0, weeks - 1)]
    print(
        f"filtered {len(accounts):,} accounts x {weeks} weeks in {time.perf_counter() - t0:.0f} s"
    )

    oracle = oracle_for(spec, truth_dir(history), history)
    model = fit_and_evaluate(spec, frame, oracle=oracle)
    helped = fit_and_evaluate(
        spec.with_features(extra={"filtered_health": "numeric"}), frame, oracle=oracle
    )
    test, y = model.test, model.y_test

    truth = read_truth(data, "churn").sort_values("period_start")
    q = test[["account_id", "as_of"]].assign(account_id=test["account_id"].astype(str))
    q = q.reset_index().sort_values("as_of")
    true_h = pd.merge_asof(
        q,
        truth.assign(account_id=truth["account_id"].astype(str)),
        left_on="as_of",
        right_on="period_start",
        by="account_id",
        allow_exact_matches=False,
    ).set_index("index")["health"]
    true_h = true_h.reindex(test.index).fillna(true_h.mean()).to_numpy()

    rows = {
        "true health alone": roc_auc_score(y, -true_h),
        "filtered health alone": roc_auc_score(y, -test["filtered_health"].to_numpy()),
        "churn model (train_model's features)": model.metrics["roc_auc"],
        "churn model + filtered health": helped.metrics["roc_auc"],
        "oracle": model.oracle["roc_auc"],
    }
    print(
        f"\ntest period {model.split.test_start.date()} .. {model.split.test_end.date()}: "
        f"{len(test):,} rows, {int(y.sum()):,} churned"
    )
    for name, auc in rows.items():
        print(f"  {name:40s} ROC AUC {auc:.4f}   gap to oracle {rows['oracle'] - auc:+.4f}")


if __name__ == "__main__":
    main()
