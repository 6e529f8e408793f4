"""Best time to reach a contact: score the contact's candidate slots with the contact_time model.

Slots come from :func:`salespilot.features.contacts.candidate_slots_for_contacts` (hour-of-week rows in the
contact's time zone, with the features the model needs); this module only ranks them, picks
the best one "today or the next working day", and lays the week out as a 7 x 24 grid.

The rep's time zone is ``settings.rep_timezones[team]`` or ``[region]`` when the rep's team or
region is mapped there; otherwise the most common time zone of the rep's contacts (the
customers they call), else UTC. The morning schedules send each team's lists at 06:30 in the
usual zone of its reps (:func:`team_timezones`): one setting for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

SLOT_TIME_COLUMNS = ("slot_start_utc", "slot_start", "slot_utc")


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def slot_times(slots: pd.DataFrame) -> pd.Series:
    """Each slot's start as tz-naive UTC timestamps (whatever the builder named the column)."""
    for col in SLOT_TIME_COLUMNS:
        if col in slots.columns:
            t = pd.to_datetime(slots[col])
            if getattr(t.dt, "tz", None) is not None:
                t = t.dt.tz_convert("UTC").dt.tz_localize(None)
            return t
    raise KeyError(f"candidate slots carry no start time column (one of {SLOT_TIME_COLUMNS})")


def local(ts_utc: pd.Timestamp, tz: str | None) -> datetime:
    """A tz-naive UTC instant as an aware datetime in ``tz``."""
    return pd.Timestamp(ts_utc).tz_localize("UTC").tz_convert(zone(tz)).to_pydatetime()


#: how long after the data's end a list is still read "now": a live export is at most a week
#: old (a weekly one); an older history is a replay (the tests' fixed one, a backtest), whose
#: lists keep to their own ``as_of``
LIVE_DATA_DAYS = 7


def slots_from(as_of: pd.Timestamp, now: datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """The instant a list's suggested slots start: the wall clock ``now`` (default: this
    instant) when the data are live (``as_of <= now < as_of + LIVE_DATA_DAYS``), else ``as_of``.

    The data's "now" is where the export ends; the list is read later (a morning list at
    06:30, a rep at 09:00), and a slot between the two would be advice already gone.
    """
    as_of = pd.Timestamp(as_of)
    t = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t
    if as_of <= t < as_of + pd.Timedelta(days=LIVE_DATA_DAYS):
        return t
    return as_of


def _next_working_day(day: pd.Timestamp, working_days: tuple[int, ...]) -> pd.Timestamp:
    d = day + pd.Timedelta(days=1)
    for _ in range(7):
        if d.weekday() in working_days:
            return d
        d += pd.Timedelta(days=1)
    return d


def best_soon(
    contacts: pd.Series,
    starts_utc: pd.Series,
    zones: pd.Series,
    proba: np.ndarray,
    *,
    as_of: pd.Timestamp,
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> dict[str, tuple[pd.Timestamp, float]]:
    """Each contact's best slot still ahead today or on the next working day (their zone).

    ``today`` is the contact's local date at ``as_of``; the window is today plus the next
    working day, so a 17:30 briefing still gets tomorrow morning's best slot. A contact with
    no slot in that window gets its best slot still ahead. Returns ``{contact: (utc, p)}``.
    """
    if len(contacts) == 0:
        return {}
    starts_utc = pd.Series(pd.DatetimeIndex(starts_utc), index=contacts.index)
    zones = zones.astype(str)
    local_day = pd.Series(index=contacts.index, dtype="datetime64[ns]")
    today, nxt = {}, {}
    for z, idx in zones.groupby(zones, sort=False).groups.items():
        local_day[idx] = (
            starts_utc[idx]
            .dt.tz_localize("UTC")
            .dt.tz_convert(zone(z))
            .dt.tz_localize(None)
            .dt.normalize()
        )
        d = pd.Timestamp(as_of).tz_localize("UTC").tz_convert(zone(z)).tz_localize(None).normalize()
        today[z], nxt[z] = d, _next_working_day(d, working_days)
    ahead = (starts_utc >= as_of).to_numpy()
    window = ahead & ((local_day == zones.map(today)) | (local_day == zones.map(nxt))).to_numpy()
    frame = pd.DataFrame(
        {
            "contact": contacts.astype(str).to_numpy(),
            "w": np.where(window, proba, -np.inf),
            "a": np.where(ahead, proba, -np.inf),
        }
    )
    g = frame.groupby("contact", sort=False)
    use_window = g["w"].transform("max") > -np.inf
    frame["key"] = np.where(use_window, frame["w"], frame["a"])
    frame = frame[frame["key"] > -np.inf]
    best = frame.groupby("contact", sort=False)["key"].idxmax()
    return {str(c): (pd.Timestamp(starts_utc.iat[i]), float(proba[i])) for c, i in best.items()}


def week_grid(weekday: np.ndarray, hour: np.ndarray, proba: np.ndarray) -> list[list[float | None]]:
    """7 x 24 connect probabilities indexed [weekday][hour]; None where no slot was scored."""
    grid: list[list[float | None]] = [[None] * 24 for _ in range(7)]
    for d, h, p in zip(weekday.astype(int), hour.astype(int), proba, strict=True):
        cur = grid[d][h]
        if cur is None or p > cur:
            grid[d][h] = round(float(p), 4)
    return grid


def rep_timezone(
    *,
    region: str | None,
    region_map: Mapping[str, str],
    contact_zones: pd.Series | None = None,
    team: str | None = None,
) -> str:
    """The rep's time zone: mapped from the team or the region, else their contacts' usual
    zone, else UTC."""
    if team and team in region_map:
        return region_map[team]
    if region and region in region_map:
        return region_map[region]
    if contact_zones is not None and len(contact_zones.dropna()):
        return str(contact_zones.dropna().mode().iat[0])
    return "UTC"


def rep_timezones(history, zone_map: Mapping[str, str]) -> dict[str, str]:
    """Every rep's time zone (:func:`rep_timezone`), from the contacts of the accounts they own."""
    accounts = history.accounts.dropna(subset=["owner_rep_id"])
    owner = accounts.set_index("account_id")["owner_rep_id"].astype(str)
    contacts = history.contacts
    zones_of: dict[str, pd.Series] = {}
    if contacts is not None and not contacts.empty:
        by_owner = contacts.assign(_owner=contacts["account_id"].map(owner)).dropna(
            subset=["_owner"]
        )
        zones_of = {
            str(k): g["timezone"].astype(str) for k, g in by_owner.groupby("_owner", sort=False)
        }
    out = {}
    for rep in history.reps.itertuples(index=False):
        rep_id = str(rep.rep_id)
        out[rep_id] = rep_timezone(
            team=None if pd.isna(rep.team) else str(rep.team),
            region=None if pd.isna(rep.region) else str(rep.region),
            region_map=zone_map,
            contact_zones=zones_of.get(rep_id),
        )
    return out


def team_timezones(history, zone_map: Mapping[str, str]) -> dict[str, str]:
    """Each team of active reps and its zone: the most common zone of those reps (ties: the
    first in name order), so its morning lists go out at the hour its reps start."""
    zones = rep_timezones(history, zone_map)
    reps = history.reps[history.reps["left_at"].isna() & history.reps["team"].notna()]
    per_team = pd.DataFrame(
        {"team": reps["team"].astype(str), "zone": reps["rep_id"].astype(str).map(zones)}
    )
    return {team: str(g["zone"].mode().iat[0]) for team, g in sorted(per_team.groupby("team"))}


def attempt_rates(history):
    """The contacts' and accounts' earlier answer rates, computed once per state."""
    from salespilot.features.contacts import AttemptRates

    return AttemptRates.from_history(history)


def candidate_slots_for(
    history, contact_ids, as_of: pd.Timestamp, days: int, hours, rates=None, not_before=None
) -> pd.DataFrame:
    """The feature layer's candidate slots (rows the contact_time model scores) of contacts,
    from ``not_before`` (:func:`slots_from`) on when it is later than ``as_of``."""
    from salespilot.features.contacts import candidate_slots_for_contacts

    if isinstance(contact_ids, str):
        contact_ids = [contact_ids]
    return candidate_slots_for_contacts(
        history, list(contact_ids), as_of, days, tuple(hours), rates=rates, not_before=not_before
    )


def score_slots(model, slots: pd.DataFrame) -> np.ndarray:
    p = np.asarray(model.predict_proba(slots), dtype=float)
    return p[:, -1] if p.ndim == 2 else p


def _col(slots: pd.DataFrame, *names: str) -> np.ndarray:
    for n in names:
        if n in slots.columns:
            return slots[n].to_numpy()
    raise KeyError(f"candidate slots carry none of {names}")


def contact_best_times(state, contact_id: str, *, top: int, working_hours: tuple[int, int]):
    """Top slots (working hours, still ahead) and the 7 x 24 week grid for one contact.

    Memoised per state: the answer only changes when data or models do.
    """
    from salespilot.serving.schemas import BestTimesResponse, Slot

    key = ("best_times", contact_id, top, tuple(working_hours))
    cached = state.cache.get(key)
    if cached is not None:
        return cached
    model = state.model("contact_time")
    start = state.slots_from or state.as_of
    slots = candidate_slots_for(
        state.history,
        contact_id,
        state.as_of,
        7,
        (0, 24),
        rates=state.cache.get("_rates"),
        not_before=start,
    )
    tz = state.contact_zone.get(contact_id, "UTC")
    proba = score_slots(model, slots) if len(slots) else np.zeros(0)
    hour = _col(slots, "local_hour", "hour").astype(int) if len(slots) else np.zeros(0, int)
    weekday = (
        _col(slots, "local_weekday", "weekday").astype(int) if len(slots) else np.zeros(0, int)
    )
    starts = slot_times(slots) if len(slots) else pd.Series(dtype="datetime64[ns]")
    lo, hi = working_hours
    ok = (hour >= lo) & (hour < hi) & np.asarray(starts >= start)
    order = [i for i in np.argsort(-proba, kind="stable") if ok[i]][:top]
    slot_model = state.models.get("contact_time")
    out = BestTimesResponse(
        contact_id=contact_id,
        account_id=state.contact_account.get(contact_id, ""),
        contact_timezone=tz,
        as_of=state.as_of.to_pydatetime(),
        model_version=None if slot_model is None else slot_model.version,
        top_slots=[
            Slot(
                weekday=int(weekday[i]),
                hour=int(hour[i]),
                contact_local_time=local(starts.iloc[i], tz),
                connect_probability=round(float(proba[i]), 4),
            )
            for i in order
        ],
        grid=week_grid(weekday, hour, proba),
    )
    state.cache[key] = out
    return out
