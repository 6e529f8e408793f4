"""``backtest_targets``: replay past quarters and log the comparison to MLflow."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.flows.features_flow import load_and_validate
from salespilot.settings import Settings


@task(cache_policy=NO_CACHE)
def replay(history, settings: Settings, periods: int, p_win: str):
    """Targets suggested with only the data before each period, against what was booked."""
    from salespilot.targets.service import backtest

    return backtest(history, settings, periods=periods, p_win=p_win)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def log_run(result, history, settings: Settings) -> str:
    """One MLflow run with the metrics per method and the fan charts (retried: the tracking
    store may be briefly away)."""
    from salespilot.targets.service import log_backtest

    return log_backtest(result, history, settings)


@flow(name="backtest_targets")
def backtest_targets(
    data_dir: str | None = None, periods: int = 4, p_win: str = "model"
) -> dict[str, Any]:
    """Replay the latest ``periods`` quarters; the result keyed by method, logged to MLflow."""
    settings = Settings()
    history = load_and_validate(str(data_dir or settings.data_dir))
    result = replay(history, settings, periods, p_win)
    out = result.to_dict()
    out["mlflow_run_id"] = log_run(result, history, settings)
    get_run_logger().info("backtest logged as MLflow run %s", out["mlflow_run_id"])
    return out
