"""Training on a Dask cluster (``lightgbm.dask``) learns what the single-machine fit learns."""

from __future__ import annotations

import numpy as np
import pytest

from salespilot.settings import Settings
from salespilot.training.core import fit_and_evaluate
from salespilot.training.distributed import best_iteration, training_client
from tests.training.synthetic import synthetic_frame, synthetic_spec


def test_the_early_stopping_rule_keeps_the_trees_lightgbm_keeps():
    losses = np.array([0.9, 0.8, 0.7, 0.71, 0.69, 0.70, 0.72, 0.73, 0.74])
    assert best_iteration(losses, patience=3) == 5  # tree 5 is best; 3 trees without a gain
    assert best_iteration(losses, patience=1) == 3  # stops at the first tree that loses
    assert best_iteration(np.array([0.5]), patience=10) == 1


def test_a_training_cluster_that_names_no_dask_scheduler_is_refused():
    with (
        pytest.raises(ValueError, match="names no Dask cluster"),
        training_client(Settings(training_cluster="spark://x")),
    ):
        pass


def test_the_dask_fit_matches_the_single_machine_fit():
    """Two worker processes, each holding half the training rows: same test ROC AUC within
    0.005 as the fit on one machine, early-stopped on the same validation rows. The cluster is
    one this test starts, reached by its address as a deployment reaches its own
    (``SALESPILOT_TRAINING_CLUSTER=dask://HOST:PORT``)."""
    from distributed import LocalCluster

    frame = synthetic_frame(n=6000, seed=3)
    spec = synthetic_spec()
    here = fit_and_evaluate(spec, frame)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        training_client(
            Settings(training_cluster="dask://" + cluster.scheduler_address.removeprefix("tcp://"))
        ) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        spread = fit_and_evaluate(spec, frame, client=client)
    assert spread.split.test.sum() == here.split.test.sum()
    assert spread.metrics["roc_auc"] > 0.7
    assert abs(spread.metrics["roc_auc"] - here.metrics["roc_auc"]) < 0.005
    # the booster is an ordinary one: its contributions add up to its raw score
    test = spread.test.head(50)
    contrib = spread.model.contributions(test).sum(axis=1).to_numpy()
    np.testing.assert_allclose(contrib, spread.model.raw_score(test), atol=1e-6)


def test_training_cluster_dask_starts_a_local_cluster_of_the_set_size_and_closes_it():
    with training_client(Settings(training_cluster="dask", dask_workers=1)) as client:
        assert len(client.scheduler_info()["workers"]) == 1
    assert client.status == "closed"
