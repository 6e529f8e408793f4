"""LightGBM parameters the three specs start from (small trees, deterministic, two threads)."""

from __future__ import annotations

BASE_PARAMS: dict = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 20.0,
    "min_data_per_group": 50,
    # One thread: these tables are small, and on a shared machine OpenMP threads spin-waiting
    # for a busy core make LightGBM 100x slower. Raise it (with OMP_WAIT_POLICY=passive) for big data.
    "num_threads": 1,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
