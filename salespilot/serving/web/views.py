"""What each page shows, as plain data: no FastAPI here, the routes only pass it to templates."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from salespilot.serving.schemas import PriorityItem
from salespilot.settings import Settings

log = logging.getLogger(__name__)


def find_item(state, rep_id: str, entity_id: str) -> PriorityItem | None:
    return next((it for it in state.rep_items.get(rep_id, ()) if it.entity_id == entity_id), None)


def stage_path(history, opportunity_id: str) -> list[dict[str, Any]]:
    """The deal's stages in order, each with the day it was entered and the days spent in it."""
    sc = history.stage_changes
    if sc is None or item_missing(sc, "opportunity_id"):
        return []
    rows = sc[sc["opportunity_id"] == opportunity_id].sort_values("changed_at")
    out = []
    times = [*rows["changed_at"], None]
    for (stage, at), nxt in zip(
        rows[["stage", "changed_at"]].itertuples(index=False), times[1:], strict=True
    ):
        days = None if nxt is None else round((nxt - at) / pd.Timedelta(days=1), 1)
        out.append({"stage": str(stage), "entered": at, "days": days})
    return out


def item_missing(frame: pd.DataFrame, column: str) -> bool:
    return column not in frame.columns or frame.empty


def timeline(history, item: PriorityItem, limit: int = 12) -> list[dict[str, Any]]:
    """The latest activities of the deal (or of the account, for an at-risk account)."""
    acts = history.activities
    if acts is None or acts.empty:
        return []
    if item.kind == "deal" and "opportunity_id" in acts.columns:
        rows = acts[acts["opportunity_id"] == item.entity_id]
    else:
        rows = acts[acts["account_id"] == item.account_id]
    rows = rows.sort_values("occurred_at", ascending=False).head(limit)
    return [
        {
            "at": r.occurred_at,
            "channel": r.channel,
            "direction": r.direction,
            "outcome": None if pd.isna(r.outcome) else r.outcome,
        }
        for r in rows.itertuples(index=False)
    ]


def team_deals_at_risk(state, team: str, limit: int = 10) -> list[tuple[str, PriorityItem]]:
    """The team's listed deals that trip a warning, by value at stake: (rep_id, item)."""
    out = [
        (rep_id, it)
        for rep_id, items in state.rep_items.items()
        if state.rep_team(rep_id) == team
        for it in items
        if it.kind == "deal" and it.warnings
    ]
    out.sort(key=lambda ri: -ri[1].value_at_stake)
    return out[:limit]


def _calibration_curve(settings: Settings, run_id: str | None, cache: dict) -> dict | None:
    if not run_id:
        return None
    key = ("calibration_curve", run_id)
    if key not in cache:
        from salespilot.training.tracking import client

        try:
            path = client(settings).download_artifacts(run_id, "summary.json")
            with open(path, encoding="utf-8") as f:
                cache[key] = json.load(f).get("calibration_curve")
        except Exception as exc:  # an old run without the file: no curve, the page still shows
            log.info("no calibration curve for run %s: %s", run_id, exc)
            cache[key] = None
    return cache[key]


def models_overview(settings: Settings, cache: dict) -> list[dict[str, Any]]:
    """Every model: its versions side by side (champion first), with calibration curves."""
    from salespilot.models import SPECS
    from salespilot.training.tracking import RegistryError, compare

    out = []
    for name, spec in SPECS.items():
        try:
            versions = compare(name, settings=settings)
        except RegistryError as exc:
            out.append({"name": name, "versions": [], "problem": str(exc)})
            continue
        for v in versions:
            v["calibration_curve"] = _calibration_curve(settings, v.get("run_id"), cache)
        champion = [v for v in versions if "champion" in v["aliases"]]
        others = sorted(
            (v for v in versions if "champion" not in v["aliases"]),
            key=lambda v: -int(v["version"]),
        )
        out.append(
            {
                "name": name,
                "metric": spec.promotion_metric,
                "versions": champion + others,
                "problem": None,
            }
        )
    return out


def mlflow_ui(settings: Settings) -> dict[str, str]:
    uri = str(settings.mlflow_tracking_uri)
    if uri.startswith(("http://", "https://")):
        return {"url": uri}
    return {"command": f"mlflow ui --backend-store-uri {uri}"}
