"""The morning priority list: a rep's open deals and at-risk accounts, ranked by value at stake.

Ranking key (documented, weights in settings):

* deal:    ``priority_deal_weight    x win probability x amount``
* account: ``priority_account_weight x churn risk      x annual value``

so a 60 % deal of 10 000 (6 000 at stake) comes before a 40 % churn risk on 12 000 a year
(4 800). Accounts enter the list only from ``priority_min_churn_risk`` up, unless handed over
to the rep with something missing (their hand-over note then comes with them). Grades are
quartiles of the rep's list (A = top quarter); the trend compares each score with the rep's
previous scoring (an earlier data ``as_of``) persisted under the state folder.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from salespilot.serving.rules import NO_REPLY_PREFIX, Warning
from salespilot.serving.schemas import (
    BestTime,
    Factors,
    HandoverNote,
    PriorityItem,
    Trend,
    WarningOut,
)

log = logging.getLogger(__name__)

GRADES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class PriorityConfig:
    deal_weight: float = 1.0
    account_weight: float = 1.0
    min_churn_risk: float = 0.1
    grade_cuts: tuple[float, float, float] = (0.25, 0.5, 0.75)
    trend_threshold: float = 0.03


@dataclass(frozen=True)
class Candidate:
    """Everything known about one list entry before ranking."""

    kind: str  # "deal" | "account"
    entity_id: str
    account_id: str
    account_name: str | None
    title: str
    model: str
    score: float
    value: float
    warnings: tuple[Warning, ...]
    factors: Factors
    best_time: BestTime | None
    stage: str | None = None
    handover: HandoverNote | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.entity_id}"


def value_at_stake(c: Candidate, cfg: PriorityConfig) -> float:
    weight = cfg.deal_weight if c.kind == "deal" else cfg.account_weight
    v = weight * c.score * c.value
    return 0.0 if math.isnan(v) else v


def grade(position: int, total: int, cuts: Sequence[float] = (0.25, 0.5, 0.75)) -> str:
    """A-D by position in the ranked list (0-based): A for the top quarter, D for the last."""
    if total <= 0:
        return "D"
    q = position / total
    for letter, cut in zip(GRADES, cuts, strict=False):
        if q < cut:
            return letter
    return "D"


def trend(
    *,
    kind: str,
    score: float,
    previous: float | None,
    previous_as_of: pd.Timestamp | None,
    threshold: float,
) -> Trend:
    """Improving / steady / declining against the previous scoring (churn: lower is better)."""
    if previous is None:
        return Trend(direction="new")
    change = score - previous
    better = change if kind == "deal" else -change
    direction = "steady"
    if better >= threshold:
        direction = "improving"
    elif better <= -threshold:
        direction = "declining"
    return Trend(
        direction=direction,
        previous_score=round(previous, 4),
        previous_as_of=None if previous_as_of is None else previous_as_of.to_pydatetime(),
        change=round(change, 4),
    )


def next_step(c: Candidate) -> str:
    """One concrete action, from the most pressing warning (or the score when none)."""
    codes = {w.code: w for w in c.warnings}
    no_reply = any(code.startswith(NO_REPLY_PREFIX) for code in codes)
    when = ""
    if c.best_time is not None:
        when = f" at {c.best_time.contact_local_time:%a %H:%M} their time"
    if c.handover is not None:
        return f"Call{when} as the new owner and work through the hand-over note."
    if "owner_changed_without_handover" in codes:
        prev = codes["owner_changed_without_handover"].evidence.get("previous_owner_rep_id")
        return f"Introduce yourself as the new owner{when}; ask {prev} for a hand-over note."
    if c.kind == "account":
        if no_reply:
            return f"Call{when}: your last message is unanswered; check how they use the product."
        return f"Book a check-in{when} to review usage and renewal before the risk grows."
    if no_reply:
        return f"Call{when} instead of another email: your last touch got no reply."
    if "repeatedly_postponed" in codes:
        return f"Call{when} to fix a firm date for the demo, with the decision maker in it."
    if "past_expected_close" in codes:
        return "Confirm the close date with the buyer and update it in the CRM, or close the deal."
    if "stalled_in_stage" in codes:
        stage = c.stage or "this stage"
        return f"Agree the step that moves the deal out of {stage}{when}."
    if "no_decision_maker" in codes:
        return f"Ask your contact to bring the decision maker into the next meeting{when}."
    if c.score >= 0.5:
        return f"Push for the close{when}: send the proposal and agree a signing date."
    return f"Follow up{when} to qualify the next step."


class PreviousScores:
    """Each rep's last scorings (per data ``as_of``), in ``<dir>/<rep_id>.json``."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.dir = Path(directory)
        self.keep = keep

    def _path(self, rep_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", rep_id)
        return self.dir / f"{safe}.json"

    def _load(self, rep_id: str) -> list[dict]:
        p = self._path(rep_id)
        if not p.exists():
            return []
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("ignoring unreadable previous scores %s", p)
            return []

    def before(self, rep_id: str, as_of: pd.Timestamp) -> tuple[pd.Timestamp | None, dict]:
        """The latest scoring strictly before ``as_of``: ``(its as_of, {key: score})``."""
        earlier = [s for s in self._load(rep_id) if pd.Timestamp(s["as_of"]) < as_of]
        if not earlier:
            return None, {}
        last = max(earlier, key=lambda s: s["as_of"])
        return pd.Timestamp(last["as_of"]), last["scores"]

    def save(self, rep_id: str, as_of: pd.Timestamp, scores: dict[str, float]) -> None:
        snaps = [s for s in self._load(rep_id) if pd.Timestamp(s["as_of"]) != as_of]
        snaps.append({"as_of": as_of.isoformat(), "scores": scores})
        snaps = sorted(snaps, key=lambda s: s["as_of"])[-self.keep :]
        self.dir.mkdir(parents=True, exist_ok=True)
        p = self._path(rep_id)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(snaps), encoding="utf-8")
        tmp.replace(p)


def rank(
    candidates: Sequence[Candidate],
    *,
    cfg: PriorityConfig,
    previous: dict[str, float] | None = None,
    previous_as_of: pd.Timestamp | None = None,
) -> list[PriorityItem]:
    """Rank one rep's candidates by value at stake (ties: higher score, then id)."""
    # a handed-over account stays on the list whatever its risk: the successor must act on it
    keep = [
        c
        for c in candidates
        if c.kind == "deal" or c.score >= cfg.min_churn_risk or c.handover is not None
    ]
    keyed = sorted(
        ((value_at_stake(c, cfg), c) for c in keep),
        key=lambda vc: (-vc[0], -vc[1].score, vc[1].key),
    )
    previous = previous or {}
    total = len(keyed)
    return [
        PriorityItem(
            rank=pos + 1,
            kind=c.kind,  # type: ignore[arg-type]
            entity_id=c.entity_id,
            account_id=c.account_id,
            account_name=c.account_name,
            title=c.title,
            model=c.model,  # type: ignore[arg-type]
            score=round(c.score, 6),
            value=round(c.value, 2),
            value_at_stake=round(v, 2),
            grade=grade(pos, total, cfg.grade_cuts),  # type: ignore[arg-type]
            trend=trend(
                kind=c.kind,
                score=c.score,
                previous=previous.get(c.key),
                previous_as_of=previous_as_of,
                threshold=cfg.trend_threshold,
            ),
            best_time=c.best_time,
            warnings=[
                WarningOut(code=w.code, message=w.message, evidence=w.evidence) for w in c.warnings
            ],
            factors=c.factors,
            next_step=next_step(c),
            handover=c.handover,
        )
        for pos, (v, c) in enumerate(keyed)
    ]


def rep_priorities_json(state, rep_id: str, limit: int) -> bytes:
    """The rep's list as JSON bytes, from items serialised once at load (the hot path)."""
    from salespilot.serving.schemas import DataInfo, PrioritiesResponse

    head = state.cache.get(("prio_head", rep_id))
    if head is None:
        rep = state.reps.loc[rep_id]
        doc = PrioritiesResponse(
            rep_id=rep_id,
            rep_name=None if pd.isna(rep.get("name")) else str(rep.get("name")),
            team=state.rep_team(rep_id),
            as_of=state.as_of.to_pydatetime(),
            data=DataInfo(
                # the data folder's name, never the server's path to it
                source=None if state.source is None else Path(state.source).name,
                content_hash=state.content_hash,
                as_of=state.as_of.to_pydatetime(),
            ),
            model_versions=state.versions,
            total=len(state.rep_items.get(rep_id, ())),
            items=[],
        ).model_dump_json()
        assert doc.endswith('"items":[]}')
        head = doc[: -len("[]}")].encode()
        state.cache[("prio_head", rep_id)] = head
    items = state.rep_items_json.get(rep_id, ())[:limit]
    return head + b"[" + b",".join(items) + b"]}"


def as_of_memo(state, settings):
    """The state's memo of rebuilt as_of lists (bounded: each holds one rep's scores)."""
    from salespilot.serving.limits import BoundedCache

    memo = state.cache.get("_as_of")
    if memo is None:
        memo = state.cache.setdefault("_as_of", BoundedCache(settings.serving_as_of_entries))
    return memo


def state_as_of(state, settings, as_of: pd.Timestamp, rep_id: str):
    """A throw-away state for one rep, scored as of an earlier instant (same data and models).

    Only the rep's deals and accounts are built, scored and explained; the features still read
    the whole history, so each item equals the one a full build as of that instant would rank.
    """
    from salespilot.serving.state import build_state

    key = (as_of.isoformat(), rep_id)
    memo = as_of_memo(state, settings)
    past = memo.get(key)
    if past is None:
        past = build_state(
            settings,
            history=state.history,
            as_of=as_of,
            models=state.models,
            persist_scores=False,
            only_reps={rep_id},
            rates=state.cache.get("_rates"),
        )
        memo[key] = past
    return past


def handover_notes(
    history, as_of: pd.Timestamp, only_reps: set[str] | None = None
) -> dict[tuple[str, str], HandoverNote]:
    """``(kind, entity_id) -> note`` of the open deals and paying accounts handed over to
    their current owner with something missing (:mod:`salespilot.targets.handover`)."""
    from salespilot.targets.handover import handover_note, handover_risk

    rows = handover_risk(history, as_of=as_of)
    if only_reps is not None:
        rows = rows[rows["owner_rep_id"].isin(only_reps)]
    return {
        (str(r.kind), str(r.id)): HandoverNote(
            previous_owner_rep_id=str(r.previous_owner),
            previous_owner_left=bool(r.previous_owner_left),
            handed_over_at=r.handed_over_at.to_pydatetime(),
            missing=list(r.missing),
            note=handover_note(
                previous_owner=str(r.previous_owner),
                previous_owner_left=bool(r.previous_owner_left),
                handed_over_at=r.handed_over_at,
                missing=r.missing,
            ),
        )
        for r in rows.itertuples(index=False)
    }
