"""The serving state as files: the scored, explained lists a full build made, for the next start.

A full build (the ``morning_lists`` flow, or a server's start that had to compute) writes what it
computed under ``<state>/export/state/``: the validated history as Parquet, each model's scores
and SHAP contributions, every rep's ranked list exactly as served (JSON bytes), the at-risk
accounts and the few lookups the lists made. :func:`restore` gives that state back when it
still holds: the same data files (names, sizes, modification times), the same model versions
at the serving alias, the same list settings; the history's content hash is read back rather
than recomputed. Otherwise ``None``, and the caller builds (and stores) a new one.

What is read back was computed by the same code from the same inputs, so a restored state
answers as the one that was stored. The suggested contact slots start at the wall clock when
the data are live (:func:`~salespilot.serving.best_times.slots_from`): a state stored more than
an hour ago is served at once and rebuilt behind it (:meth:`StateHolder.check_registry`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salespilot.atomic import replacing_dir
from salespilot.features.history import TABLE_FIELDS, History
from salespilot.serving.schemas import AtRiskAccount, PriorityItem
from salespilot.serving.scoring import Scored
from salespilot.settings import Settings

if TYPE_CHECKING:
    from salespilot.serving.state import ModelSlot, ServingState

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: settings the lists depend on (a change there means the stored lists no longer hold)
_LIST_SETTINGS = ("priority_", "warn_", "rep_timezones", "serving_factors", "serving_working_")
_LIST_SETTINGS_EXACT = ("observed_until", "serving_model_alias")


def stored_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "export" / "state"


def list_settings_key(settings: Settings) -> str:
    """A hash of the settings the lists depend on."""
    dump = settings.model_dump(mode="json")
    chosen = {
        k: v
        for k, v in sorted(dump.items())
        if k.startswith(_LIST_SETTINGS) or k in _LIST_SETTINGS_EXACT
    }
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def _key(settings: Settings, signature: tuple, versions: dict[str, str | None]) -> dict[str, Any]:
    return {
        "data_signature": [list(s) for s in signature],
        "versions": dict(versions),
        "settings": list_settings_key(settings),
    }


def store(settings: Settings, state: ServingState) -> Path | None:
    """Write ``state`` (a full build of the data's "now") for the next start; None when the
    state has no data signature to key it on. Written whole under a temporary name, then
    swapped in; a failure leaves the previous files (or none) and is only logged."""
    if not state.data_signature:
        return None
    final = stored_dir(settings)
    try:
        with replacing_dir(final) as tmp:
            _write(tmp, settings, state)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("could not store the serving state for the next start: %s", exc)
        return None
    return final


def _write(folder: Path, settings: Settings, state: ServingState) -> None:
    h = state.history
    (folder / "history").mkdir()
    tables = []
    for name in TABLE_FIELDS:
        df = getattr(h, name)
        if df is not None:
            df.to_parquet(folder / "history" / f"{name}.parquet", index=False)
            tables.append(name)
    scored = {}
    for key in ("win", "churn"):
        s: Scored | None = getattr(state, key)
        if s is None:
            continue
        pd.DataFrame({"id": s.ids, "proba": s.proba, "raw": s.raw, "base": s.base}).to_parquet(
            folder / f"{key}.scores.parquet", index=False
        )
        np.save(folder / f"{key}.contrib.npy", np.asarray(s.contrib, dtype=float))
        s.values.to_parquet(folder / f"{key}.values.parquet", index=False)
        scored[key] = {
            "model": s.model,
            "version": s.version,
            "features": list(s.features),
            "readable": dict(s.readable),
        }
    lists = {
        "rep_items": {r: [b.decode() for b in items] for r, items in state.rep_items_json.items()},
        "at_risk": [a.model_dump_json() for a in state.at_risk],
        "rep_timezones": state.rep_timezones,
        "deal_owner": state.deal_owner,
        "account_deal_reps": {
            str(k): sorted(v) for k, v in state.cache.get("_account_deal_reps", {}).items()
        },
    }
    (folder / "lists.json").write_text(json.dumps(lists))
    manifest = {
        **_key(settings, state.data_signature, state.versions),
        "as_of": state.as_of.isoformat(),
        "slots_from": None if state.slots_from is None else state.slots_from.isoformat(),
        "content_hash": state.content_hash,
        "stored_at": datetime.now(UTC).isoformat(),
        "history": {
            "tables": tables,
            "source": None if h.source is None else str(h.source),
            "observed_until": None if h.observed_until is None else h.observed_until.isoformat(),
        },
        "scored": scored,
        "rules_left_out": dict(state.rules_left_out),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _read_tables(folder: Path, names: list[str]) -> dict[str, pd.DataFrame]:
    return {n: pd.read_parquet(folder / "history" / f"{n}.parquet") for n in names}


#: the one table a start need not wait for (a million rows and more): the lists are stored
LATE_TABLE = "activities"


class HistoryArriving(Future):
    """The stored history, read in a thread once :meth:`want` is called: at once on a reload,
    behind the ready server on a start (:meth:`~salespilot.serving.state.StateHolder.after_start`),
    or when something reads it first (:meth:`result` wants it, then waits). So the start's
    imports and reads do not share the cores with the activities' (a second or more of CPU at a
    million rows); nothing asking, it is read :data:`WANTED_WITHIN` seconds after the start."""

    def __init__(self) -> None:
        super().__init__()
        self._wanted = threading.Event()

    def want(self) -> None:
        self._wanted.set()

    @property
    def wanted(self) -> bool:
        return self._wanted.is_set()

    def result(self, timeout: float | None = None) -> History:
        self._wanted.set()
        return super().result(timeout)

    def _read(self, read: Any) -> None:
        self._wanted.wait(WANTED_WITHIN)
        if not self.set_running_or_notify_cancel():
            return
        try:
            self.set_result(read())
        except BaseException as exc:  # the reader sees it in result()
            self.set_exception(exc)


#: seconds a start's history waits to be wanted before it is read anyway
WANTED_WITHIN = 30.0


@dataclass(frozen=True)
class Prefetch:
    """The stored history being read in threads: the small tables first (``small``: what the
    start's lookups read), then, once wanted, the whole history (``history``, with the
    activities)."""

    names: tuple[str, ...]
    small: Future
    history: HistoryArriving


def prefetch(settings: Settings, signature: tuple, *, start: bool = False) -> Prefetch | None:
    """Start reading the stored history in a thread when it is of these data files, so that
    the Parquet reads (which release the GIL) overlap the models' loading; None otherwise.
    The activities are read at once too, unless ``start`` (the server's start): then behind
    the ready server (:class:`HistoryArriving`)."""
    folder = stored_dir(settings)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not signature or manifest.get("data_signature") != [list(s) for s in signature]:
        return None
    names = tuple(manifest["history"]["tables"])
    pool = ThreadPoolExecutor(1, thread_name_prefix="stored-history")
    small = pool.submit(_read_tables, folder, [n for n in names if n != LATE_TABLE])
    pool.shutdown(wait=False)
    history = HistoryArriving()
    if not start:
        history.want()
    # a daemon thread: a history nobody wants never holds the process at its exit
    threading.Thread(
        target=history._read,
        args=(lambda: _whole_history(folder, manifest, small, settings),),
        name="stored-history",
        daemon=True,
    ).start()
    return Prefetch(names, small, history)


def _history_of(tables: dict[str, pd.DataFrame], meta: dict[str, Any]) -> History:
    return History(
        **tables,
        source=None if meta["source"] is None else Path(meta["source"]),
        observed_until=None
        if meta["observed_until"] is None
        else pd.Timestamp(meta["observed_until"]),
    )


def _whole_history(
    folder: Path, manifest: dict[str, Any], small: Future, settings: Settings
) -> History:
    """The stored history with every table, its content hash read back, its feature indexes
    kept (as a built state's history: never edited). Stored activities that cannot be read are
    read from the data folder instead (the same files: the data signature matched)."""
    from salespilot.features.pit import cached, keep_feature_cache

    meta = manifest["history"]
    tables = dict(small.result())
    if LATE_TABLE in meta["tables"]:
        try:
            tables[LATE_TABLE] = pd.read_parquet(folder / "history" / f"{LATE_TABLE}.parquet")
        except (OSError, ValueError) as exc:
            from salespilot.features.loader import load_history

            log.warning("the stored activities are unreadable (%s); reading the data", exc)
            tables[LATE_TABLE] = load_history(
                settings.data_dir, observed_until=settings.observed_until
            ).activities
    history = _history_of(tables, meta)
    keep_feature_cache(history)
    content_hash = manifest["content_hash"]
    cached(history, "history.content_hash", lambda: content_hash)  # read back, not recomputed
    return history


def restore(
    settings: Settings,
    signature: tuple,
    models: dict[str, ModelSlot],
    *,
    tables: Prefetch | None = None,
) -> dict[str, Any] | None:
    """The stored state's parts when they still hold for ``signature`` (the data files now)
    and ``models`` (the versions about to serve), else None. Returns the pieces
    :func:`salespilot.serving.state.build_state` assembles into a state; ``tables`` is what
    :func:`prefetch` started."""
    folder = stored_dir(settings)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    versions = {n: s.version for n, s in models.items()}
    want = _key(settings, signature, versions)
    if not signature or any(manifest.get(k) != v for k, v in want.items()):
        log.info("the stored serving state is for other data, models or settings; building")
        return None
    if manifest.get("rules_left_out") is None:
        # stored before the rules left out were: restoring it would judge them from the whole
        # history at every start (waiting for the activities); built and stored once instead
        log.info("the stored serving state is of an older format; building")
        return None
    try:
        return _read(folder, manifest, tables, settings)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("the stored serving state is unreadable (%s); building", exc)
        return None


def _read(
    folder: Path, manifest: dict[str, Any], prefetched: Prefetch | None, settings: Settings
) -> dict[str, Any]:
    meta = manifest["history"]
    if prefetched is None or set(prefetched.names) != set(meta["tables"]):
        small = Future()
        small.set_result(_read_tables(folder, [n for n in meta["tables"] if n != LATE_TABLE]))
        history: History | Future = _whole_history(folder, manifest, small, settings)
    else:
        small, history = prefetched.small, prefetched.history
    content_hash = manifest["content_hash"]
    scored: dict[str, Scored | None] = {"win": None, "churn": None}
    for key, info in manifest["scored"].items():
        scores = pd.read_parquet(folder / f"{key}.scores.parquet")
        ids = scores["id"].astype(str).to_numpy(dtype=object)
        scored[key] = Scored(
            model=info["model"],
            version=info["version"],
            ids=ids,
            proba=scores["proba"].to_numpy(float),
            raw=scores["raw"].to_numpy(float),
            contrib=np.load(folder / f"{key}.contrib.npy"),
            base=scores["base"].to_numpy(float),
            features=list(info["features"]),
            readable=dict(info["readable"]),
            values=pd.read_parquet(folder / f"{key}.values.parquet"),
            index={k: i for i, k in enumerate(ids)},
        )
    lists = json.loads((folder / "lists.json").read_text())
    rep_items_json = {
        r: tuple(s.encode() for s in items) for r, items in lists["rep_items"].items()
    }
    return {
        # the whole history, or its future when prefetched (the activities come after ready)
        "history": history,
        # what the lookups read: every table but the activities
        "lookup_history": _history_of(dict(small.result()), meta),
        "history_tables": tuple(meta["tables"]),
        "source": meta["source"],
        "rules_left_out": manifest["rules_left_out"],
        "as_of": pd.Timestamp(manifest["as_of"]),
        "slots_from": None
        if manifest["slots_from"] is None
        else pd.Timestamp(manifest["slots_from"]),
        "content_hash": content_hash,
        "win": scored["win"],
        "churn": scored["churn"],
        "rep_items_json": rep_items_json,
        "rep_items": ParsedOnUse(rep_items_json, PriorityItem),
        "at_risk": ParsedSequence(lists["at_risk"], AtRiskAccount),
        "rep_timezones": dict(lists["rep_timezones"]),
        "deal_owner": dict(lists["deal_owner"]),
        "account_deal_reps": {k: set(v) for k, v in lists["account_deal_reps"].items()},
    }


class ParsedOnUse(Mapping):
    """Each rep's items (rep -> tuple of pydantic models), parsed from the stored JSON bytes the
    first time that rep's items are asked for: a start does not validate 6,000 items that only
    the pages and explanations read (the list route serves the bytes)."""

    def __init__(self, raw: dict[str, tuple[bytes, ...]], model: type) -> None:
        self._raw, self._model, self._parsed = raw, model, {}

    def __getitem__(self, rep_id: str) -> tuple:
        parsed = self._parsed.get(rep_id)
        if parsed is None:
            parsed = tuple(self._model.model_validate_json(b) for b in self._raw[rep_id])
            self._parsed[rep_id] = parsed  # parsing twice in a race gives equal tuples
        return parsed

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class ParsedSequence(Sequence):
    """A tuple of pydantic models parsed from stored JSON strings on first use (once)."""

    def __init__(self, raw: list[str], model: type) -> None:
        self._raw, self._model, self._parsed = raw, model, None

    def _items(self) -> tuple:
        parsed = self._parsed
        if parsed is None:  # parsing twice in a race gives equal tuples
            parsed = self._parsed = tuple(self._model.model_validate_json(a) for a in self._raw)
        return parsed

    def __getitem__(self, i):
        return self._items()[i]

    def __len__(self) -> int:
        return len(self._raw)

    def __eq__(self, other: object) -> bool:
        return tuple(self._items()) == tuple(other) if isinstance(other, Sequence) else False

    __hash__ = None  # type: ignore[assignment]
