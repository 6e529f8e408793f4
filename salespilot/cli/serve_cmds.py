"""Serving commands: ``serve`` (the API), ``tokens`` (API access), ``priorities`` (a rep's list)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from salespilot.tables import print_table

tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("priorities")(priorities)
    app.add_typer(tokens_app, name="tokens")


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    reload_interval: Annotated[
        float | None,
        typer.Option(
            help="Reload data and models every N seconds (0: only on POST /v1/models/reload)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (OpenAPI docs at /docs). Loads data and champion models at start.

    With SALESPILOT_ENV=prod it refuses to start on a public interface without
    SALESPILOT_ALLOW_PUBLIC_BIND, with a webhook but no secret, or with the demo's tokens.
    """
    import uvicorn
    from pydantic import ValidationError

    from salespilot.serving.app import create_app
    from salespilot.serving.auth import DemoTokensActive
    from salespilot.serving.http_protocol import uvicorn_options
    from salespilot.settings import Settings

    overrides = {"host": host, "port": port, "serving_reload_interval_s": reload_interval}
    try:  # the options are validated with the rest (a --host is refused like SALESPILOT_HOST)
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        app = create_app(settings)
    except ValidationError as exc:
        _fail("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()))
        return
    except DemoTokensActive as exc:
        _fail(str(exc))
        return
    uvicorn.run(app, **uvicorn_options(settings), log_level=log_level)


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="rep, manager or admin.")],
    rep: Annotated[str | None, typer.Option("--rep", help="Rep id a rep token reads.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team a manager token reads.")] = None,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a token and print it ONCE (only its hash is stored)."""
    from salespilot.features.loader import match_id, read_ids
    from salespilot.features.names import unknown_name
    from salespilot.serving.auth import TokenError, TokenStore
    from salespilot.settings import Settings

    settings = Settings()
    known = read_ids(settings.data_dir, "reps") if rep is not None else None
    if rep is not None and known is not None:
        found, close = match_id(rep, known)
        if found is None:
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            _fail(f"no rep with id {rep!r} in {settings.data_dir}{hint}")
            return
        rep = found
    teams = read_ids(settings.data_dir, "reps", "team") if team is not None else None
    if team is not None and teams is not None and team not in teams:
        _fail(f"{unknown_name('team', team, teams)} in {settings.data_dir}")
        return
    store = TokenStore.for_state_dir(settings.state_dir)
    try:
        secret, record = store.create(role=role, rep_id=rep, team=team, name=name)
    except TokenError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps({"token": secret, **record.public()}))
        return
    from rich.console import Console

    c = Console(highlight=False)
    scope = record.rep_id or record.team or "everything"
    c.print(f"Created {record.token_id} (role {record.role}, scope {scope}). Store it now:")
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List tokens (never the secrets)."""
    from rich.console import Console
    from rich.table import Table

    from salespilot.serving.auth import TokenStore
    from salespilot.settings import Settings

    records = TokenStore.for_state_dir(Settings().state_dir).list(include_revoked=include_revoked)
    if as_json:
        typer.echo(json.dumps({"tokens": [r.public() for r in records]}))
        return
    t = Table("id", "role", "scope", "name", "created", "revoked")
    for r in records:
        t.add_row(
            r.token_id, r.role, r.rep_id or r.team or "*", r.name, r.created_at, r.revoked_at or ""
        )
    print_table(Console(), t)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by `tokens list`.")],
) -> None:
    """Revoke a token; the running service refuses it from the next request on."""
    from salespilot.serving.auth import TokenError, TokenStore
    from salespilot.settings import Settings

    try:
        r = TokenStore.for_state_dir(Settings().state_dir).revoke(token_id)
    except TokenError as exc:
        _fail(str(exc))
        return
    typer.echo(f"revoked {r.token_id} at {r.revoked_at}")


def priorities(
    rep: Annotated[str, typer.Argument(help="Rep id, e.g. R00017.")],
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many items.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print a rep's ranked follow-up list (the same as GET /v1/reps/REP/priorities)."""
    import logging
    from functools import partial

    from rich.console import Console

    from salespilot.features.loader import match_id, read_ids
    from salespilot.serving.priorities import rep_priorities_json
    from salespilot.serving.state import StateHolder, build_state
    from salespilot.settings import Settings

    # the command says what went wrong in one line of its own (below): no log lines before it
    logging.getLogger("salespilot").setLevel(logging.CRITICAL)
    console = Console(stderr=True)
    settings = Settings()
    if not settings.data_dir.is_dir():
        _fail(
            f"no history folder at {settings.data_dir}: run `salespilot demo` first, "
            "or set SALESPILOT_DATA_DIR"
        )
        return
    # a mistyped id answers at once, before the models load
    known = read_ids(settings.data_dir, "reps")
    if known is not None:
        found, close = match_id(rep, known)
        if found is None:
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            _fail(f"no rep with id {rep!r} in {settings.data_dir}{hint}")
            return
        rep = found
    # score this one rep only: the same list as the API's, without ranking the whole company
    holder = StateHolder(settings, builder=partial(build_state, only_reps={rep}))
    with console.status("Loading data and models ..."):
        state = holder.reload()
    if state is None:
        _fail(f"cannot load data and models: {holder.last_error}")
        return
    if state.model("win_probability") is None:
        _fail(f"no win_probability model to score with: {state.models['win_probability'].problem}")
        return
    if rep not in state.reps.index:
        _fail(f"no rep with id {rep!r} in {state.source}")
        return
    body = json.loads(rep_priorities_json(state, rep, limit))
    if as_json:
        typer.echo(json.dumps(body))
        return
    _print_priorities(body)


def _best_time_text(bt: dict | None) -> str:
    """The slot in the contact's time and the rep's, each with its zone."""
    if not bt:
        return "no best time yet (no contact with a time zone)"
    theirs = f"{bt['contact_local_time'][:16].replace('T', ' ')} {bt['contact_timezone']}"
    yours = f"{bt['rep_local_time'][11:16]} {bt['rep_timezone']}"
    return f"{theirs} theirs, {yours} yours ({bt['connect_probability']:.0%} connect)"


def _print_priorities(body: dict) -> None:
    """One block per item, wrapped at the words: readable at 80 columns and in a pipe."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Column, Table

    from salespilot.models.win_probability import SCORE_LABEL

    c = Console()
    who = f"{body['rep_id']} {body.get('rep_name') or ''}".strip()
    c.print(f"[bold]{escape(who)}[/bold] - as of {body['as_of'][:16].replace('T', ' ')}")
    grid = Table.grid(Column(justify="right", no_wrap=True), Column(), padding=(0, 1))
    for it in body["items"]:
        what = SCORE_LABEL if it["kind"] == "deal" else "churn risk"
        lines = [
            f"[bold]{escape(it['title'])}[/bold]",
            f"{it['score']:.0%} {what} · {it['value_at_stake']:,.0f} at stake · "
            f"grade {it['grade']} · {it['trend']['direction']}",
            f"best time: {escape(_best_time_text(it.get('best_time')))}",
            *(f"[yellow]! {escape(w['message'])}[/yellow]" for w in it["warnings"]),
            f"next: {escape(it['next_step'])}",
        ]
        grid.add_row(f"{it['rank']}.", "\n".join(lines))
        grid.add_row("", "")
    c.print(grid)
    for code, why in (body["data"].get("rules_left_out") or {}).items():
        c.print(f"rule {code} left out: {escape(why)}")
    if body["total"] > len(body["items"]):
        c.print(f"{len(body['items'])} of {body['total']} items; --limit for more.")
