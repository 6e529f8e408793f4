"""Training overhead: ``train_model`` against a bare ``lgb.train`` on the same labelled frame.

    uv run python bench/training.py [--reps 30] [--months 18] [--model win_probability] [--runs 3]

Builds the model's labelled feature table and the history's hash once (outside the timings, as
``salespilot train`` does: it hashes the history to find the stored feature table, then hands
both to ``train_model``), trains once to create the MLflow store (a fresh store costs seconds of table creation; a real installation reuses its
store), then times, in turns, ``train_model`` (split, early-stopped LightGBM, calibration,
baselines, oracle, MLflow logging and registration; figures off unless ``--figures``) and a bare
``lgb.train`` with the model's parameters and the same number of trees on the same rows. Prints
the medians and their ratio; it shares the machine's cores, so quote the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from demo_history import add_arguments, demo_history


def main() -> None:
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    ap.set_defaults(reps=30, months=18)
    ap.add_argument("--model", default="win_probability")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--figures", action="store_true", help="train_model with its figures")
    args = ap.parse_args()

    import lightgbm as lgb
    import numpy as np

    from salespilot.models import SPECS
    from salespilot.settings import Settings
    from salespilot.training import train_model
    from salespilot.training.fit import _train_params, learn_categories, prepare_features
    from salespilot.training.train import build_dataset

    _, history = demo_history(args)
    spec = SPECS[args.model]
    t = time.perf_counter()
    frame = build_dataset(spec, history)
    history_hash = history.content_hash()
    print(f"{spec.name}: {len(frame):,} labelled rows built in {time.perf_counter() - t:.1f} s")
    settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix="sp-bench-training-")))
    features, categorical = list(spec.features), list(spec.categorical)
    labelled = frame[frame[spec.label].notna()]
    y = labelled[spec.label].to_numpy(dtype=int)
    categories = learn_categories(labelled, categorical)
    x = prepare_features(labelled, features, categories)

    def full() -> int:
        r = train_model(
            spec, history, settings, frame=frame, figures=args.figures, history_hash=history_hash
        )
        return int(r.evaluation.model.metadata["trees"])

    trees = full()  # creates the MLflow store: not counted
    params = _train_params(dict(spec.params), features, None, y)
    params.pop("num_boost_round", None)
    params.pop("early_stopping_rounds", None)
    params["verbose"] = -1

    def bare() -> None:
        data = lgb.Dataset(x, label=y, categorical_feature=categorical or "auto")
        lgb.train(params, data, num_boost_round=trees)

    a, b = [], []
    for _ in range(args.runs):  # in turns: the machine's drift hits both
        t = time.perf_counter()
        full()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare()
        b.append(time.perf_counter() - t)
    ta, tb = statistics.median(a), statistics.median(b)
    print(f"train_model ({'with' if args.figures else 'no'} figures, store reused): {ta:.2f} s")
    print(f"bare lgb.train, {trees} trees, {len(labelled):,} rows: {tb:.2f} s")
    print(
        f"ratio {ta / tb:.1f}x (medians of {args.runs}; per run {np.round(np.array(a) / np.array(b), 1)})"
    )


if __name__ == "__main__":
    main()
