"""Flow plumbing shared by every flow: the task runner chosen in the settings."""

from __future__ import annotations

from typing import Any

from salespilot.settings import Settings


def task_runner(settings: Settings) -> Any:
    """The Prefect task runner the settings ask for.

    ``thread`` runs tasks in a thread pool on this machine; ``dask`` starts a local Dask
    cluster; ``dask://HOST:PORT`` (or ``tcp://...``) connects to an existing scheduler, which
    is how the flows scale out to a real cluster.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    choice = settings.task_runner.strip()
    if choice == "thread":
        return ThreadPoolTaskRunner(max_workers=2)
    if choice == "dask" or choice.startswith(("dask://", "tcp://")):
        from prefect_dask import DaskTaskRunner

        if choice == "dask":
            return DaskTaskRunner(
                cluster_kwargs={
                    "n_workers": settings.dask_workers,
                    "threads_per_worker": 1,
                    "processes": True,
                    "dashboard_address": None,
                }
            )
        address = choice.removeprefix("dask://")
        if not address.startswith("tcp://"):
            address = f"tcp://{address}"
        return DaskTaskRunner(address=address)
    raise ValueError(
        f"SALESPILOT_TASK_RUNNER={choice!r} is not a task runner: use 'thread', 'dask' or "
        "'dask://HOST:PORT'"
    )
