"""Training a booster on a Dask cluster with ``lightgbm.dask``, for histories one machine can't hold.

The frame is split into one partition per worker, so no worker holds the whole training set;
LightGBM's data-parallel learner builds each tree from the workers' histograms. The booster that
comes back is an ordinary ``lightgbm.Booster``: calibration, SHAP contributions, MLflow logging
and serving do not know where it was grown.

``lightgbm.dask`` does not support early stopping (each worker would judge its own share of the
validation rows). :func:`dask_train` grows up to ``num_boost_round`` trees on the cluster and then
applies the same rule as LightGBM's ``early_stopping`` callback to the validation log loss after
each tree, computed on this machine, and keeps the trees up to the best one: the same trees an
early-stopped single-machine fit keeps, grown from the same data.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from salespilot.settings import Settings


@contextlib.contextmanager
def training_client(settings: Settings) -> Iterator[Any]:
    """A ``distributed.Client`` on the cluster the settings name, or ``None`` to train here.

    ``training_cluster`` ``none`` trains on this machine; ``dask://HOST:PORT`` (or
    ``tcp://...``) connects to an existing scheduler; ``dask`` starts a local cluster of
    ``dask_workers`` processes for this training and closes it after.
    """
    choice = settings.training_cluster.strip()
    if choice == "none":
        yield None
        return
    from distributed import Client, LocalCluster

    if choice != "dask" and not choice.startswith(("dask://", "tcp://")):
        raise ValueError(
            f"SALESPILOT_TRAINING_CLUSTER={choice!r} names no Dask cluster: use 'dask' or "
            "'dask://HOST:PORT' (or 'none' to train on this machine)"
        )
    if choice == "dask":
        with (
            LocalCluster(
                n_workers=settings.dask_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    address = choice.removeprefix("dask://")
    if not address.startswith("tcp://"):
        address = f"tcp://{address}"
    with Client(address) as client:
        yield client


def _log_loss_after_each_tree(
    booster: Any, x: pd.DataFrame, y: np.ndarray, trees: int
) -> np.ndarray:
    """The validation log loss after tree 1, 2, ..., ``trees`` (one pass per tree)."""
    raw = np.zeros(len(x))
    y = np.asarray(y, dtype=float)
    losses = np.empty(trees)
    for i in range(trees):
        raw += booster.predict(x, raw_score=True, start_iteration=i, num_iteration=1)
        # log loss of sigmoid(raw), written stably: log(1 + e^raw) - y * raw
        losses[i] = float(np.mean(np.logaddexp(0.0, raw) - y * raw))
    return losses


def best_iteration(losses: np.ndarray, patience: int) -> int:
    """The tree count LightGBM's ``early_stopping(patience)`` keeps for these validation losses:
    training stops once ``patience`` trees in a row brought no improvement on the best so far."""
    best, best_loss = 0, np.inf
    for i, loss in enumerate(losses):
        if loss < best_loss:
            best, best_loss = i, loss
        elif i - best >= patience:
            break
    return best + 1


def dask_train(
    params: Mapping[str, Any],
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    client: Any,
    num_boost_round: int,
    valid: tuple[pd.DataFrame, np.ndarray] | None = None,
    early_stopping_rounds: int | None = None,
) -> Any:
    """Grow a booster on the cluster behind ``client``; ``x`` is the prepared feature matrix
    (:func:`~salespilot.training.fit.prepare_features`: floats and pandas categoricals).

    With ``valid`` and ``early_stopping_rounds`` the booster is trimmed to the best iteration
    on the validation rows (see the module's docstring)."""
    import dask.dataframe as dd

    from salespilot.training.lightgbm_import import with_scikit_learn

    lgb = with_scikit_learn()  # the Dask estimators are scikit-learn estimators
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    parts = max(min(workers, len(x)), 1)
    dx = dd.from_pandas(x.reset_index(drop=True), npartitions=parts)
    dy = dd.from_pandas(pd.Series(np.asarray(y, dtype=int)), npartitions=parts)
    # one partition each, so no worker waits on another's rows
    dx, dy = client.persist([dx, dy])
    # each worker uses its own threads (its Dask threads): LightGBM says it ignores these
    params = {k: v for k, v in params.items() if k not in {"num_threads", "n_jobs"}}
    estimator = lgb.DaskLGBMClassifier(client=client, n_estimators=int(num_boost_round), **params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        estimator.fit(
            dx, dy, categorical_feature=[c for c in x.columns if x[c].dtype == "category"]
        )
    booster = estimator.booster_
    if valid is not None and early_stopping_rounds:
        vx, vy = valid
        trees = booster.current_iteration()
        keep = best_iteration(
            _log_loss_after_each_tree(booster, vx, vy, trees), early_stopping_rounds
        )
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=keep))
    return booster
