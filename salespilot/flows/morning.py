"""``morning_lists``: every active rep's priority list as of this morning, stored and pushed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.atomic import write_json
from salespilot.flows.outbox import DeliveryFailed, Outbox, post_json
from salespilot.settings import WEBHOOK_SECRET_MISSING, Settings

LISTS_MANIFEST = "manifest.json"


def lists_dir(settings: Settings) -> Path:
    return settings.state_dir / "lists"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@task(cache_policy=NO_CACHE)
def write_list(settings: Settings, rep_id: str, payload: dict, day: str) -> Path:
    """Write one rep's list where the API and the CLI read it (whole)."""
    return write_json(lists_dir(settings) / day / f"{rep_id}.json", payload, default=str)


@task(cache_policy=NO_CACHE)
def seal_lists(settings: Settings, day: str, history_hash: str | None, reps: list[str]) -> Path:
    """Write the day's ``manifest.json``, last: the data's hash and each list's SHA-256, so a
    run killed half-way (lists of two data versions side by side) is told apart."""
    out = lists_dir(settings) / day
    manifest = {
        "as_of": day,
        "history_hash": history_hash,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lists": {rep: _digest(out / f"{rep}.json") for rep in sorted(reps)},
    }
    return write_json(out / LISTS_MANIFEST, manifest, indent=1)


def check_lists(day_dir: str | Path) -> list[str]:
    """Every list of a day's folder its manifest does not vouch for, in words (which file,
    which data); empty when the folder is consistent."""
    day_dir = Path(day_dir)
    files = sorted(p for p in day_dir.glob("*.json") if p.name != LISTS_MANIFEST)
    try:
        manifest = json.loads((day_dir / LISTS_MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return (
            [f"{day_dir} has {len(files)} lists but no {LISTS_MANIFEST}: the run that wrote "
             "them did not finish; run morning_lists again"]
            if files
            else []
        )  # fmt: skip
    known = manifest.get("lists", {})
    data = str(manifest.get("history_hash"))[:12]
    problems = [
        f"{p} is not the list {LISTS_MANIFEST} names (data {data}): written by a run that did "
        "not finish; run morning_lists again"
        for p in files
        if known.get(p.stem) != _digest(p)
    ]
    problems += [f"{day_dir / rep}.json is named in {LISTS_MANIFEST} but missing"
                 for rep in known if not (day_dir / f"{rep}.json").exists()]  # fmt: skip
    return problems


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=0)
def deliver(url: str, delivery_id: str, payload: dict, secret: str | None = None) -> int:
    """POST one list to the webhook (signed when a secret is set); Prefect retries a failure."""
    return post_json(url, payload, delivery_id=delivery_id, secret=secret)


def send_pending(outbox: Outbox, url: str, settings: Settings) -> dict[str, list[str]]:
    """Send every pending delivery (this run's, earlier runs' failures, interrupted sends)."""
    if settings.env != "dev" and settings.webhook_secret is None:
        raise ValueError(f"SALESPILOT_ENV=prod refuses {WEBHOOK_SECRET_MISSING}")
    with outbox.sending():
        return _send_claimed(outbox, url, settings)


def _send_claimed(outbox: Outbox, url: str, settings: Settings) -> dict[str, list[str]]:
    logger = get_run_logger()
    sent, failed = [], []
    attempt = deliver.with_options(
        retries=settings.webhook_retries, retry_delay_seconds=settings.webhook_retry_delay_s
    )
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    for pending in outbox.pending():
        item = outbox.claim(pending)
        state = attempt(url, item.delivery_id, item.payload(), secret, return_state=True)
        if state.is_completed():
            outbox.record_attempt(item, ok=True, detail=f"HTTP {state.result()}")
            sent.append(item.delivery_id)
        else:
            try:
                state.result()
            except DeliveryFailed as exc:
                detail = str(exc)
            except Exception as exc:  # the state carries the task's own exception
                detail = f"{type(exc).__name__}: {exc}"
            else:
                detail = f"task ended {state.type.value}"
            outbox.record_attempt(item, ok=False, detail=detail)
            logger.warning(
                "delivery %s failed, kept for the next run: %s", item.delivery_id, detail
            )
            failed.append(item.delivery_id)
    return {"delivered": sent, "failed": failed}


@task(cache_policy=NO_CACHE)
def score_everything(settings: Settings):
    """Load the history and the champion models and rank every rep's list (one batch)."""
    from salespilot.serving.state import build_state

    return build_state(settings, persist_scores=True)


def active_reps(state, teams: list[str] | None) -> list[str]:
    reps = state.reps
    active = reps[reps["left_at"].isna()] if "left_at" in reps.columns else reps
    if teams:
        active = active[active["team"].astype(str).isin(teams)]
    return sorted(map(str, active.index))


@flow(name="morning_lists")
def morning_lists(
    teams: list[str] | None = None, limit: int = 50, webhook_url: str | None = None
) -> dict:
    """Score every active rep's priority list as of this morning, store it and push it."""
    from salespilot.serving.priorities import rep_priorities_json

    logger = get_run_logger()
    settings = Settings()
    state = score_everything(settings)
    day = state.as_of.strftime("%Y-%m-%d")
    url = webhook_url or settings.webhook_url
    outbox = Outbox(settings.state_dir / "outbox")
    written = []
    for rep_id in active_reps(state, teams):
        payload = json.loads(rep_priorities_json(state, rep_id, limit))
        write_list(settings, rep_id, payload, day)
        written.append(rep_id)
        if url:
            outbox.put(f"{rep_id}-{day}", payload)
    seal_lists(settings, day, state.content_hash, written)
    logger.info("%d lists written for %s", len(written), day)
    summary = {"as_of": day, "lists": len(written), "reps": written}
    if url:
        summary |= send_pending(outbox, url, settings)
    return summary
