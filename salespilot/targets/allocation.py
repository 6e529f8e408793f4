"""Base and stretch targets from a forecast, and top-down allocation of a team/company number.

A unit's *base* and *stretch* targets are quantiles of its simulated bookings (default P50
and P80). A top-down number is split across units in proportion to what each can reach (its
expected bookings), each share clipped to a band of the unit's own distribution (default
P10..P90) so no rep gets a number far outside their reach. New reps are ramped through their
reach: their new-business rate is scaled by tenure (see :mod:`.forecast`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salespilot.targets.forecast import Forecast, quantile_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetConfig:
    base_quantile: float = 0.5
    stretch_quantile: float = 0.8
    floor_quantile: float = 0.1
    cap_quantile: float = 0.9
    new_hire_months: float = 6.0

    def __post_init__(self) -> None:
        for name in ("base_quantile", "stretch_quantile", "floor_quantile", "cap_quantile"):
            q = getattr(self, name)
            if not 0.0 < q < 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {q}")
        if self.stretch_quantile < self.base_quantile:
            raise ValueError("stretch_quantile must be at least base_quantile")
        if self.cap_quantile < self.floor_quantile:
            raise ValueError("cap_quantile must be at least floor_quantile")


@dataclass
class TargetPlan:
    """Targets for every unit of one period, and the scope's total with the top-down gap."""

    period: str
    as_of: pd.Timestamp
    by: str
    units: pd.DataFrame
    total: dict
    config: TargetConfig
    p_win_source: str = "empirical"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (used by ``--json`` and the API)."""
        units = self.units.replace({np.nan: None}).to_dict(orient="records")
        return {
            "period": self.period,
            "as_of": self.as_of.isoformat(),
            "by": self.by,
            "base_quantile": self.config.base_quantile,
            "stretch_quantile": self.config.stretch_quantile,
            "p_win_source": self.p_win_source,
            "total": {k: _jsonable(v) for k, v in self.total.items()},
            "units": [{k: _jsonable(v) for k, v in u.items()} for u in units],
            "notes": list(self.notes),
        }


def _jsonable(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if np.isnan(v) else round(v, 2)
    return v


def allocate(
    total: float, weights: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, str]:
    """Split ``total`` in proportion to ``weights``, each share clipped to ``[lower, upper]``.

    Finds the scale ``s`` with ``sum(clip(s * w, lower, upper)) == total`` (monotone in ``s``,
    so bisection). When ``total`` lies outside ``[sum(lower), sum(upper)]`` no clipped split
    exists: the bounds are scaled uniformly instead, and the returned status says so.
    """
    w = np.clip(np.asarray(weights, float), 0.0, None)
    lo = np.asarray(lower, float)
    hi = np.maximum(np.asarray(upper, float), lo)
    if len(w) == 0:
        return w, "empty"
    if total <= lo.sum():
        base = lo if lo.sum() > 0 else np.ones_like(lo)
        return total * base / base.sum(), "below_floors"
    if total >= hi.sum():
        base = hi if hi.sum() > 0 else np.ones_like(hi)
        return total * base / base.sum(), "above_caps"
    if w.sum() <= 0:
        w = np.ones_like(w)
    live = w > 0
    # Units with no reach stay at their floor unless the others are all capped.
    at_caps = np.where(live, hi, lo)
    if total >= at_caps.sum():
        shares = at_caps.copy()
        room = np.where(live, 0.0, hi - lo)
        shares += (total - at_caps.sum()) * room / room.sum()
        return shares, "ok"
    s_lo, s_hi = 0.0, 1.0
    while np.clip(s_hi * w, lo, hi).sum() < total:
        s_hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (s_lo + s_hi)
        if np.clip(mid * w, lo, hi).sum() < total:
            s_lo = mid
        else:
            s_hi = mid
    shares = np.clip(s_hi * w, lo, hi)
    # Bisection leaves a rounding residual; give it to the unclipped units.
    free = (shares > lo) & (shares < hi)
    residual = total - shares.sum()
    if free.any():
        shares[free] += residual * w[free] / w[free].sum()
    return shares, "ok"


def recommend_targets(
    forecast: Forecast,
    *,
    by: str,
    config: TargetConfig | None = None,
    top_down: float | None = None,
) -> TargetPlan:
    """Base and stretch targets for every unit, and the allocation of ``top_down`` if given."""
    config = config or TargetConfig()
    qs = (
        0.1,
        0.5,
        0.9,
        config.base_quantile,
        config.stretch_quantile,
        config.floor_quantile,
        config.cap_quantile,
    )
    qs = tuple(dict.fromkeys(qs))
    units = forecast.summary(by, qs)
    units["base"] = units[quantile_name(config.base_quantile)]
    units["stretch"] = units[quantile_name(config.stretch_quantile)]
    if by == "rep":
        info = forecast.cells.drop_duplicates("rep_id").set_index("rep_id")
        units.insert(1, "name", info["rep_name"].reindex(units["unit"]).to_numpy())
        units.insert(2, "team", info["team"].reindex(units["unit"]).to_numpy())
        units.insert(3, "region", info["region"].reindex(units["unit"]).to_numpy())
        units["tenure_months"] = info["tenure_months"].reindex(units["unit"]).to_numpy()
        units["ramp"] = info["ramp"].reindex(units["unit"]).to_numpy()
        units["new_hire"] = units["tenure_months"] < config.new_hire_months

    labels, unit_draws = forecast.unit_draws(by)
    assert list(labels) == list(units["unit"])
    total_draws = unit_draws.sum(axis=1)
    total = {
        "mean": float(total_draws.mean()),
        "p10": float(np.quantile(total_draws, 0.1)),
        "p50": float(np.quantile(total_draws, 0.5)),
        "p90": float(np.quantile(total_draws, 0.9)),
        "base": float(np.quantile(total_draws, config.base_quantile)),
        "stretch": float(np.quantile(total_draws, config.stretch_quantile)),
        "sum_of_unit_base": float(units["base"].sum()),
        "top_down": None,
    }
    notes: list[str] = []
    if top_down is not None:
        if top_down < 0:
            raise ValueError("the top-down number must not be negative")
        lower = units[quantile_name(config.floor_quantile)].to_numpy()
        upper = units[quantile_name(config.cap_quantile)].to_numpy()
        shares, status = allocate(float(top_down), units["mean"].to_numpy(), lower, upper)
        units["allocated"] = shares
        units["allocated_vs_base"] = shares - units["base"].to_numpy()
        units["p_reach_allocated"] = (unit_draws >= shares[None, :]).mean(axis=0)
        total.update(
            top_down=float(top_down),
            supported=total["base"],
            gap=float(top_down) - total["base"],
            p_reach_top_down=float((total_draws >= top_down).mean()),
            allocation_status=status,
        )
        if status == "above_caps":
            notes.append(
                f"the top-down number exceeds every unit's P{round(config.cap_quantile * 100)}"
                " combined: shares were scaled above the caps"
            )
        elif status == "below_floors":
            notes.append(
                f"the top-down number is below every unit's P{round(config.floor_quantile * 100)}"
                " combined: shares were scaled below the floors"
            )
    return TargetPlan(
        period=forecast.period.label,
        as_of=forecast.as_of,
        by=by,
        units=units,
        total=total,
        config=config,
        p_win_source=forecast.p_win_source,
        notes=notes + list(forecast.notes),
    )
