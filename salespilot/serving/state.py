"""The serving state: everything a request reads, built once per (re)load and swapped atomically.

Loading and swapping live here; the lists' assembly (rules, contacts, best times, ranking) is
:func:`salespilot.serving.priorities.assemble_lists`.

:class:`ServingState` is immutable once built: the history, the data ``as_of``, the loaded
models and their versions, every rep's ranked list (already serialised) and the at-risk
accounts. Requests read whatever state :class:`StateHolder` points at when they start; a reload
builds a complete new state aside and swaps the single reference, so a request in flight
never sees half of each. When the registry is unreachable or a model fails to load, the new
state keeps the previous state's model (marked ``stale``) and reports the problem: /ready and
/v1/models say ``degraded``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from salespilot.features.history import History
from salespilot.features.pit import data_as_of
from salespilot.features.schema import TABLES
from salespilot.features.validation import HistoryValidationError
from salespilot.serving import rules
from salespilot.serving.best_times import slots_from
from salespilot.serving.limits import BoundedCache, RateLimiter, RebuildGate
from salespilot.serving.priorities import Lookups, PreviousScores, assemble_lists, rule_config
from salespilot.serving.schemas import AtRiskAccount, PriorityItem
from salespilot.serving.scoring import Scored, ServingModel, score
from salespilot.settings import Settings

log = logging.getLogger(__name__)

MODEL_NAMES = ("win_probability", "churn_risk", "contact_time")


@dataclass(frozen=True)
class ModelSlot:
    """One model as served: the loaded object (or None), where it came from, what went wrong."""

    name: str
    model: ServingModel | None
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    trained_at: Any = None
    stale: bool = False
    problem: str | None = None
    #: the version's readiness verdict (``verdict``, ``reasons``) from its registry tags
    readiness: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServingState:
    loaded_at: datetime
    as_of: pd.Timestamp
    #: the history, or (a start from the stored lists) the future the stored history arrives
    #: in, behind the ready server: read it as :attr:`history`
    history_source: History | Future
    source: str | None
    content_hash: str | None
    models: dict[str, ModelSlot]
    reps: pd.DataFrame  # index rep_id: name, team, region
    rep_timezones: dict[str, str]
    account_owner: dict[str, str]
    account_names: dict[str, str]
    contact_account: dict[str, str]
    contact_zone: dict[str, str]
    contact_role: dict[str, str]
    deal_owner: dict[str, str]
    win: Scored | None
    churn: Scored | None
    rep_items: dict[str, tuple[PriorityItem, ...]]
    rep_items_json: dict[str, tuple[bytes, ...]]
    at_risk: tuple[AtRiskAccount, ...]
    problems: tuple[str, ...] = ()
    data_signature: tuple = ()
    #: rules with no data to stand on in this history: warning code -> why (rules.rules_left_out)
    rules_left_out: dict[str, str] = field(default_factory=dict)
    #: where suggested contact slots start (best_times.slots_from): the wall clock while the
    #: data are live, so no list suggests a slot already gone; None: ``as_of``
    slots_from: pd.Timestamp | None = None
    # per-state memo of answers (filled lazily, bounded; never shared across states); keys
    # starting with "_" hold the state's own indexes and are never evicted
    cache: BoundedCache = field(default_factory=lambda: BoundedCache(512), compare=False)
    #: the history's tables, known before a pending history arrives (() : ask the history)
    history_tables: tuple[str, ...] = ()

    @property
    def history(self) -> History:
        """The history (waiting for it, the first moments after a start from stored lists)."""
        h = self.history_source
        return h.result() if isinstance(h, Future) else h

    @property
    def present_tables(self) -> list[str]:
        """The history's tables, without waiting for a history still being read."""
        if self.history_tables:
            return [n for n in TABLES if n in self.history_tables]  # the history's order
        return self.history.present_tables

    @property
    def degraded(self) -> bool:
        return bool(self.problems)

    def model(self, name: str) -> ServingModel | None:
        slot = self.models.get(name)
        return None if slot is None else slot.model

    @property
    def versions(self) -> dict[str, str | None]:
        return {n: s.version for n, s in self.models.items()}

    # -- scope helpers (who owns what) ----------------------------------------------------
    def rep_team(self, rep_id: str) -> str | None:
        if rep_id not in self.reps.index:
            return None
        t = self.reps.at[rep_id, "team"]
        return None if pd.isna(t) else str(t)

    def contact_reps(self, contact_id: str) -> set[str]:
        """Reps a contact belongs to: the account owner and the owners of its open deals."""
        acc = self.contact_account.get(contact_id)
        reps = set()
        if acc is not None and acc in self.account_owner:
            reps.add(self.account_owner[acc])
        reps |= self.cache.get("_account_deal_reps", {}).get(acc, set())
        return reps


class StateHolder:
    """The one reference to the current state, and the lock that serialises reloads."""

    def __init__(self, settings: Settings, builder: Callable[..., ServingState] | None = None):
        self.settings = settings
        self._builder = builder or build_state
        self._state: ServingState | None = None
        self._reload_lock = threading.Lock()
        self.last_error: str | None = None
        #: why :meth:`check_registry` could not confirm the exported versions (None: confirmed)
        self.registry_problem: str | None = None
        self.limiter = RateLimiter(settings.serving_rate_per_minute, settings.serving_rate_burst)
        self.rebuilds = RebuildGate(settings.serving_max_rebuilds)

    @property
    def state(self) -> ServingState | None:
        return self._state

    def reload(self, *, trust_export: bool = False) -> ServingState | None:
        """Build a new state aside and swap it in; on total failure keep the old one.

        ``trust_export`` (the server's start): models from the serving export, without
        asking the registry; :meth:`check_registry` then confirms them."""
        with self._reload_lock:
            started = time.perf_counter()
            extra = {"trust_export": True} if trust_export else {}
            try:
                new = self._builder(self.settings, previous=self._state, **extra)
            except Exception as exc:  # keep serving the last good state
                if isinstance(exc, HistoryValidationError):  # the data's to fix: no traceback
                    log.error("reload failed; keeping the previous state: %s", exc)
                else:
                    log.exception("reload failed; keeping the previous state")
                self.last_error = f"reload failed: {type(exc).__name__}: {exc}"
                return self._state
            self._state = new  # the atomic swap: one reference assignment
            self.last_error = None
            if not trust_export:  # the registry was asked (its problems are the state's)
                self.registry_problem = None
            log.info(
                "state loaded in %.2fs (as_of %s, models %s%s)",
                time.perf_counter() - started,
                new.as_of,
                new.versions,
                ", degraded" if new.degraded else "",
            )
            return new

    def after_start(self) -> None:
        """What a start from the export and the stored lists leaves to do, behind the ready
        server: parse the boosters (the export's models are read lazily), confirm the versions
        with the registry (:meth:`check_registry`), read the stored activities, rebuild lists
        whose suggested slots started more than an hour ago, index the contacts' answer rates."""
        from salespilot.serving.stored_state import HistoryArriving

        if self._state is not None:
            for slot in self._state.models.values():
                model = getattr(slot.model, "model", None)  # the LoadedModel's SalesPilotModel
                if model is not None and not model.booster_loaded:
                    _ = model.booster  # parsed now, not by the first request that scores
        if self.check_registry():
            return
        state = self._state
        if state is None:
            return
        if isinstance(state.history_source, HistoryArriving):
            # last: its Parquet read takes every core, the first requests are answered by now
            state.history_source.want()
        if state.slots_from is not None and not _same_hour(
            state.slots_from, slots_from(state.as_of)
        ):
            log.info("the stored lists' contact slots start at %s; rebuilding", state.slots_from)
            self.reload()
        elif "_rates" not in state.cache and state.history.contacts is not None:
            from salespilot.serving.best_times import attempt_rates

            state.cache["_rates"] = attempt_rates(state.history)

    def check_registry(self) -> bool:
        """Ask the registry where the serving alias points; when it is not what the state
        serves (an alias moved outside the promotion functions, or while the export was being
        written), reload through the registry. True when it reloaded."""
        state = self._state
        if state is None or not any(v is not None for v in state.versions.values()):
            return False  # nothing served to confirm: the state says why no model loaded
        try:
            differs = registry_differs(self.settings, state)
        except Exception as exc:  # a check must never take the server down
            self.registry_problem = (
                f"model registry could not be read ({type(exc).__name__}: {exc}); serving the "
                f"exported versions {state.versions}"
            )
            log.warning(self.registry_problem)
            return False
        self.registry_problem = None
        if not differs:
            log.info("served versions match the registry: %s", state.versions)
            return False
        log.info("the registry moved %s; reloading", ", ".join(differs))
        self.reload()
        return True


# ------------------------------------------------------------------------------------------
# building a state
# ------------------------------------------------------------------------------------------


def _slot(m: Any) -> ModelSlot:
    from salespilot.training.tracking import readiness_from_tags

    return ModelSlot(
        name=m.name,
        model=m,
        version=None if getattr(m, "version", None) is None else str(m.version),
        metrics=dict(getattr(m, "metrics", {}) or {}),
        trained_at=getattr(m, "trained_at", None),
        readiness=readiness_from_tags(getattr(m, "tags", None)),
    )


def _load_models(
    settings: Settings, previous: ServingState | None, *, trust_export: bool = False
) -> dict[str, ModelSlot]:
    """Every model at the serving alias. With ``trust_export`` (the server's start) the
    versions the serving export says the alias points at, read without MLflow; a model missing
    there, and every model on a reload, comes from the registry (its exported files when the
    version has them, else through MLflow, exported then for the next start)."""
    from salespilot.training.export import load_exported

    alias = settings.serving_model_alias
    slots: dict[str, ModelSlot] = {}
    if trust_export:
        for name in MODEL_NAMES:
            # boosters parsed behind the ready server (StateHolder.after_start) or at first use
            m = load_exported(settings, name, alias, lazy=True)
            if m is not None:
                slots[name] = _slot(m)
    todo = [n for n in MODEL_NAMES if n not in slots]
    if todo:
        slots.update(_load_from_registry(settings, previous, todo))
    return {n: slots[n] for n in MODEL_NAMES}


def _load_from_registry(
    settings: Settings, previous: ServingState | None, names: list[str]
) -> dict[str, ModelSlot]:
    from salespilot.serving.registry_probe import (
        bound_mlflow_requests,
        forget_registry_connections,
        registry_problem,
    )
    from salespilot.training import export
    from salespilot.training.loading import load_model, model_version

    alias = settings.serving_model_alias
    bound_mlflow_requests(settings)
    unreachable = registry_problem(settings)  # one bounded question before any MLflow call
    slots: dict[str, ModelSlot] = {}
    for name in names:
        try:
            if unreachable:
                raise ConnectionError(unreachable)
            version = str(model_version(name, alias, settings).version)
            m = export.load_exported(settings, name, alias, version=version)
            if m is None:
                m = dataclasses.replace(
                    load_model(name, settings=settings, version=version), alias=alias
                )
                _export_quietly(settings, m, export.export_loaded)
            _export_quietly(
                settings, m, lambda s, m: export.write_alias(s, m.name, alias, m.version)
            )
            slots[name] = _slot(m)
        except Exception as exc:
            what = str(exc) if unreachable else f"{type(exc).__name__}: {exc}"
            problem = f"{name}: could not load @{alias}: {what}"
            log.warning(problem)
            old = None if previous is None else previous.models.get(name)
            if old is not None and old.model is not None:
                slots[name] = dataclasses.replace(old, stale=True, problem=problem)
            else:
                slots[name] = ModelSlot(name, None, problem=problem)
    if any(s.problem for s in slots.values()):
        forget_registry_connections()  # the next reload opens the store afresh
    return slots


def _export_quietly(settings: Settings, m: Any, write: Callable[[Settings, Any], Any]) -> None:
    """Write to the serving export; a read-only state folder only costs the next start time."""
    try:
        write(settings, m)
    except OSError as exc:
        log.warning("could not export %s v%s for the next start: %s", m.name, m.version, exc)


def registry_differs(settings: Settings, state: ServingState) -> list[str]:
    """The models whose serving alias the registry now points at another version than
    ``state`` serves; raises when the registry cannot be asked."""
    from salespilot.serving.registry_probe import bound_mlflow_requests, registry_problem
    from salespilot.training.loading import model_version
    from salespilot.training.tracking import RegistryError

    bound_mlflow_requests(settings)
    problem = registry_problem(settings)
    if problem:
        raise ConnectionError(problem)
    differs = []
    for name in MODEL_NAMES:
        try:
            version = str(model_version(name, settings.serving_model_alias, settings).version)
        except RegistryError:
            version = None
        if version != state.versions.get(name):
            differs.append(name)
    return differs


def data_signature(folder) -> tuple:
    """(name, size, mtime) of every file in the data folder: unchanged means same data."""
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        return ()
    return tuple(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


def _stored_snapshots(settings: Settings, content_hash: str, as_of: pd.Timestamp):
    """The "now" deal and account rows from the feature store, when they were built from this
    very history (same content hash) at or after its last event; else None (compute them)."""
    from salespilot.features.store import FeatureFolderError, latest_snapshot

    try:
        deals, dmeta = latest_snapshot(settings.features_dir, "deals")
        accounts, ameta = latest_snapshot(settings.features_dir, "accounts")
    except FeatureFolderError as exc:  # a build was interrupted half-way: not to be trusted
        log.warning("not scoring the stored feature snapshots: %s", exc)
        return None
    except (FileNotFoundError, ValueError, OSError):
        return None
    if {dmeta.get("history_hash"), ameta.get("history_hash")} != {content_hash}:
        log.info("feature snapshots are from other data; computing features")
        return None
    stamps = {dmeta.get("as_of_max"), ameta.get("as_of_max")}
    if (
        len(stamps) != 1
        or None in stamps
        or pd.Timestamp(stamps.pop()) < as_of - pd.Timedelta(seconds=1)
    ):
        return None
    snap_as_of = pd.Timestamp(dmeta["as_of_max"])
    log.info("scoring the stored feature snapshots as of %s", snap_as_of)
    return deals, accounts, snap_as_of


def _with_subscriptions(history: History) -> History:
    """``history``, with an empty subscriptions table when it has none: such a history (many
    CRM exports, e.g. docs/maven-example.md) has no account at churn risk, only deals to rank."""
    if history.subscriptions is not None:
        return history
    empty = pd.DataFrame(
        {
            "subscription_id": pd.Series([], dtype="str"),
            "account_id": pd.Series([], dtype="str"),
            "product_line": pd.Series([], dtype="str"),
            "started_at": pd.Series([], dtype="datetime64[ns]"),
            "ended_at": pd.Series([], dtype="datetime64[ns]"),
            "monthly_value": pd.Series([], dtype="float64"),
        }
    )
    return dataclasses.replace(history, subscriptions=empty)


def _same_hour(a: pd.Timestamp | None, b: pd.Timestamp | None) -> bool:
    """Suggested slots starting within the hour: the previous lists' best times still hold."""
    if a is None or b is None:
        return a is b
    return abs(a - b) < pd.Timedelta(hours=1)


def build_state(
    settings: Settings,
    *,
    previous: ServingState | None = None,
    history: History | None = None,
    as_of: pd.Timestamp | None = None,
    persist_scores: bool = True,
    models: dict[str, ModelSlot] | None = None,
    only_reps: set[str] | None = None,
    rates: Any = None,
    now: datetime | None = None,
    trust_export: bool = False,
) -> ServingState:
    """Load data and models, score everything, rank every rep's list, explain every item.

    ``only_reps`` limits the lists (and the at-risk accounts) to those reps' deals and
    accounts: the on-demand ``as_of`` path scores one rep, not the whole company.
    ``now`` (default the wall clock) is when the lists are read: scoring the data's "now",
    no suggested slot is before it (:func:`salespilot.serving.best_times.slots_from`); an
    earlier ``as_of`` keeps its own slots.
    """
    from salespilot.features.accounts import account_snapshot
    from salespilot.features.deals import deal_rows_as_trained, deal_snapshot
    from salespilot.features.pit import cached, keep_feature_cache
    from salespilot.models.win_probability import SPEC as WIN_SPEC

    signature: tuple = ()
    same_data = False
    if history is None:
        signature = data_signature(settings.data_dir)
        if previous is not None and signature and signature == previous.data_signature:
            history, same_data = previous.history, True  # the files did not change
        else:
            if as_of is None and only_reps is None:
                from salespilot.serving import stored_state

                # read while models load (a start: the activities behind the ready server)
                tables = stored_state.prefetch(settings, signature, start=trust_export)
                if models is None:
                    models = _load_models(settings, previous, trust_export=trust_export)
                # the server's start serves stored lists at once (and rebuilds those with
                # old slots behind it); any other build wants slots from this hour
                restored = _restore(
                    settings, signature, models, fresh=not trust_export, now=now, tables=tables
                )
                if restored is not None:
                    return restored  # what the last full build of these data and models stored
            from salespilot.features.loader import load_history

            history = load_history(settings.data_dir, observed_until=settings.observed_until)
    now_of_data = as_of is None
    as_of = data_as_of(history) if as_of is None else pd.Timestamp(as_of)
    slots_start = slots_from(as_of, now) if now_of_data else None
    if models is None:
        models = _load_models(settings, previous, trust_export=trust_export)
    problems = tuple(s.problem for s in models.values() if s.problem)
    if (
        same_data
        and now_of_data
        and previous is not None
        and previous.versions == {n: s.version for n, s in models.items()}
        and _same_hour(previous.slots_from, slots_start)
    ):
        # same data, same model versions: the scores stand; only the models and status change
        return dataclasses.replace(
            previous,
            loaded_at=datetime.now(UTC),
            models=models,
            problems=problems,
            cache=BoundedCache(settings.serving_cache_entries, previous.cache.items()),
        )

    looked_up = _lookups(history)
    reps, accounts = looked_up["reps"], history.accounts
    account_names = looked_up["account_names"]
    contact_zone, contact_role = looked_up["contact_zone"], looked_up["contact_role"]

    # -- score deals and accounts (one batch each) -----------------------------------------
    # the loaded history is never edited: its event indexes are built once and shared by
    # every as_of rebuild (a fixed set of indexes, so bounded)
    keep_feature_cache(history)
    content_hash = cached(history, "history.content_hash", history.content_hash)
    stored = _stored_snapshots(settings, content_hash, as_of) if now_of_data else None
    deal_ids_wanted = acc_ids_wanted = None
    if only_reps is not None:
        # one rep's list: only their deals and accounts are built, scored and explained
        opps = history.opportunities
        deal_ids_wanted = opps.loc[opps["owner_rep_id"].isin(only_reps), "opportunity_id"]
        acc_ids_wanted = accounts.loc[accounts["owner_rep_id"].isin(only_reps), "account_id"]
    win_m, churn_m = models["win_probability"].model, models["churn_risk"].model
    if stored is not None:
        deal_rows, acc_rows, as_of = stored
    else:
        # features that look a horizon ahead are built at the served version's own horizon
        deal_rows = deal_snapshot(
            history,
            as_of,
            opportunity_ids=deal_ids_wanted,
            horizon_days=WIN_SPEC.horizon_of(win_m) or WIN_SPEC.horizon_days,
        )
        acc_rows = account_snapshot(_with_subscriptions(history), as_of, account_ids=acc_ids_wanted)
    if only_reps is not None:
        deal_rows = deal_rows[deal_rows["owner_rep_id"].isin(only_reps)]
        acc_rows = acc_rows[acc_rows["owner_rep_id"].isin(only_reps)]
    win = None
    if win_m:
        # a decision-row model (a lead scored at its creation) scores each deal as of its
        # decision time, as it was trained; the lists and rules read the rows of now
        win_rows = deal_rows_as_trained(
            history,
            deal_rows.reset_index(drop=True),
            win_m,
            horizon_days=WIN_SPEC.horizon_of(win_m) or WIN_SPEC.horizon_days,
        )
        win = score(win_m, win_rows, "opportunity_id")
    churn = score(churn_m, acc_rows.reset_index(drop=True), "account_id") if churn_m else None

    store = PreviousScores(settings.state_dir / "serving" / "previous")
    lists = assemble_lists(
        history,
        as_of,
        deal_rows=deal_rows,
        acc_rows=acc_rows,
        deal_ids_wanted=deal_ids_wanted,
        only_reps=only_reps,
        win=win,
        churn=churn,
        contact_model=models["contact_time"].model,
        lookups=Lookups(
            reps=reps,
            account_names=account_names,
            contact_zone=contact_zone,
            contact_role=contact_role,
        ),
        settings=settings,
        previous=store,
        rates=rates,
        slots_from=slots_start,
    )
    if persist_scores:
        for rep_id, scores in lists.scores.items():
            try:
                store.save(rep_id, as_of, scores)
            except OSError as exc:
                log.warning("could not persist scores of %s: %s", rep_id, exc)
    rep_items = lists.rep_items

    state = ServingState(
        loaded_at=datetime.now(UTC),
        as_of=as_of,
        history_source=history,
        source=None if history.source is None else str(history.source),
        content_hash=content_hash,
        rules_left_out=rules.rules_left_out(history, rule_config(settings)),
        models=models,
        **looked_up,
        rep_timezones=lists.rep_zones,
        deal_owner=lists.deal_owner,
        win=win,
        churn=churn,
        rep_items=rep_items,
        rep_items_json={
            r: tuple(i.model_dump_json().encode() for i in its) for r, its in rep_items.items()
        },
        at_risk=lists.at_risk,
        problems=problems,
        data_signature=signature,
        cache=BoundedCache(settings.serving_cache_entries),
        slots_from=slots_start,
    )
    state.cache["_account_deal_reps"] = lists.account_deal_reps
    state.cache["_rates"] = lists.rates
    if persist_scores and now_of_data and only_reps is None:
        from salespilot.serving import stored_state

        stored_state.store(settings, state)  # the next start reads it back
    return state


def _lookups(history: History) -> dict[str, Any]:
    """Who owns what and how to reach them: the state's lookups read off the history."""
    accounts, contacts = history.accounts, history.contacts
    owner = accounts.dropna(subset=["owner_rep_id"]).set_index("account_id")["owner_rep_id"]

    def pairs(keys: pd.Series | pd.Index, values: pd.Series) -> dict[str, str]:
        # zip over plain lists: iterating Arrow-backed strings one by one is 10x slower
        return dict(zip(keys.astype(str).tolist(), values.astype(str).tolist(), strict=True))

    def by_contact(column: str) -> dict[str, str]:
        return {} if contacts is None else pairs(contacts["contact_id"], contacts[column])

    return {
        "reps": history.reps.set_index("rep_id"),
        "account_owner": pairs(owner.index, owner),
        "account_names": pairs(accounts["account_id"], accounts["name"]),
        "contact_account": by_contact("account_id"),
        "contact_zone": by_contact("timezone"),
        "contact_role": by_contact("role"),
    }


def _restore(
    settings: Settings,
    signature: tuple,
    models: dict[str, ModelSlot],
    *,
    fresh: bool,
    now: datetime | None,
    tables: Any = None,
) -> ServingState | None:
    """The state the last full build stored (:mod:`salespilot.serving.stored_state`), when it
    holds for these data files, the models about to serve and the list settings (and, if
    ``fresh``, when its suggested slots start within the hour of ``now``)."""
    from salespilot.serving import stored_state

    if not signature or not stored_state.stored_dir(settings).is_dir():
        return None
    parts = stored_state.restore(settings, signature, models, tables=tables)
    if parts is None:
        return None
    if fresh and not _same_hour(parts["slots_from"], slots_from(parts["as_of"], now)):
        log.info("the stored lists' contact slots start at %s; building", parts["slots_from"])
        return None
    history = parts.pop("history")  # or its future: the activities arrive behind ready
    lookup_history = parts.pop("lookup_history")  # every table but the activities
    source = parts.pop("source")
    left_out = parts.pop("rules_left_out")
    account_deal_reps = parts.pop("account_deal_reps")
    state = ServingState(
        loaded_at=datetime.now(UTC),
        history_source=history,
        source=source,
        rules_left_out=left_out,
        models=models,
        **_lookups(lookup_history),
        **parts,
        problems=tuple(s.problem for s in models.values() if s.problem),
        data_signature=signature,
        cache=BoundedCache(settings.serving_cache_entries),
    )
    state.cache["_account_deal_reps"] = account_deal_reps
    log.info("restored the stored serving state as of %s (models %s)", state.as_of, state.versions)
    return state
