"""The promotion rule and the aliases: which version is the champion, and why.

Aliases: ``champion`` is what serving loads (``models:/<name>@champion``); ``challenger`` is the
latest version that did not beat it. The registered model's ``champion_history`` tag remembers
every champion in order, so :func:`rollback` can return to the previous one. Each version has a
``promotion`` tag (champion / challenger, or failed: see
:func:`salespilot.training.tracking.version_problem`) and a ``reason`` tag saying why.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from salespilot.settings import Settings
from salespilot.training import export
from salespilot.training.evaluate import HIGHER_IS_BETTER, binary_metrics
from salespilot.training.loading import CHAMPION, load_model
from salespilot.training.tracking import (
    RegistryError,
    missing,
    open_registry,
    registry,
    version_problem,
)

if TYPE_CHECKING:
    from salespilot.training.core import Evaluation

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"


def _history(c: Any, name: str) -> list[str]:
    tags = c.get_registered_model(name).tags or {}
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def current_champion(settings: Settings, name: str, c: Any = None) -> str | None:
    """The version the ``champion`` alias points at, or None (read through client ``c``,
    by default the :func:`~salespilot.training.tracking.registry` one)."""
    c = c or registry(settings)
    try:
        return str(c.get_model_version_by_alias(name, CHAMPION).version)
    except missing(c):
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
        # the champion's export (written when it was registered) is the same model as its
        # MLflow copy without the cost of loading the latter; MLflow when it is missing
        champ = export.load_exported(
            settings, spec.name, CHAMPION, version=champ_version
        ) or load_model(spec.name, alias=CHAMPION, settings=settings)
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


def _set_promotion_tags(c: Any, name: str, version: str, status: str, reason: str) -> None:
    c.set_model_version_tag(name, version, "promotion", status)
    c.set_model_version_tag(name, version, "reason", reason)


def promote(
    name: str, version: str | int, *, settings: Settings, reason: str = "promoted by hand"
) -> str:
    """Make ``version`` the champion (remembering the previous one for :func:`rollback`)."""
    c = open_registry(settings, name)
    version = str(version)
    try:
        mv = c.get_model_version(name, version)
    except missing(c):
        raise RegistryError(f"model {name!r} has no version {version}") from None
    problem = version_problem(c, mv)
    if problem is not None:  # failed, half-made, or still being trained elsewhere
        raise RegistryError(f"{name} v{version} cannot be promoted: {problem}")
    history = _history(c, name)
    previous = current_champion(settings, name, c)
    if previous is not None and (not history or history[-1] != previous):
        history.append(previous)
    if previous == version:
        export_alias(settings, name, CHAMPION, version)
        return version
    history.append(version)
    c.set_registered_model_alias(name, CHAMPION, version)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    if previous is not None:
        c.set_registered_model_alias(name, "previous_champion", previous)
    try:
        if str(c.get_model_version_by_alias(name, CHALLENGER).version) == version:
            c.delete_registered_model_alias(name, CHALLENGER)
            export_alias(settings, name, CHALLENGER, None)
    except missing(c):
        pass
    _set_promotion_tags(c, name, version, CHAMPION, reason)
    export_alias(settings, name, CHAMPION, version)
    return version


def mark_challenger(name: str, version: str, *, settings: Settings, reason: str) -> None:
    """Alias ``version`` as the challenger and log why it is not the champion."""
    c = registry(settings)
    c.set_registered_model_alias(name, CHALLENGER, str(version))
    _set_promotion_tags(c, name, str(version), CHALLENGER, reason)
    export_alias(settings, name, CHALLENGER, str(version))


def rollback(name: str, *, settings: Settings) -> str:
    """Point ``champion`` back at the previous champion; returns that version."""
    try:
        c = open_registry(settings, name)
        c.get_registered_model(name)
    except Exception:
        raise RegistryError(f"no registered model {name!r}; train it first") from None
    current = current_champion(settings, name, c)
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
    export_alias(settings, name, CHAMPION, target)
    return target


def export_alias(settings: Settings, name: str, alias: str, version: str | None) -> None:
    """Mirror where ``alias`` now points in the serving export (:mod:`salespilot.training.export`),
    exporting that version first when it was registered before exports existed. Every function
    here that moves an alias calls this; a failure only costs the server a slower start
    (it then loads the version through MLflow)."""
    try:
        if version is not None and not export.has_version(settings, name, version):
            export.export_loaded(settings, load_model(name, settings=settings, version=version))
        export.write_alias(settings, name, alias, version)
    except (OSError, RegistryError) as exc:
        log.warning("could not export %s@%s for serving: %s", name, alias, exc)
