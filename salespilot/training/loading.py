"""Loading a registered model version to score: what serving holds for each model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salespilot.settings import Settings
from salespilot.training.tracking import RegistryError, client, open_registry, version_problem

if TYPE_CHECKING:
    from salespilot.training.scoring import SalesPilotModel

CHAMPION = "champion"


@dataclass
class LoadedModel:
    """A registered model version, ready to score: what serving holds for each model.

    ``predict_proba`` gives calibrated probabilities; ``raw_score`` the booster's log-odds;
    ``contributions`` the SHAP values per feature plus ``base_value`` (they add up to
    ``raw_score``). ``readable_names`` maps each feature to words for explanations.
    """

    name: str
    version: str
    alias: str | None
    model: SalesPilotModel
    metrics: dict[str, float]
    trained_at: datetime
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return list(self.model.features)

    @property
    def readable_names(self) -> dict[str, str]:
        return dict(self.model.readable_names)

    @property
    def categorical(self) -> list[str]:
        return list(self.model.categorical)

    @property
    def metadata(self) -> dict[str, Any]:
        """Label, horizon, calibration, history hash, feature-set version, run id."""
        return dict(self.model.metadata)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(frame)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.raw_score(frame)

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.model.contributions(frame)

    def score_all(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.model.score_all(frame)


def model_version(
    name: str,
    alias: str = CHAMPION,
    settings: Settings | None = None,
    *,
    version: str | None = None,
) -> Any:
    """The registry's record of ``name`` at ``alias`` (or at ``version``): MLflow's
    ``ModelVersion``. Raises :class:`RegistryError` with a readable message when there is no
    such model/alias, the version cannot be served (failed or half-made) or the registry
    cannot be read."""
    from mlflow.exceptions import MlflowException

    from salespilot.settings import get_settings

    settings = settings or get_settings()
    try:
        c = open_registry(settings, name, mlflow_client=True)  # half-made marked failed
        mv = (
            c.get_model_version(name, str(version))
            if version
            else c.get_model_version_by_alias(name, alias)
        )
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            # the registry did not answer (server down, store unreadable): not a missing alias
            raise RegistryError(
                f"model registry {settings.mlflow_tracking_uri} could not be read: {exc.message}"
            ) from None
        what = f"version {version}" if version else f"alias {alias!r}"
        raise RegistryError(
            f"model {name!r} has no {what} in {settings.mlflow_tracking_uri}; "
            "run `salespilot train` first"
        ) from None
    problem = version_problem(c, mv)
    if problem is not None:  # failed or half-made: never served, whatever alias points at it
        what = f"@{alias}" if not version else f"version {version}"
        raise RegistryError(f"model {name!r} {what} cannot be served: {problem}")
    return mv


def load_model(
    name: str,
    alias: str = CHAMPION,
    settings: Settings | None = None,
    *,
    version: str | None = None,
) -> LoadedModel:
    """Load model ``name`` by alias (default ``champion``) or by explicit ``version``.

    Raises :class:`RegistryError` with a readable message when there is no such model/alias.
    """
    import mlflow

    from salespilot.settings import get_settings

    settings = settings or get_settings()
    mv = model_version(name, alias, settings, version=version)
    c = client(settings)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    except mlflow.exceptions.MlflowException as exc:  # its files are gone or unreadable
        raise RegistryError(
            f"model {name!r} version {mv.version} cannot be loaded from {mv.source}: {exc.message}"
        ) from None
    model: SalesPilotModel = pyfunc.unwrap_python_model().model
    run = c.get_run(mv.run_id) if mv.run_id else None
    metrics = {k: v for k, v in (run.data.metrics if run else {}).items() if "." not in k}
    return LoadedModel(
        name=name,
        version=str(mv.version),
        alias=None if version else alias,
        model=model,
        metrics=metrics,
        trained_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
        run_id=mv.run_id,
        tags=dict(mv.tags or {}),
    )
