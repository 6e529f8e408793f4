"""MLflow tracking: one experiment per model, every training run logged and its model registered.

:func:`log_run` logs a run (parameters, metrics, figures, the model) and registers its model as a
new version with its tags (data hash, horizon, readiness verdict); :func:`compare` reads every
version back side by side. The promotion rule and the aliases are
:mod:`salespilot.training.promotion`; loading a version to score is
:mod:`salespilot.training.loading`. MLflow is imported only inside the functions that need it.

A version is registered before it is judged; a training process killed in between leaves it
half-made (no tags, its run RUNNING). :func:`open_registry`, which training, ``compare``,
``promote``, ``rollback`` and every model load go through, marks such a version ``failed``
(``promotion`` tag, with the reason) and ends its run as KILLED; a failed or half-made version
is never promoted or loaded (:func:`version_problem`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salespilot.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from salespilot.training.core import Evaluation
    from salespilot.training.scoring import SalesPilotModel

log = logging.getLogger(__name__)

FAILED = "failed"
#: run tag naming the training process (``host:pid``), so that its death can be told apart
#: from a training still under way in another process
OWNER_TAG = "salespilot.owner"


class RegistryError(RuntimeError):
    """A registry operation the user asked for cannot be done (message says why)."""


def client(settings: Settings) -> MlflowClient:
    """An MLflow client on the settings' tracking/registry store (global URIs set too)."""
    import mlflow

    warnings.filterwarnings("ignore", module="mlflow")
    # a model version is a few files: a progress bar per load is noise in the CLI and the logs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return mlflow.MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def registry(settings: Settings) -> Any:
    """The client that reads versions and moves aliases: the store's own SQLite tables
    (:mod:`salespilot.training.registry_db`, milliseconds) when the store is a SQLite file of a
    known schema, else MLflow's client (about 3 s to import and build)."""
    from salespilot.training.registry_db import open_sqlite

    return open_sqlite(settings.mlflow_tracking_uri) or client(settings)


def missing(c: Any) -> tuple[type[Exception], ...]:
    """What client ``c`` raises for a model, version, alias or run that is not there."""
    from salespilot.training.registry_db import NotFound, SqliteRegistry

    if isinstance(c, SqliteRegistry):
        return (NotFound,)
    from mlflow.exceptions import MlflowException

    return (MlflowException,)


def open_registry(settings: Settings, name: str, *, mlflow_client: bool = False) -> Any:
    """The :func:`registry` client (MLflow's with ``mlflow_client``) for model ``name``, once
    every version of it that a dead training process left half-made has been marked failed
    (see :func:`mark_interrupted`)."""
    c = client(settings) if mlflow_client else registry(settings)
    mark_interrupted(c, name)
    return c


# -- half-made versions ----------------------------------------------------------------------


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    """Is the training process ``host:pid`` still running? Unknown (another host): yes."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def version_problem(c: Any, mv: Any) -> str | None:
    """Why version ``mv`` must not be promoted or served, or None when it may.

    Failed (marked so, with its reason), half-made (registered by a training process that
    died before judging it) or still being made by another process that is alive.
    """
    tags = mv.tags or {}
    if tags.get("promotion") == FAILED:
        return f"v{mv.version} failed: {tags.get('reason', 'no reason recorded')}"
    if "promotion" in tags or not mv.run_id:
        return None
    try:
        run = c.get_run(mv.run_id)
    except missing(c):
        return f"v{mv.version} is half-made: its run {mv.run_id} is gone"
    owner = run.data.tags.get(OWNER_TAG)
    status = run.info.status
    if owner == _this_process():  # this very process is judging it
        return None
    if owner is None and status == "FINISHED":  # registered by other means than training
        return None
    if owner is not None and status in ("RUNNING", "FINISHED") and _owner_alive(owner):
        return f"v{mv.version} is still being trained (process {owner}, run {status})"
    return (
        f"v{mv.version} is half-made: training stopped after registering it, before it was "
        f"judged (run {mv.run_id} {status}" + (f", process {owner} gone)" if owner else ")")
    )


def mark_failed(c: Any, name: str, version: str, reason: str) -> None:
    """Tag ``version`` ``failed`` (``promotion``) with the ``reason``: never promoted or served."""
    c.set_model_version_tag(name, str(version), "promotion", FAILED)
    c.set_model_version_tag(name, str(version), "reason", reason)


def mark_interrupted(c: Any, name: str) -> list[str]:
    """Mark ``failed`` every version of ``name`` a training process registered and died
    before judging (run left RUNNING, no tags); end such runs as KILLED. Returns the versions
    marked. A store that refuses the writes only logs it: loading still refuses the version."""
    try:
        versions = c.search_model_versions(f"name='{name}'")
    except missing(c) as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    marked = []
    for mv in versions:
        if "promotion" in (mv.tags or {}):  # judged (or marked): the common case, no more reads
            continue
        problem = version_problem(c, mv)
        if problem is None or "half-made" not in problem:
            continue
        try:
            mark_failed(c, name, str(mv.version), f"{problem}; marked failed")
            if mv.run_id and c.get_run(mv.run_id).info.status == "RUNNING":
                c.set_terminated(mv.run_id, "KILLED")
        except (*missing(c), sqlite3.Error) as exc:  # sqlite3: a locked or read-only store
            log.warning("could not mark %s v%s failed: %s", name, mv.version, exc)
            continue
        log.warning("%s %s; marked failed", name, problem)
        marked.append(str(mv.version))
    return marked


@contextlib.contextmanager
def _known_mlflow_notices_silenced():
    """Quiet the notices every run would print: uv's virtual environments have
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


@contextlib.contextmanager
def _no_bytecode():
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


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
    return raw_features(model, rows.head(5))


def raw_features(model: SalesPilotModel, rows: pd.DataFrame) -> pd.DataFrame:
    """The model's feature columns as its registered signature has them: categoricals as
    plain strings (None where missing), the rest as float64."""
    x = rows[model.features].copy()
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
    progress: Callable[[str], None] | None = None,
) -> tuple[str, str]:
    """Log one training run (params, metrics, figures, model) and register the model.

    The run carries its process (``salespilot.owner``) so that a version this process leaves
    half-made is recognised once it is gone. Returns ``(run_id, version)``.
    """
    import lightgbm
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    from salespilot.training import pyfunc, scoring
    from salespilot.training.core import summary

    # We pin pip requirements ourselves; copying uv.lock into every model is noise.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    spec = ev.spec
    open_registry(settings, spec.name)  # versions an interrupted training left: marked first
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
        mlflow.set_tags(
            {
                "history_hash": history_hash,
                "feature_set_version": feature_set_version,
                "model": spec.name,
                OWNER_TAG: _this_process(),
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
        # the signature from a few rows; no input example: MLflow would reload and re-score the
        # model to check it at every registration (a third of the logging), which the tests
        # do in a clean interpreter instead (test_registry.py)
        example = input_example(ev.model, ev.test)
        signature = infer_signature(example, ev.model.predict_proba(example))
        ev.model.metadata.update(
            {
                "history_hash": history_hash,
                "feature_set_version": feature_set_version,
                "run_id": run.info.run_id,
            }
        )
        with (
            _known_mlflow_notices_silenced(),
            _no_bytecode(),  # MLflow runs the code once from the model's folder: no __pycache__
            tempfile.TemporaryDirectory() as tmp,
        ):
            # self-contained: the model's files, this package's scoring module under a name
            # of its own, the pyfunc as code; no pickled reference to salespilot anywhere
            files = ev.model.save(Path(tmp) / pyfunc.MODEL_ARTIFACT)
            scoring_copy = Path(tmp) / f"{pyfunc.SCORING_MODULE}.py"
            shutil.copyfile(scoring.__file__, scoring_copy)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc.__file__,
                artifacts={pyfunc.MODEL_ARTIFACT: str(files)},
                code_paths=[str(scoring_copy)],
                signature=signature,
                pip_requirements=[
                    f"mlflow=={mlflow.__version__}",
                    f"lightgbm=={lightgbm.__version__}",
                    f"scikit-learn=={sklearn.__version__}",
                    f"pandas=={pd.__version__}",
                    f"numpy=={np.__version__}",
                ],
            )
        # the metrics in one batch, on the run and its logged model at once (logged before the
        # model, MLflow would copy them to it one history read per metric)
        mlflow.log_metrics(_flat_metrics(ev), model_id=info.model_id)
        # registered with its tags in one write (a commit per tag costs more than the rest)
        version_tags = {
            "history_hash": history_hash,
            "feature_set_version": feature_set_version,
            "horizon_days": str(spec.horizon_days),
            **readiness_tags(ev),
        }
        version = str(mlflow.register_model(info.model_uri, spec.name, tags=version_tags).version)
        if progress is not None:
            progress(f"{spec.name}: registered as v{version}")
    c = client(settings)
    c.set_tag(run.info.run_id, "mlflow.runName", f"{spec.name} v{version} {data}")
    export_version(settings, c, spec.name, version, ev.model)
    return run.info.run_id, version


def export_version(
    settings: Settings, c: MlflowClient, name: str, version: str, model: SalesPilotModel
) -> None:
    """Export registered ``version`` for serving (:mod:`salespilot.training.export`): the
    version's tags, metrics and registration time as the registry holds them. A failed export
    never fails a training run: serving then loads that version through MLflow."""
    from salespilot.training.export import write_version

    try:
        mv = c.get_model_version(name, version)
        run = c.get_run(mv.run_id) if mv.run_id else None
        metrics = {k: v for k, v in (run.data.metrics if run else {}).items() if "." not in k}
        write_version(
            settings,
            name,
            version,
            model,
            run_id=mv.run_id,
            trained_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
            metrics=metrics,
            tags=dict(mv.tags or {}),
        )
    except OSError as exc:
        log.warning("could not export %s v%s for serving: %s", name, version, exc)


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


def compare(name: str, *, settings: Settings) -> list[dict[str, Any]]:
    """Every version of ``name`` side by side: test metrics, data hash, aliases, date, reason."""
    c = open_registry(settings, name)
    try:
        c.get_registered_model(name)
    except missing(c):
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
