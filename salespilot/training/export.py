"""The serving export: each registered version as plain files, and where each alias points.

MLflow's alias is the source of truth; the export mirrors it so that the API server starts
without importing MLflow or scikit-learn (together 15 s of a 20 s start). Layout under
``<state>/export/models/``::

    <name>/v<version>/booster.txt     LightGBM's text model (``Booster.model_to_string()``)
    <name>/v<version>/model.json      calibrator parameters, features, categories, names,
                                      metadata (horizon, data hash, run id)
    <name>/v<version>/version.json    version, run id, registration time, metrics, tags
    <name>/<alias>.json               {"version": ...}: where ``champion`` (``challenger``) points

A version's folder is written when it is registered (:func:`write_version`, from
:func:`salespilot.training.tracking.log_run`) and the alias files by the functions that move
the aliases (:mod:`salespilot.training.promotion`). Both are written whole or not at all (a
temporary name, then a rename). :func:`load_exported` reads a version back as a
:class:`~salespilot.training.loading.LoadedModel`; it returns ``None`` when anything is
missing, and the caller loads through MLflow instead (and may export what it loaded).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salespilot.atomic import replacing_dir, write_json
from salespilot.settings import Settings

if TYPE_CHECKING:
    from salespilot.training.loading import LoadedModel
    from salespilot.training.scoring import SalesPilotModel

log = logging.getLogger(__name__)

VERSION_FILE = "version.json"


def export_dir(settings: Settings) -> Path:
    """The folder of every model's export."""
    return Path(settings.state_dir) / "export" / "models"


def _version_dir(settings: Settings, name: str, version: str | int) -> Path:
    return export_dir(settings) / name / f"v{version}"


def _alias_file(settings: Settings, name: str, alias: str) -> Path:
    return export_dir(settings) / name / f"{alias}.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_json(path, data, indent=1, default=str)


def write_version(
    settings: Settings,
    name: str,
    version: str | int,
    model: SalesPilotModel,
    *,
    run_id: str | None,
    trained_at: datetime,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> Path:
    """Export registered ``version`` of ``name`` (replacing an earlier export of it)."""
    final = _version_dir(settings, name, version)
    with replacing_dir(final) as tmp:
        model.save(tmp)
        (tmp / VERSION_FILE).write_text(
            json.dumps(
                {
                    "name": name,
                    "version": str(version),
                    "run_id": run_id,
                    "trained_at": trained_at.isoformat(),
                    "metrics": {k: float(v) for k, v in metrics.items()},
                    "tags": {str(k): str(v) for k, v in tags.items()},
                },
                indent=1,
            )
        )
    return final


def export_loaded(settings: Settings, loaded: LoadedModel) -> Path:
    """Export a version loaded through MLflow (one registered before exports existed)."""
    return write_version(
        settings,
        loaded.name,
        loaded.version,
        loaded.model,
        run_id=loaded.run_id,
        trained_at=loaded.trained_at,
        metrics=loaded.metrics,
        tags=loaded.tags,
    )


def has_version(settings: Settings, name: str, version: str | int) -> bool:
    return (_version_dir(settings, name, version) / VERSION_FILE).is_file()


def write_alias(settings: Settings, name: str, alias: str, version: str | int | None) -> None:
    """Record that ``alias`` of ``name`` points at ``version`` (``None``: at nothing)."""
    path = _alias_file(settings, name, alias)
    if version is None:
        path.unlink(missing_ok=True)
        return
    _write_json(path, {"name": name, "alias": alias, "version": str(version)})


def exported_alias(settings: Settings, name: str, alias: str) -> str | None:
    """The version the export says ``alias`` points at, or None."""
    try:
        return str(json.loads(_alias_file(settings, name, alias).read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def load_exported(
    settings: Settings, name: str, alias: str, *, version: str | None = None, lazy: bool = False
) -> LoadedModel | None:
    """The exported version ``alias`` points at (or ``version``), or None when it is missing.

    ``lazy`` (the server's start) leaves the booster's text to be parsed on first use, so that
    a start serving stored lists does not import LightGBM before it is ready."""
    from datetime import UTC

    from salespilot.training.loading import LoadedModel

    version = version or exported_alias(settings, name, alias)
    if version is None or not has_version(settings, name, version):
        return None
    folder = _version_dir(settings, name, version)
    try:
        info = json.loads((folder / VERSION_FILE).read_text())
        from salespilot.training.lightgbm_import import booster_only
        from salespilot.training.scoring import BOOSTER_FILE, SalesPilotModel

        if lazy:
            with open(folder / BOOSTER_FILE, "rb") as f:
                if f.read(4) != b"tree":
                    raise ValueError(f"{folder / BOOSTER_FILE} is not a LightGBM text model")
        # LightGBM without scikit-learn, now or at the first use of a lazy booster
        model = SalesPilotModel.load(folder, lazy=lazy, lightgbm=booster_only)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("export of %s v%s unreadable (%s); loading through MLflow", name, version, exc)
        return None
    trained_at = datetime.fromisoformat(info["trained_at"])
    return LoadedModel(
        name=name,
        version=str(info["version"]),
        alias=alias,
        model=model,
        metrics=dict(info.get("metrics") or {}),
        trained_at=trained_at if trained_at.tzinfo else trained_at.replace(tzinfo=UTC),
        run_id=info.get("run_id"),
        tags=dict(info.get("tags") or {}),
    )
