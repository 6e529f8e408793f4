"""Contact attempts for the best-contact-time model, and candidate slots to score.

One row per outbound call or email to a contact: its local hour and weekday in the contact's
time zone (DST-correct), channel, role, and the contact's and account's earlier answer rates
by hour band and weekday, smoothed towards the population's. The label is ``label_success``:
the call connected, or the email was replied to within 24 h.

An earlier attempt counts once its outcome is *known*: a call at once, an email 24 h after it
was sent (until then nobody knows whether it will be answered in time). So a row at time t
never uses an outcome decided at or after t.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.interactions import empty_activities, is_in
from salespilot.features.pit import (
    EventIndex,
    cached,
    column_codes,
    entity_index,
    smoothed_rate,
    take_column,
    to_ns,
    to_utc_naive,
)

ATTEMPT_CHANNELS: tuple[str, ...] = ("call", "email")
#: Local hour bands: [0, 8), [8, 10), [10, 12), [12, 14), [14, 16), [16, 18), [18, 24).
HOUR_BAND_EDGES: tuple[int, ...] = (0, 8, 10, 12, 14, 16, 18, 24)
EMAIL_REPLY_WINDOW = pd.Timedelta(hours=24)
#: Pseudo-attempts pulling a contact's (or account's) rate towards the population's.
RATE_PRIOR_ATTEMPTS = 5.0
POPULATION_PRIOR_ATTEMPTS = 20.0

#: The attempt features that read every account's attempts (the population's rates).
POPULATION_RATES: tuple[str, ...] = (
    "population_rate",
    "population_band_rate",
    "population_weekday_rate",
)

ATTEMPT_CONTEXT_COLUMNS: tuple[str, ...] = (
    "activity_id",
    "as_of",
    "contact_id",
    "account_id",
    "rep_id",
    "timezone",
    "local_time",
)
ATTEMPT_CATEGORICAL_FEATURES: tuple[str, ...] = ("channel", "role")
#: Model features of an attempt (and of a candidate slot), in table order.
ATTEMPT_FEATURES: tuple[str, ...] = (
    "channel",
    "role",
    "local_hour",
    "local_weekday",
    "hour_band",
    "population_rate",
    "population_band_rate",
    "population_weekday_rate",
    "contact_attempts",
    "contact_rate",
    "contact_band_attempts",
    "contact_band_rate",
    "contact_weekday_rate",
    "account_attempts",
    "account_rate",
    "account_band_rate",
    "account_weekday_rate",
    "contact_attempts_7d",
    "days_since_contact_inbound",
)
SLOT_CONTEXT_COLUMNS: tuple[str, ...] = (
    "contact_id",
    "as_of",
    "account_id",
    "timezone",
    "slot_start_utc",
    "slot_start_local",
)


def hour_band(local_hour: np.ndarray) -> np.ndarray:
    """Band index of a local hour (see :data:`HOUR_BAND_EDGES`)."""
    return np.searchsorted(np.asarray(HOUR_BAND_EDGES[1:]), local_hour, side="right").astype(
        np.int64
    )


def local_hour_weekday(
    utc: pd.Series | np.ndarray, zones: pd.Series | np.ndarray
) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Local hour, weekday (0 = Monday) and naive local time of UTC instants in their zones.

    Converted zone by zone with pandas' tz database, so daylight-saving switches are exact.
    """
    utc_ns = np.asarray(pd.to_datetime(utc), dtype="datetime64[ns]")
    codes, names = pd.factorize(pd.Series(zones, dtype=object).fillna("UTC"))
    local = np.empty(utc_ns.size, dtype="datetime64[ns]")
    for code, zone in enumerate(names):
        at = np.flatnonzero(codes == code)
        converted = pd.DatetimeIndex(utc_ns[at]).tz_localize("UTC").tz_convert(zone)
        local[at] = converted.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    local_s = pd.Series(local)
    return (
        local_s.dt.hour.to_numpy(np.int64),
        local_s.dt.weekday.to_numpy(np.int64),
        local_s,
    )


@dataclass
class AttemptRates:
    """Every attempt outcome of a history, indexed once for point-in-time rate look-ups.

    Build it once (``AttemptRates.from_history(h)``), then ask for features of real attempts
    or of hypothetical slots as of any time; serving keeps one per loaded history.
    """

    history: History
    attempts: pd.DataFrame  # every outbound call/email to a contact, with local time and label
    _indexes: dict[str, EventIndex]

    @classmethod
    def from_history(cls, history: History) -> AttemptRates:
        attempts = _attempts_frame(history)
        known = attempts[attempts["label_success"].notna()]
        success = known["label_success"].to_numpy(np.int64)
        known_at = known["known_at"]
        indexes = {}
        # a slice of a history takes the population's rates from the whole (cross_account)
        sliced = history.cross_account is not None
        for name, key in _rate_keys(known).items():
            if sliced and name.startswith("population"):
                continue
            indexes[name] = EventIndex(key, known_at, {"success": success})
            indexes[name].freeze_sums(["success"])
        n_contacts = len(entity_index(history, "contact"))
        acts = history.activities if history.activities is not None else empty_activities()
        if len(acts):
            codes = column_codes(history, "activities", "contact_id", "contact")
            inbound = is_in(acts["direction"], "inbound") & (codes >= 0)
            indexes["inbound"] = EventIndex(
                codes[inbound], acts["occurred_at"].to_numpy()[inbound], n_keys=n_contacts
            )
        else:
            indexes["inbound"] = EventIndex(np.empty(0, np.int64), np.empty(0, "M8[ns]"), n_keys=1)
        indexes["sent"] = EventIndex(
            attempts["contact_code"].to_numpy(np.int64),
            attempts["as_of"],
            n_keys=max(n_contacts, 1),
        )
        return cls(history, attempts, indexes)

    @classmethod
    def of_population(cls, attempts: pd.DataFrame) -> AttemptRates:
        """The population's rates only, from attempt rows (``as_of``, ``known_at``,
        ``label_success``, ``channel``, ``local_hour``, ``local_weekday``): what the
        attempts of every account group give once put together (:meth:`population`)."""
        known = attempts[attempts["label_success"].notna()]
        success = known["label_success"].to_numpy(np.int64)
        indexes = {}
        for name, key in _population_keys(known).items():
            indexes[name] = EventIndex(key, known["known_at"], {"success": success})
            indexes[name].freeze_sums(["success"])
        return cls(None, attempts, indexes)  # type: ignore[arg-type]

    def population(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The population's answer rates (:data:`POPULATION_RATES`) of ``rows`` (attempts of
        :attr:`attempts`) as of their own time: the part of :meth:`features` that reads
        across accounts, row-aligned."""
        rates = self._population(_population_keys(rows), to_ns(rows["as_of"]))
        return pd.DataFrame(rates)

    def _rate(
        self, name: str, keys: dict[str, np.ndarray], t: np.ndarray, prior, strength: float
    ) -> tuple[np.ndarray, np.ndarray]:
        q = self._indexes[name].at(keys[name], t)
        n = q.count()
        return n, smoothed_rate(q.sum("success"), n, prior, strength)

    def _population(self, keys: dict[str, np.ndarray], t: np.ndarray) -> dict[str, np.ndarray]:
        _, pop = self._rate("population", keys, t, 0.5, 2.0)
        _, band = self._rate("population_band", keys, t, pop, POPULATION_PRIOR_ATTEMPTS)
        _, day = self._rate("population_weekday", keys, t, pop, POPULATION_PRIOR_ATTEMPTS)
        return dict(zip(POPULATION_RATES, (pop, band, day), strict=True))

    def features(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rate features for rows with contact_id, account_id, channel, local_hour,
        local_weekday and as_of (a real or a hypothetical attempt)."""
        rows = rows.copy(deep=False)  # new columns only; the caller's frame is untouched
        rows["hour_band"] = hour_band(rows["local_hour"].to_numpy())
        t = to_ns(rows["as_of"])
        if "contact_code" not in rows:
            rows["contact_code"] = entity_index(self.history, "contact").get_indexer(
                rows["contact_id"].to_numpy(dtype=object)
            )
            rows["account_code"] = entity_index(self.history, "account").get_indexer(
                rows["account_id"].to_numpy(dtype=object)
            )
        keys = _rate_keys(rows)
        out: dict[str, np.ndarray] = {}

        def rate(
            name: str, prior: np.ndarray | float, strength: float
        ) -> tuple[np.ndarray, np.ndarray]:
            return self._rate(name, keys, t, prior, strength)

        cross = self.history.cross_account
        if cross is not None and cross.attempt_population is not None:
            # one account group's attempts: the population's rates come from the whole history
            known = cross.attempt_population.reindex(rows["activity_id"].to_numpy(dtype=object))
            if known.isna().to_numpy().any():
                raise KeyError("a history slice knows the population rates of its attempts only")
            out.update({c: known[c].to_numpy(np.float64) for c in POPULATION_RATES})
        else:
            out.update(self._population(keys, t))
        pop = out["population_rate"]
        pop_band = out["population_band_rate"]
        pop_day = out["population_weekday_rate"]
        for who in ("contact", "account"):
            n, r = rate(who, pop, RATE_PRIOR_ATTEMPTS)
            out[f"{who}_attempts"] = n
            out[f"{who}_rate"] = r
            n_band, r_band = rate(f"{who}_band", pop_band, RATE_PRIOR_ATTEMPTS)
            if who == "contact":
                out["contact_band_attempts"] = n_band
            out[f"{who}_band_rate"] = r_band
            _, out[f"{who}_weekday_rate"] = rate(f"{who}_weekday", pop_day, RATE_PRIOR_ATTEMPTS)
        contact = rows["contact_code"].to_numpy(np.int64)
        sent = self._indexes["sent"].at(contact, t)
        out["contact_attempts_7d"] = sent.count(pd.Timedelta(days=7))
        out["days_since_contact_inbound"] = (
            self._indexes["inbound"].at(contact, t).days_since_last()
        )
        for k, v in out.items():
            rows[k] = v
        return rows


def contact_attempts(
    history: History,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    *,
    rates: AttemptRates | None = None,
    account_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per outbound call/email to a contact made in ``[start, end]`` (by the accounts
    ``account_ids`` only, when given), with features as of the attempt (``as_of`` = its time)
    and ``label_success`` (NaN while undecided)."""
    rates = rates or cached(history, "contacts.rates", lambda: AttemptRates.from_history(history))
    rows = rates.attempts
    if start is not None:
        rows = rows[rows["as_of"] >= to_utc_naive(start)]
    if end is not None:
        rows = rows[rows["as_of"] <= to_utc_naive(end)]
    if account_ids is not None:
        rows = rows[rows["account_id"].isin(list(account_ids)).to_numpy()]
    rows = rates.features(rows)
    for c in ATTEMPT_CATEGORICAL_FEATURES:
        rows[c] = _as_category(rows[c])
    cols = list(ATTEMPT_CONTEXT_COLUMNS) + list(ATTEMPT_FEATURES) + ["label_success"]
    return rows[cols].reset_index(drop=True)


def candidate_slots(
    history: History,
    contact_id: str,
    as_of: pd.Timestamp | str,
    days: int = 7,
    working_hours: tuple[int, int] = (8, 18),
    *,
    channels: Sequence[str] = ("call",),
    rates: AttemptRates | None = None,
) -> pd.DataFrame:
    """Hypothetical attempts at each working hour of the next ``days`` days in the contact's
    local time, with the same feature columns as :func:`contact_attempts` (as of ``as_of``)."""
    contacts = history.contacts
    if contacts is None or not (contacts["contact_id"] == contact_id).any():
        raise KeyError(f"unknown contact {contact_id!r}")
    return candidate_slots_for_contacts(
        history, [contact_id], as_of, days, working_hours, channels=channels, rates=rates
    )


def candidate_slots_for_contacts(
    history: History,
    contact_ids: Iterable[str],
    as_of: pd.Timestamp | str,
    days: int = 7,
    working_hours: tuple[int, int] = (8, 18),
    *,
    channels: Sequence[str] = ("call",),
    rates: AttemptRates | None = None,
    not_before: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """:func:`candidate_slots` for many contacts at once (e.g. all contacts of a rep's deals).

    The slots start at ``not_before`` when it is later than ``as_of`` (a list read after the
    data's end suggests no slot already gone); their features are still those known at ``as_of``.
    """
    if history.contacts is None:
        raise ValueError("candidate slots need the contacts table (contact time zones)")
    as_of = to_utc_naive(as_of)
    start = as_of if not_before is None else max(as_of, to_utc_naive(not_before))
    rates = rates or cached(history, "contacts.rates", lambda: AttemptRates.from_history(history))
    c = history.contacts.set_index("contact_id").reindex(list(contact_ids))
    c = c[c["account_id"].notna()]
    hours = np.arange(working_hours[0], working_hours[1])
    parts = []
    for zone, group in c.groupby(c["timezone"].fillna("UTC"), sort=False):
        local_now = pd.Timestamp(start).tz_localize("UTC").tz_convert(zone)
        first_day = local_now.normalize().tz_localize(None)
        local_naive = pd.DatetimeIndex(
            [
                first_day + pd.Timedelta(days=int(d), hours=int(h))
                for d in range(days + 1)
                for h in hours
            ]
        )
        # shift_forward: a working hour that does not exist (clocks jump) starts at the jump
        aware = local_naive.tz_localize(zone, nonexistent="shift_forward", ambiguous=True)
        utc = aware.tz_convert("UTC").tz_localize(None)
        keep = (utc >= start) & (utc < start + pd.Timedelta(days=days))
        utc, local_naive = utc[keep], local_naive[keep]
        # every (contact, channel) gets every slot: contact-major, then channel, then time
        ids = group.index.to_numpy(dtype=object)
        per_contact, copies = len(channels) * len(utc), len(ids) * len(channels)
        parts.append(
            pd.DataFrame(
                {
                    "contact_id": np.repeat(ids, per_contact),
                    "as_of": as_of,
                    "account_id": np.repeat(group["account_id"].to_numpy(object), per_contact),
                    "timezone": zone,
                    "slot_start_utc": np.tile(utc.to_numpy(), copies),
                    "slot_start_local": np.tile(local_naive.to_numpy(), copies),
                    "channel": np.tile(np.repeat(np.asarray(channels, object), len(utc)), len(ids)),
                    "role": np.repeat(group["role"].to_numpy(object), per_contact),
                    "local_hour": np.tile(local_naive.hour.to_numpy(np.int64), copies),
                    "local_weekday": np.tile(local_naive.weekday.to_numpy(np.int64), copies),
                }
            )
        )
    if not parts:
        raise KeyError("none of the requested contacts exists")
    slots = pd.concat(parts, ignore_index=True)
    slots["as_of"] = slots["as_of"].astype("datetime64[ns]")
    slots = rates.features(slots)
    for col in ATTEMPT_CATEGORICAL_FEATURES:
        slots[col] = pd.Categorical(slots[col], categories=_CATEGORIES[col])
    return slots[list(SLOT_CONTEXT_COLUMNS) + list(ATTEMPT_FEATURES)]


# --------------------------------------------------------------------------------------------
# private steps
# --------------------------------------------------------------------------------------------
_CATEGORIES = {
    "channel": list(ATTEMPT_CHANNELS),
    "role": ["decision_maker", "influencer", "other", "user"],
}


def _as_category(s: pd.Series) -> pd.Categorical:
    """``pd.Categorical(s, categories=...)`` by factorizing first: the few distinct values are
    looked up among the categories, not every row (values outside them: missing)."""
    categories = pd.Index(_CATEGORIES[s.name])
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    at = np.append(categories.get_indexer(pd.Index(uniques, dtype=object)), -1)
    return pd.Categorical.from_codes(at[codes], categories=categories)


def attempt_rows(acts: pd.DataFrame) -> np.ndarray:
    """Which activities are contact attempts (outbound calls and emails to a contact)."""
    return (
        is_in(acts["direction"], "outbound")
        & is_in(acts["channel"], *ATTEMPT_CHANNELS)
        & acts["contact_id"].notna().to_numpy()
    )


def _attempts_frame(history: History) -> pd.DataFrame:
    acts = history.activities if history.activities is not None else empty_activities()
    if len(acts):
        contact_code = column_codes(history, "activities", "contact_id", "contact")
        account_code = column_codes(history, "activities", "account_id", "account")
    else:
        contact_code = account_code = np.empty(0, dtype=np.int64)
    pick = attempt_rows(acts)
    a = acts[pick].reset_index(drop=True)
    contact_code, account_code = contact_code[pick], account_code[pick]
    if history.contacts is not None:
        zone = take_column(history, "contacts", "timezone", contact_code).fillna("UTC")
        role = take_column(history, "contacts", "role", contact_code)
    else:
        zone = pd.Series(np.full(len(a), "UTC", dtype=object), dtype="str")
        role = pd.Series(np.full(len(a), None, dtype=object), dtype="str")
    hour, weekday, local = local_hour_weekday(a["occurred_at"], zone)
    is_call = is_in(a["channel"], "call")
    outcome = a["outcome"]
    success = np.where(is_call, is_in(outcome, "connected"), is_in(outcome, "replied")).astype(
        np.float64
    )
    success[outcome.isna().to_numpy()] = np.nan  # not decided yet (or not recorded)
    occurred = a["occurred_at"].to_numpy(dtype="datetime64[ns]")
    known_at = np.where(is_call, occurred, occurred + EMAIL_REPLY_WINDOW.to_timedelta64())
    return pd.DataFrame(
        {
            "activity_id": a["activity_id"],
            "as_of": occurred,
            "contact_id": a["contact_id"],
            "account_id": a["account_id"],
            "contact_code": contact_code,
            "account_code": account_code,
            "rep_id": a["rep_id"],
            "timezone": zone,
            "local_time": local.to_numpy(),
            "channel": a["channel"],
            "role": role,
            "local_hour": hour,
            "local_weekday": weekday,
            "hour_band": hour_band(hour),
            "label_success": success,
            "known_at": known_at,
        }
    )


def _rate_keys(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Integer keys of each rate's group: (who, channel[, band | weekday]).

    ``contact_code``/``account_code`` are row numbers in the history's tables (-1 unknown:
    a negative key no event has, so zero attempts and the rate falls back to its prior).
    """
    population = _population_keys(rows)
    contact = rows["contact_code"].to_numpy(np.int64)
    account = rows["account_code"].to_numpy(np.int64)
    keys = {}
    for name, who in (("contact", contact), ("account", account)):
        # (who * 2 + channel) * 10 + band == who * 20 + (channel * 10 + band)
        known = who >= 0
        keys[name] = np.where(known, who * 2 + population["population"], -1)
        keys[f"{name}_band"] = np.where(known, who * 20 + population["population_band"], -1)
        keys[f"{name}_weekday"] = np.where(known, who * 20 + population["population_weekday"], -1)
    return {**keys, **population}


def _population_keys(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The population rates' keys: channel, with the hour band or the weekday."""
    channel = np.where(is_in(rows["channel"], "call"), 0, 1).astype(np.int64)
    band = hour_band(rows["local_hour"].to_numpy())
    weekday = rows["local_weekday"].to_numpy(np.int64)
    return {
        "population": channel,
        "population_band": channel * 10 + band,
        "population_weekday": channel * 10 + weekday,
    }
