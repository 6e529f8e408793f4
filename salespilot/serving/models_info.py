"""Which models serve, their metrics, and whether the service is ready or degraded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from salespilot.features.schema import models_available
from salespilot.serving.schemas import ModelInfo, ModelsResponse, Readiness

if TYPE_CHECKING:
    from salespilot.serving.state import ServingState, StateHolder


def _metrics(m: dict) -> dict[str, float]:
    out = {}
    for k, v in (m or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def models_info(state: ServingState, *, alias: str) -> ModelsResponse:
    return ModelsResponse(
        degraded=state.degraded,
        loaded_at=state.loaded_at,
        models=[
            ModelInfo(
                name=s.name,
                version=s.version,
                alias=alias,
                trained_at=None if s.trained_at is None else str(s.trained_at),
                metrics=_metrics(s.metrics),
                loaded=s.model is not None,
                stale=s.stale,
                problem=s.problem,
                readiness=s.readiness,
                horizon_days=_horizon(s),
            )
            for s in state.models.values()
        ],
    )


def readiness(holder: StateHolder) -> Readiness:
    """Ready when data are loaded and every model the data support is loaded.

    A history without subscriptions (the Maven example) has no churn model: it is ready with
    the win and contact-time models alone."""
    state = holder.state
    if state is None:
        return Readiness(
            ready=False,
            degraded=True,
            loaded_at=None,
            data_as_of=None,
            models={},
            problems=[holder.last_error or "still loading"],
        )
    problems = list(state.problems)
    if holder.last_error:
        problems.append(holder.last_error)
    if getattr(holder, "registry_problem", None):
        problems.append(holder.registry_problem)
    supported = models_available(state.present_tables)  # not waiting for the history
    ready = bool(supported) and all(state.model(n) is not None for n in supported)
    return Readiness(
        ready=ready,
        degraded=bool(problems),
        loaded_at=state.loaded_at,
        data_as_of=state.as_of.to_pydatetime(),
        models=state.versions,
        problems=problems,
    )


def _horizon(slot) -> int | None:
    """The loaded version's label horizon (recorded at training), None without one."""
    from salespilot.models import SPECS

    spec = SPECS.get(slot.name)
    return None if slot.model is None or spec is None else spec.horizon_of(slot.model)
