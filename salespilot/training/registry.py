"""MLflow: one experiment per model, every run's model registered, promotion by alias.

Aliases: ``champion`` is what serving loads (``models:/<name>@champion``); ``challenger`` is the
latest version that did not beat it. The registered model's ``champion_history`` tag remembers
every champion in order, so :func:`rollback` can return to the previous one. Each version has a
``promotion`` tag (champion / challenger) and a ``reason`` tag saying why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salespilot.settings import Settings
from salespilot.training.evaluate import HIGHER_IS_BETTER, binary_metrics

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from salespilot.training.core import Evaluation
    from salespilot.training.fit import SalesPilotModel

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"


class RegistryError(RuntimeError):
    """A registry operation the user asked for cannot be done (message says why)."""


def client(settings: Settings) -> MlflowClient:
    """An MLflow client on the settings' tracking/registry store (global URIs set too)."""
    import mlflow

    warnings.filterwarnings("ignore", module="mlflow")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return mlflow.MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


@contextlib.contextmanager
def _known_mlflow_notices_silenced():
    """Quiet the notices every run would print: our model is a pickled python_model object
    (on purpose: the calibrator and booster travel together), uv's virtual environments have
    no pip to pin, and uv's lock file is not logged (the requirements are given explicitly)."""
    names = ("mlflow.pyfunc", "mlflow.utils.environment", "mlflow.utils.uv_utils")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


#: MLflow 3 opens an experiment on what its ``mlflow.experimentKind`` tag says it holds: an
#: untagged one may open on traces (a GenAI page); ours hold training runs and their metrics.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def ensure_experiment(settings: Settings, name: str) -> str:
    """The experiment id for model ``name``, created with artifacts under the state folder."""
    settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)
    return tagged_experiment(
        client(settings), name, (settings.mlflow_artifacts_dir / name).as_uri()
    )


def tagged_experiment(c: MlflowClient, name: str, artifact_location: str) -> str:
    """The id of experiment ``name`` (created at ``artifact_location`` if new), tagged so the
    MLflow UI opens it on its training runs and their metrics."""
    exp = c.get_experiment_by_name(name)
    if exp is None:
        return c.create_experiment(
            name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    if exp.tags.get(EXPERIMENT_KIND_TAG) is None:  # made before the tag was set
        c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


# -- logging a run ---------------------------------------------------------------------------


def _flat_metrics(ev: Evaluation) -> dict[str, float]:
    out = {k: v for k, v in ev.metrics.items()}
    for name, metrics in ev.baselines.items():
        out.update({f"baseline.{name}.{k}": v for k, v in metrics.items()})
    if ev.oracle:
        out.update({f"oracle.{k}": v for k, v in ev.oracle.items()})
        out["oracle_gap"] = ev.oracle_gap
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def input_example(model: SalesPilotModel, rows: pd.DataFrame) -> pd.DataFrame:
    """A few rows of raw feature values (categoricals as plain strings) for the signature."""
    x = rows[model.features].head(5).copy()
    for c in model.features:
        if c in model.categories:
            x[c] = x[c].astype("object").where(x[c].notna(), None).astype("object")
        else:
            x[c] = pd.to_numeric(x[c], errors="coerce").astype("float64")
    return x.reset_index(drop=True)


def log_run(
    ev: Evaluation,
    *,
    settings: Settings,
    history_hash: str,
    feature_set_version: str,
    figures: bool = True,
    extra_tags: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Log one training run (params, metrics, figures, model) and register the model.

    Returns ``(run_id, version)``.
    """
    import lightgbm
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    from salespilot.training.core import summary
    from salespilot.training.pyfunc import SalesPilotPyfunc

    # We pin pip requirements ourselves; copying uv.lock into every model is noise.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    spec = ev.spec
    exp_id = ensure_experiment(settings, spec.name)
    # named after the model and the data (and, once registered, its version), not at random
    data = f"data {history_hash[:8]}"
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{spec.name} {data}") as run:
        params = {f"lgbm.{k}": v for k, v in spec.params.items()}
        params.update(
            {
                "label": spec.label,
                "horizon_days": spec.horizon_days,
                "n_features": len(spec.features),
                "calibration": ev.calibration,
                "best_iteration": ev.best_iteration,
                **{f"split.{k}": v for k, v in ev.split.describe().items()},
            }
        )
        mlflow.log_params(params)
        mlflow.log_metrics(_flat_metrics(ev))
        mlflow.set_tags(
            {
                "history_hash": history_hash,
                "feature_set_version": feature_set_version,
                "model": spec.name,
                **(extra_tags or {}),
            }
        )
        mlflow.log_dict(summary(ev), "summary.json")
        mlflow.log_dict(
            {"features": list(spec.features), "readable_names": dict(spec.readable_names)},
            "features.json",
        )
        if figures:
            import matplotlib.pyplot as plt

            from salespilot.training import figures as figs

            for fname, make in (
                ("calibration_curve.png", figs.calibration_figure),
                ("lift_chart.png", figs.lift_figure),
                ("shap_summary.png", figs.shap_summary_figure),
            ):
                try:
                    fig = make(ev)
                    mlflow.log_figure(fig, f"figures/{fname}")
                    plt.close(fig)
                except Exception as exc:  # a picture must never fail a training run
                    log.warning("could not draw %s: %s", fname, exc)
        example = input_example(ev.model, ev.test)
        signature = infer_signature(example, ev.model.predict_proba(example))
        ev.model.metadata.update(
            {
                "history_hash": history_hash,
                "feature_set_version": feature_set_version,
                "run_id": run.info.run_id,
            }
        )
        with _known_mlflow_notices_silenced():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=SalesPilotPyfunc(ev.model),
                signature=signature,
                input_example=example,
                pip_requirements=[
                    f"mlflow=={mlflow.__version__}",
                    f"lightgbm=={lightgbm.__version__}",
                    f"scikit-learn=={sklearn.__version__}",
                    f"pandas=={pd.__version__}",
                    f"numpy=={np.__version__}",
                ],
                registered_model_name=spec.name,
            )
    version = str(info.registered_model_version)
    c = client(settings)
    c.set_tag(run.info.run_id, "mlflow.runName", f"{spec.name} v{version} {data}")
    c.set_model_version_tag(spec.name, version, "history_hash", history_hash)
    c.set_model_version_tag(spec.name, version, "feature_set_version", feature_set_version)
    c.set_model_version_tag(spec.name, version, "horizon_days", str(spec.horizon_days))
    for key, value in readiness_tags(ev).items():
        c.set_model_version_tag(spec.name, version, key, value)
    return run.info.run_id, version


def readiness_tags(ev: Evaluation) -> dict[str, str]:
    """The version tags of the verdict: ``readiness``, ``readiness_reasons`` and ``leak_review``
    (JSON lists; the features named for review as possible after-the-fact fields), and for the
    win model ``readiness_won_vs_lost`` (JSON: won against lost among the closed test deals)."""
    tags = {"leak_review": json.dumps(list(ev.leak_review))}
    if ev.baselines_left_out:  # baselines with no data to stand on: name -> why
        tags["baselines_left_out"] = json.dumps(dict(ev.baselines_left_out))
    if ev.readiness is not None:
        tags["readiness"] = ev.readiness.verdict
        tags["readiness_reasons"] = json.dumps(ev.readiness.reasons)
        if ev.readiness.won_vs_lost is not None:
            tags["readiness_won_vs_lost"] = json.dumps(ev.readiness.won_vs_lost.to_json())
    return tags


def readiness_from_tags(tags: dict[str, str] | None) -> dict[str, Any] | None:
    """``{"verdict", "reasons", "won_vs_lost"}`` read back from a version's tags (None for
    older versions; ``won_vs_lost`` None for models other than the win model)."""
    tags = tags or {}
    if "readiness" not in tags:
        return None
    try:
        reasons = json.loads(tags.get("readiness_reasons", "[]"))
    except json.JSONDecodeError:
        reasons = [tags["readiness_reasons"]]
    try:
        won_lost = json.loads(tags.get("readiness_won_vs_lost", "null"))
    except json.JSONDecodeError:
        won_lost = None
    return {"verdict": tags["readiness"], "reasons": reasons, "won_vs_lost": won_lost}


# -- promotion -------------------------------------------------------------------------------


def _history(c: MlflowClient, name: str) -> list[str]:
    tags = c.get_registered_model(name).tags or {}
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def current_champion(settings: Settings, name: str) -> str | None:
    """The version the ``champion`` alias points at, or None."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    try:
        return str(c.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def decide_promotion(ev: Evaluation, settings: Settings, version: str) -> tuple[bool, str, dict]:
    """Does the new ``version`` beat the champion on the new test rows by the spec's margin?

    The champion is re-scored on exactly the rows the new version was tested on, so the
    comparison is fair even when the champion was trained on older data. Returns
    ``(becomes_champion, reason, champion_metrics)``.
    """
    from salespilot.training.readiness import NOT_READY

    spec = ev.spec
    champ_version = current_champion(settings, spec.name)
    if ev.readiness is not None and ev.readiness.verdict == NOT_READY:
        keeps = (
            "no champion yet" if champ_version is None else f"the champion v{champ_version} stays"
        )
        return (
            False,
            f"not ready ({'; '.join(ev.readiness.reasons)}); {keeps}. "
            f"What would help: {ev.readiness.help}",
            {},
        )
    if champ_version is None:
        return True, "first version: no champion yet", {}
    try:
        champ = load_model(spec.name, alias=CHAMPION, settings=settings)
        champ_horizon = getattr(champ, "metadata", {}).get("horizon_days", spec.horizon_days)
        if spec.horizon_applies and int(champ_horizon) != spec.horizon_days:
            return (
                False,
                f"the champion v{champ_version} predicts {champ_horizon} days ahead, this version "
                f"{spec.horizon_days}: a different question, so neither beats the other; make it "
                f"the champion by hand (salespilot promote {spec.name} {version})",
                {},
            )
        champ_metrics = binary_metrics(ev.y_test, champ.predict_proba(ev.test))
    except KeyError as exc:
        return True, f"champion v{champ_version} cannot score the new feature table ({exc})", {}
    m = spec.promotion_metric
    sign = 1.0 if m in HIGHER_IS_BETTER else -1.0
    new, old = ev.metrics[m], champ_metrics[m]
    gain = sign * (new - old)
    ece_new, ece_old = ev.metrics["ece"], champ_metrics["ece"]
    if gain < spec.promotion_margin:
        return (
            False,
            f"{m} {new:.4f} vs champion v{champ_version} {old:.4f} on the same test rows: "
            f"does not beat it by the margin {spec.promotion_margin}",
            champ_metrics,
        )
    if ece_new > ece_old + spec.ece_tolerance:
        return (
            False,
            f"{m} {new:.4f} beats champion v{champ_version} ({old:.4f}) but calibration is worse: "
            f"ece {ece_new:.4f} vs {ece_old:.4f} (tolerance {spec.ece_tolerance})",
            champ_metrics,
        )
    return (
        True,
        f"{m} {new:.4f} beats champion v{champ_version} {old:.4f} by {gain:.4f} "
        f"(margin {spec.promotion_margin}); ece {ece_new:.4f} vs {ece_old:.4f}",
        champ_metrics,
    )


def _set_promotion_tags(c: MlflowClient, name: str, version: str, status: str, reason: str) -> None:
    c.set_model_version_tag(name, version, "promotion", status)
    c.set_model_version_tag(name, version, "reason", reason)


def promote(
    name: str, version: str | int, *, settings: Settings, reason: str = "promoted by hand"
) -> str:
    """Make ``version`` the champion (remembering the previous one for :func:`rollback`)."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    version = str(version)
    try:
        c.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"model {name!r} has no version {version}") from None
    history = _history(c, name)
    previous = current_champion(settings, name)
    if previous is not None and (not history or history[-1] != previous):
        history.append(previous)
    if previous == version:
        return version
    history.append(version)
    c.set_registered_model_alias(name, CHAMPION, version)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    if previous is not None:
        c.set_registered_model_alias(name, "previous_champion", previous)
    try:
        if str(c.get_model_version_by_alias(name, CHALLENGER).version) == version:
            c.delete_registered_model_alias(name, CHALLENGER)
    except MlflowException:
        pass
    _set_promotion_tags(c, name, version, CHAMPION, reason)
    return version


def mark_challenger(name: str, version: str, *, settings: Settings, reason: str) -> None:
    """Alias ``version`` as the challenger and log why it is not the champion."""
    c = client(settings)
    c.set_registered_model_alias(name, CHALLENGER, str(version))
    _set_promotion_tags(c, name, str(version), CHALLENGER, reason)


def rollback(name: str, *, settings: Settings) -> str:
    """Point ``champion`` back at the previous champion; returns that version."""
    c = client(settings)
    try:
        c.get_registered_model(name)
    except Exception:
        raise RegistryError(f"no registered model {name!r}; train it first") from None
    current = current_champion(settings, name)
    history = _history(c, name)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(
            f"{name}: no previous champion to roll back to (champion is v{current})"
        )
    target = history[-1]
    c.set_registered_model_alias(name, CHAMPION, target)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    if current is not None:
        _set_promotion_tags(c, name, current, "rolled_back", f"rolled back to v{target}")
    _set_promotion_tags(c, name, target, CHAMPION, f"restored by rollback from v{current}")
    if len(history) >= 2:
        c.set_registered_model_alias(name, "previous_champion", history[-2])
    else:
        with contextlib.suppress(Exception):
            c.delete_registered_model_alias(name, "previous_champion")
    return target


def compare(name: str, *, settings: Settings) -> list[dict[str, Any]]:
    """Every version of ``name`` side by side: test metrics, data hash, aliases, date, reason."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    try:
        c.get_registered_model(name)
    except MlflowException:
        raise RegistryError(f"no registered model {name!r}; train it first") from None
    out = []
    found = c.search_model_versions(f"name='{name}'")
    for mv in sorted(
        (c.get_model_version(name, v.version) for v in found), key=lambda v: int(v.version)
    ):
        run = c.get_run(mv.run_id) if mv.run_id else None
        metrics = run.data.metrics if run else {}
        out.append(
            {
                "version": str(mv.version),
                "aliases": sorted(mv.aliases or []),
                "created_at": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
                "history_hash": (mv.tags or {}).get("history_hash"),
                "horizon_days": (mv.tags or {}).get("horizon_days"),
                "feature_set_version": (mv.tags or {}).get("feature_set_version"),
                "promotion": (mv.tags or {}).get("promotion"),
                "reason": (mv.tags or {}).get("reason"),
                "readiness": readiness_from_tags(mv.tags),
                "leak_review": json.loads((mv.tags or {}).get("leak_review", "[]")),
                "baselines_left_out": json.loads((mv.tags or {}).get("baselines_left_out", "{}")),
                "run_id": mv.run_id,
                "metrics": {k: v for k, v in sorted(metrics.items()) if "." not in k},
                "baselines": _nested(metrics, "baseline."),
                "oracle": {
                    k[len("oracle.") :]: v for k, v in metrics.items() if k.startswith("oracle.")
                }
                or None,
            }
        )
    return out


def _nested(metrics: dict[str, float], prefix: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for k, v in metrics.items():
        if k.startswith(prefix):
            base, metric = k[len(prefix) :].split(".", 1)
            out.setdefault(base, {})[metric] = v
    return out


# -- loading ---------------------------------------------------------------------------------


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
    from mlflow.exceptions import MlflowException

    from salespilot.settings import get_settings

    settings = settings or get_settings()
    c = client(settings)
    try:
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
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
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
