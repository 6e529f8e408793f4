"""Bounded waits on the model registry for the serving reloads.

MLflow's own client waits up to 120 s a request and retries 7 times with backoff: a reload
against a stopped tracking server hung for minutes while /ready still said all was well. Here a
reload first asks the registry one cheap question with a short timeout (an HTTP server's
``/health``; a SQLite store's file), so an unreachable registry is reported within
``serving_registry_timeout_s`` with the right message, and MLflow's requests are bounded by
the same settings. After a failed load the cached MLflow stores and their database
connections are dropped, so a store that comes back (a restarted server, a SQLite file moved
away and back) is opened afresh by the next reload instead of through stale handles.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from salespilot.settings import Settings

log = logging.getLogger(__name__)


def bound_mlflow_requests(settings: Settings) -> None:
    """Cap MLflow's HTTP timeout and retries for this process (explicit MLFLOW_* env wins)."""
    os.environ.setdefault(
        "MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(settings.serving_registry_timeout_s)))
    )
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(settings.serving_registry_retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def registry_problem(settings: Settings) -> str | None:
    """Why the registry cannot be read right now (``None``: it answers)."""
    uri = settings.mlflow_tracking_uri or ""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        auth = None
        if parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        base = parts._replace(netloc=netloc).geturl().rstrip("/")
        timeout = settings.serving_registry_timeout_s
        last: Exception | None = None
        for _ in range(1 + settings.serving_registry_retries):
            try:
                httpx.get(f"{base}/health", timeout=timeout, auth=auth)
                return None  # any answer: the server is up (auth is MLflow's to judge)
            except httpx.HTTPError as exc:
                last = exc
        return (
            f"model registry unreachable at {uri} (no answer within {timeout:g}s): "
            f"{type(last).__name__}"
        )
    if parts.scheme == "sqlite":
        path = Path(unquote(uri.split("sqlite:///", 1)[-1]))
        if not path.is_file():
            # never let a reload create an empty store in its place
            return f"no model registry at {path}: run `salespilot train` first (or restore it)"
    return None


def forget_registry_connections() -> None:
    """Drop MLflow's cached stores and dispose their database engines."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking_utils._tracking_store_registry._get_store_with_resolved_uri.cache_clear()
    registries = registry_utils._get_store_registry()
    registries._get_store_with_resolved_uri.cache_clear()
    for store in (TrackingStore, RegistryStore):
        with store._engine_map_lock:
            engines = list(store._engine_map.values())
            store._engine_map.clear()
        for engine in engines:
            try:
                engine.dispose()
            except Exception as exc:  # a broken pool must not stop the reset
                log.debug("engine dispose failed: %s", exc)
