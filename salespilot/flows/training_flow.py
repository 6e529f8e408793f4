"""``train_models``: train, register and judge the models; one failure never stops the others."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.settings import Settings


def is_transient(exc: BaseException | None) -> bool:
    """Errors worth retrying: the tracking store or the network briefly away, not bad data."""
    if exc is None or isinstance(exc, ValueError):  # validation, too little data, bad params
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    markers = ("database is locked", "connection", "temporarily unavailable", "timed out", "503")
    return any(m in text for m in markers)


def _retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except BaseException as exc:
        return is_transient(exc)
    return False


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=_retry_transient)
def train_one(
    name: str, data_dir: str, features_dir: str | None, params: dict[str, Any] | None
) -> dict[str, Any]:
    """Train one model (reusing the stored feature table when it matches the history)."""
    from salespilot.features.loader import load_history
    from salespilot.training.runs import train_named

    settings = Settings()
    history = load_history(data_dir, observed_until=settings.observed_until)
    return train_named(name, history, settings, params=params, features_dir=features_dir).to_json()


@flow(name="train_models")
def train_models(
    models: list[str] | None = None,
    data_dir: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the named models (default all); report each one's result or its error."""
    from salespilot.models import SPECS
    from salespilot.training.runs import failure_report

    logger = get_run_logger()
    settings = Settings()
    names = models or list(SPECS)
    data_dir = str(data_dir or settings.data_dir)
    features_dir = str(settings.features_dir)
    results: dict[str, Any] = {}
    for name in names:
        state = train_one(name, data_dir, features_dir, (params or {}).get(name), return_state=True)
        if state.is_completed():
            results[name] = state.result()
        else:
            try:
                state.result()
            except Exception as exc:
                results[name] = failure_report(exc)
                if "skipped" in results[name]:
                    logger.warning(results[name]["skipped"])
                else:
                    logger.error("%s failed; its champion is untouched: %s", name, exc)
    return results
