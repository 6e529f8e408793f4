"""``backtest_targets``: replay past quarters and log the comparison to MLflow."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.flows.features_flow import load_and_validate
from salespilot.settings import Settings


@task(cache_policy=NO_CACHE)
def replay(history, settings: Settings, periods: int):
    """Targets suggested with only the data before each period, against what was booked."""
    from salespilot.serving.targets.backtest import run_backtest
    from salespilot.serving.targets.service import configs_from_settings

    forecast_config, target_config, _ = configs_from_settings(settings)
    return run_backtest(
        history, periods=periods, forecast_config=forecast_config, target_config=target_config
    )


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def log_backtest(result, history_hash: str, settings: Settings) -> str:
    """One MLflow run with the metrics per method and a fan chart per team (retried: the
    tracking store may be briefly away)."""
    from salespilot.serving.targets.backtest import log_to_mlflow
    from salespilot.serving.targets.service import configs_from_settings

    forecast_config, target_config, _ = configs_from_settings(settings)
    return log_to_mlflow(
        result,
        tracking_uri=settings.mlflow_tracking_uri,
        artifacts_dir=settings.mlflow_artifacts_dir,
        params={
            "base_quantile": target_config.base_quantile,
            "simulations": forecast_config.simulations,
            "ramp_months": forecast_config.ramp_months,
            "data_hash": history_hash,
        },
    )


@flow(name="backtest_targets")
def backtest_targets(data_dir: str | None = None, periods: int = 4) -> dict[str, Any]:
    """Replay the latest ``periods`` quarters; the result keyed by method, logged to MLflow."""
    settings = Settings()
    history = load_and_validate(str(data_dir or settings.data_dir))
    result = replay(history, settings, periods)
    out = result.to_dict()
    out["mlflow_run_id"] = log_backtest(result, history.content_hash(), settings)
    get_run_logger().info("backtest logged as MLflow run %s", out["mlflow_run_id"])
    return out
