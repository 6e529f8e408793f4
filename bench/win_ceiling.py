"""How much of the win-probability oracle can any model reach from what a CRM records?

    uv run python bench/win_ceiling.py                   # the bench/quality.py history
    uv run python bench/win_ceiling.py --seed 12         # another generated history

The oracle knows each deal's latent quality, its healthy/stalled flag, its pace and its
chain parameters; a CRM only sees what they drive (touches, replies, meetings, stage moves).
This script fits the win-probability spec on the same rows and time split as
``bench/quality.py`` and then hands the model pieces of the truth, one at a time:

- all the latents (quality, stalled, pace, chain log-odds and speed, decision maker, hand-over):
  if the model then reaches the oracle, the gap is missing information, not the learner;
- the true quality alone, and the pace's own noise (the part no record reveals);
- a *records* estimate of the quality: its posterior given the deal's touches and the
  customer's replies in its healthy periods, computed with the generator's own rates and the
  true stall timeline (more than a CRM knows, so an optimistic bound on what the activity
  records can say about quality);
- the model trained on the oracle's probabilities instead of the 0/1 labels (same features):
  the ceiling of the current features when label noise is taken away.

Diagnostic only: it reads truth/ and the generator's constants, never a model for real data.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from demo_history import add_arguments, demo_history

OUT_TOUCHES = ("call", "email", "message")


def latents_as_of(data: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The generator's state of each (opportunity_id, as_of): last truth row strictly before."""
    from salespilot.features.demo.truth import read_truth

    truth = read_truth(data, "opportunities").sort_values("valid_from", kind="stable")
    lat = read_truth(data, "opportunity_latent")
    q = pd.DataFrame(
        {
            "opportunity_id": rows["opportunity_id"].astype(str).to_numpy(),
            "as_of": rows["as_of"].astype("datetime64[ns]").to_numpy(),
            "_pos": np.arange(len(rows)),
        }
    ).sort_values("as_of", kind="stable")
    truth = truth.assign(
        opportunity_id=truth["opportunity_id"].astype(str),
        valid_from=truth["valid_from"].astype("datetime64[ns]"),
    )
    m = pd.merge_asof(
        q,
        truth,
        left_on="as_of",
        right_on="valid_from",
        by="opportunity_id",
        allow_exact_matches=False,
    ).sort_values("_pos")
    m = m.merge(lat.assign(opportunity_id=lat["opportunity_id"].astype(str)), how="left")
    flag = lambda c: m[c].astype(str).str.lower().eq("true").astype(float).to_numpy()  # noqa: E731
    quality = m["quality"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "true_quality": quality,
            "true_stalled": flag("stalled"),
            "true_pace": m["pace"].to_numpy(dtype=float),
            "true_logit": m["logit"].to_numpy(dtype=float),
            "true_speed": m["speed"].to_numpy(dtype=float),
            "true_decision_maker": flag("dm_engaged"),
            "true_bad_handover": flag("handed_over_badly"),
            # log pace = -0.2 quality + noise: the noise is what no record shows
            "true_pace_noise": np.log(m["pace"].to_numpy(dtype=float)) + 0.2 * quality,
        },
        index=rows.index,
    )


def quality_posterior(
    data: Path, history, rows: pd.DataFrame, lead_source: pd.Series
) -> np.ndarray:
    """E[quality | healthy-period touches and replies before as_of], generator rates."""
    from salespilot.features.demo import generator as g
    from salespilot.features.demo.truth import read_truth
    from salespilot.features.demo.world import STAGES

    truth = read_truth(data, "opportunities")
    truth = truth.assign(
        opportunity_id=truth["opportunity_id"].astype(str),
        valid_from=truth["valid_from"].astype("datetime64[ns]"),
    ).sort_values(["opportunity_id", "valid_from"], kind="stable")
    stage_code = pd.Series(range(len(STAGES)), index=list(STAGES))
    open_stage = truth["stage"].isin(list(STAGES)).to_numpy()
    stalled = truth["stalled"].astype(str).str.lower().eq("true").to_numpy()
    healthy = open_stage & ~stalled
    code = stage_code.reindex(truth["stage"]).fillna(0).to_numpy(dtype=int)
    workday_share = 5 / 7
    # expected touches / replies per calendar day at quality 0 while healthy in each stage
    out_rate = g.STAGE_ACTIVITY[code] * 0.8 * workday_share * 0.9  # ~season factor 0.6+0.4s
    in_rate = np.full(len(truth), 0.08 * (workday_share + 0.25 * (1 - workday_share)))
    seg = truth.assign(
        out_rate=np.where(healthy, out_rate, 0.0), in_rate=np.where(healthy, in_rate, 0.0)
    )
    nxt = seg.groupby("opportunity_id")["valid_from"].shift(-1)
    days = ((nxt - seg["valid_from"]).dt.total_seconds() / 86400).fillna(0.0)
    seg["cum_out"] = (seg["out_rate"] * days).groupby(seg["opportunity_id"]).cumsum() - (
        seg["out_rate"] * days
    )
    seg["cum_in"] = (seg["in_rate"] * days).groupby(seg["opportunity_id"]).cumsum() - (
        seg["in_rate"] * days
    )
    seg["healthy"] = healthy

    q = pd.DataFrame(
        {
            "opportunity_id": rows["opportunity_id"].astype(str).to_numpy(),
            "as_of": rows["as_of"].astype("datetime64[ns]").to_numpy(),
            "_pos": np.arange(len(rows)),
        }
    ).sort_values("as_of", kind="stable")
    m = pd.merge_asof(
        q,
        seg.sort_values("valid_from", kind="stable"),
        left_on="as_of",
        right_on="valid_from",
        by="opportunity_id",
        allow_exact_matches=False,
    ).sort_values("_pos")
    part = (m["as_of"] - m["valid_from"]).dt.total_seconds().to_numpy() / 86400
    e_out = (m["cum_out"] + m["out_rate"] * part).fillna(0.0).to_numpy()
    e_in = (m["cum_in"] + m["in_rate"] * part).fillna(0.0).to_numpy()

    acts = history.activities
    acts = acts[acts["opportunity_id"].notna()]
    acts = pd.DataFrame(
        {
            "opportunity_id": acts["opportunity_id"].astype(str).to_numpy(),
            "occurred_at": acts["occurred_at"].astype("datetime64[ns]").to_numpy(),
            "out": (
                (acts["direction"] == "outbound") & acts["channel"].isin(list(OUT_TOUCHES))
            ).to_numpy(dtype=bool, na_value=False),
            "in": (acts["direction"] == "inbound").to_numpy(dtype=bool, na_value=False),
        }
    ).sort_values("occurred_at", kind="stable")
    state = pd.merge_asof(
        acts,
        seg[["opportunity_id", "valid_from", "healthy"]].sort_values("valid_from"),
        left_on="occurred_at",
        right_on="valid_from",
        by="opportunity_id",
    )
    ok = state["healthy"].fillna(False).to_numpy(dtype=bool)
    counts = state[ok & (state["out"] | state["in"]).to_numpy()].copy()
    counts = counts.sort_values(["opportunity_id", "occurred_at"], kind="stable")
    counts["n_out"] = counts["out"].astype(int).groupby(counts["opportunity_id"]).cumsum()
    counts["n_in"] = counts["in"].astype(int).groupby(counts["opportunity_id"]).cumsum()
    c = pd.merge_asof(
        q,
        counts[["opportunity_id", "occurred_at", "n_out", "n_in"]].sort_values("occurred_at"),
        left_on="as_of",
        right_on="occurred_at",
        by="opportunity_id",
        allow_exact_matches=False,
    ).sort_values("_pos")
    n_out = c["n_out"].fillna(0).to_numpy()
    n_in = c["n_in"].fillna(0).to_numpy()

    # prior: the true quality's mean and spread per lead source (what the source tells)
    true_q = latents_as_of(data, rows)["true_quality"]
    src = lead_source.astype(str).to_numpy()
    stats = pd.DataFrame({"s": src, "q": true_q.to_numpy()}).groupby("s")["q"].agg(["mean", "std"])
    mu = stats["mean"].reindex(src).to_numpy()
    sd = stats["std"].reindex(src).to_numpy()
    grid = np.linspace(-4, 5, 181)
    out = np.empty(len(rows))
    for i in range(0, len(rows), 20000):
        s = slice(i, i + 20000)
        qg = grid[None, :]
        ll = (
            -0.5 * ((qg - mu[s, None]) / sd[s, None]) ** 2
            + n_out[s, None] * 0.45 * qg
            - e_out[s, None] * np.exp(0.45 * qg)
            + n_in[s, None] * 0.7 * qg
            - e_in[s, None] * np.exp(0.7 * qg)
        )
        w = np.exp(ll - ll.max(axis=1, keepdims=True))
        out[s] = (w * qg).sum(axis=1) / w.sum(axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    import dataclasses

    from sklearn.metrics import roc_auc_score

    from salespilot.models import SPECS
    from salespilot.training.core import fit_and_evaluate
    from salespilot.training.oracle import oracle_for
    from salespilot.training.train import build_dataset, truth_dir

    data, history = demo_history(args)
    spec = SPECS["win_probability"]
    t0 = time.perf_counter()
    frame = build_dataset(spec, history)
    frame = frame[frame[spec.label].notna()].reset_index(drop=True)
    latents = latents_as_of(data, frame)
    frame = pd.concat([frame, latents], axis=1)
    frame["records_quality"] = quality_posterior(data, history, frame, frame["lead_source"])
    ok = np.isfinite(frame["true_quality"])
    r2 = 1 - np.mean((frame["records_quality"] - frame["true_quality"])[ok] ** 2) / np.var(
        frame["true_quality"][ok]
    )
    print(
        f"{len(frame):,} labelled rows; records estimate of quality: R2 {r2:.3f} "
        f"against the true quality ({time.perf_counter() - t0:.0f} s)"
    )
    oracle = oracle_for(spec, truth_dir(history), history)

    def with_(*cols: str):
        return spec.with_features(extra=dict.fromkeys(cols, "numeric"))

    runs = {
        "win model (train_model's features)": spec,
        "+ all latents (upper bound)": with_(*latents.columns),
        "+ true quality": with_("true_quality"),
        "+ true quality + pace noise": with_("true_quality", "true_pace_noise"),
        "+ true stalled flag": with_("true_stalled"),
        "+ records estimate of quality": with_("records_quality"),
        "monotone constraints off": dataclasses.replace(spec, monotone={}),
    }
    results, evaluations = {}, {}
    for name, s in runs.items():
        t = time.perf_counter()
        ev = evaluations[name] = fit_and_evaluate(s, frame, oracle=oracle)
        results[name] = ev.metrics["roc_auc"]
        print(
            f"  {name:40s} ROC AUC {ev.metrics['roc_auc']:.4f}  ({time.perf_counter() - t:.0f} s)"
        )
    base = evaluations["win model (train_model's features)"]
    oracle_auc = base.oracle["roc_auc"]

    # the same features trained on the oracle's probabilities (no label noise)
    import lightgbm as lgb

    from salespilot.training.fit import learn_categories, prepare_features

    rows = frame.sort_values(spec.time_column, kind="stable").reset_index(drop=True)
    split = base.split
    cats = learn_categories(rows[split.train], list(spec.categorical))
    x = prepare_features(
        rows.astype({c: "object" for c in spec.categorical}), list(spec.features), cats
    )
    soft = np.asarray(oracle(rows), dtype=float)
    params = {**spec.params, "objective": "cross_entropy"}
    params["monotone_constraints"] = [int(spec.monotone.get(f, 0)) for f in spec.features]
    booster = lgb.train(
        params,
        lgb.Dataset(x[split.train], soft[split.train]),
        1000,
        valid_sets=[lgb.Dataset(x[split.valid], soft[split.valid])],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    y = rows[spec.label].to_numpy()[split.test]
    results["trained on the oracle's p (features' ceiling)"] = roc_auc_score(
        y, booster.predict(x[split.test])
    )
    results["oracle"] = oracle_auc
    print(
        f"\ntest period {split.test_start.date()} .. {split.test_end.date()}: "
        f"{int(split.test.sum()):,} rows"
    )
    for name, auc in results.items():
        print(f"  {name:46s} ROC AUC {auc:.4f}   gap to oracle {oracle_auc - auc:+.4f}")


if __name__ == "__main__":
    main()
