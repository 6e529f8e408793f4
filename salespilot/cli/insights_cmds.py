"""Manager insights commands: ``channels`` (which lead source pays), ``gap`` (where a team's
shortfall against target comes from) and ``brief`` (a team's weekly brief)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from salespilot.cli.targets_cmds import AsOfOpt, DataOpt, JsonOpt, _as_of, _fail, _load, _short
from salespilot.tables import print_table


def register(app: typer.Typer) -> None:
    app.command("channels")(channels)
    app.command("gap")(gap)
    app.command("brief")(brief)


def channels(
    team: Annotated[
        str | None, typer.Option("--team", help="Only the deals of this team's reps.")
    ] = None,
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per lead source, product line and region: lead share, win rate with a 95 % interval, cycle,
    average value and the subscription value retained over 12 months, against overall;
    channels whose value is out of line with their share of leads are flagged."""
    from salespilot.targets.channels import channels_overview

    history, _ = _load(data, as_json)
    try:
        out = channels_overview(history, as_of=_as_of(as_of, as_json), team=team)
    except (LookupError, ValueError) as exc:
        _fail(str(exc).strip("'\""), as_json)
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    _print_channels(out)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _print_channels(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for key, title in (
        ("channels", "lead_source"),
        ("product_lines", "product_line"),
        ("regions", "region"),
    ):
        t = Table(
            title=f"{title} as of {out['as_of'][:10]}"
            + (f", team {out['team']}" if out["team"] else "")
        )
        for col in ("", "leads", "share", "win rate", "95 % interval", "cycle d", "avg value",
                    "retained 12m", "value/lead", "value share", "flag"):  # fmt: skip
            t.add_column(col, justify="left" if col in ("", "flag") else "right")
        rows = out[key] + [dict(out["overall"], **{title: "overall", "value_share": 1.0})]
        for r in rows:
            t.add_row(
                str(r[title]),
                str(r["leads"]),
                _pct(r["lead_share"]),
                _pct(r["win_rate"]),
                f"{_pct(r['win_rate_low'])}-{_pct(r['win_rate_high'])}",
                "-" if r["cycle_days"] is None else f"{r['cycle_days']:.0f}",
                _short(r["avg_value"]),
                _short(r["retained_value_12m"]),
                _short(r["value_per_lead"]),
                _pct(r.get("value_share")),
                r.get("flag") or "",
            )
        print_table(console, t)
    for message in out["flagged"]:
        console.print(f"[yellow]![/yellow] {message}")


def gap(
    team: Annotated[
        str,
        typer.Argument(
            help="Team name, as in reps.team (a region with --by region, a product line with"
            " --by product_line)."
        ),
    ],
    period: Annotated[
        str, typer.Option("--period", help="A quarter (2026-Q2) or month (2026-05).")
    ],
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="The scope: team (default), region (reps.region) or product_line (its share"
            " of the reps' target: its share of their won value over the last 12 months).",
        ),
    ] = "team",
    only_team: Annotated[
        str | None,
        typer.Option(
            "--team",
            help="With --by region: only this team's reps in the region; with --by"
            " product_line: only this team's reps (default: every rep).",
        ),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(
            "--target",
            help="The scope's target (default: the targets table; a product line's share of it).",
        ),
    ] = None,
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The team's (or region's, or product line's) expected shortfall (target - P50 of booked +
    forecast) split into causes: by rep, by funnel step against the scope's norm, and by
    segment; each with an action."""
    from salespilot.targets.gap import SCOPES, gap_attribution
    from salespilot.targets.periods import parse_period
    from salespilot.targets.service import champion_scorer, configs_from_settings

    if by not in SCOPES:
        _fail(f"--by is one of {', '.join(SCOPES)}, not {by!r}", as_json)
    try:
        p = parse_period(period)
    except ValueError as exc:
        _fail(str(exc), as_json)
    history, settings = _load(data, as_json)
    fc, _, _ = configs_from_settings(settings)
    try:
        report = gap_attribution(
            history,
            team,
            p,
            by=by,
            team=only_team,
            as_of=_as_of(as_of, as_json),
            target=target,
            scorer=champion_scorer(settings),
            forecast_config=fc,
        )
    except (LookupError, ValueError) as exc:
        _fail(str(exc).strip("'\""), as_json)
    out = report.to_dict()
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    _print_gap(out)


def _print_gap(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{out['scope']} {out['period']}[/bold]: target {_short(out['target'])}"
        f" ({out['target_source']}), booked {_short(out['booked'])}, P50 {_short(out['p50'])},"
        f" gap [bold]{_short(out['gap'])}[/bold]"
    )
    if out.get("line_share"):
        s = out["line_share"]
        of = (
            "" if s["scope_target"] is None else f" of the reps' target {_short(s['scope_target'])}"
        )
        console.print(
            f"the line's share: {s['share']:.1%}{of} (its won value {_short(s['line_booked'])}"
            f" of {_short(s['scope_booked'])}, {s['window_start'][:10]} to {s['window_end'][:10]})"
        )
    for dimension in dict.fromkeys(c["dimension"] for c in out["causes"]):
        rows = [c for c in out["causes"] if c["dimension"] == dimension]
        t = Table(title=f"by {dimension} (sums to the gap)", title_justify="left")
        t.add_column(dimension)
        t.add_column("amount", justify="right")
        t.add_column("action")
        for c in sorted(rows, key=lambda c: -c["amount"]):
            t.add_row(c["key"], _short(c["amount"]), c["action"])
        print_table(console, t)


def brief(
    team: Annotated[str, typer.Argument(help="Team name, as in reps.team.")],
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The team's weekly brief: the three largest improvement opportunities (gap causes,
    channels, process health, hand-overs) with their expected value and action, the week's new
    opportunities, stages per deal and silent customers (the ``weekly_briefs`` flow's twin)."""
    from salespilot.targets.brief import weekly_brief
    from salespilot.targets.service import champion_scorer, configs_from_settings

    history, settings = _load(data, as_json)
    fc, _, th = configs_from_settings(settings)
    try:
        out = weekly_brief(
            history,
            team,
            as_of=_as_of(as_of, as_json),
            scorer=champion_scorer(settings),
            forecast_config=fc,
            thresholds=th,
        )
    except (LookupError, ValueError) as exc:
        _fail(str(exc).strip("'\""), as_json)
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    print_brief(out)


def print_brief(out: dict) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{out['team']}, week {out['week']}[/bold] (from {out['week_start']})")
    console.print(
        f"{out['new_opportunities']} new opportunities ({_short(out['new_opportunities_value'])}),"
        f" {out['avg_stages_per_deal']} stages per closed deal,"
        f" {out['silent_customers']} customers silent for 30 days"
    )
    for i, o in enumerate(out["opportunities"], 1):
        console.print(f"{i}. [bold]{o['title']}[/bold] - worth {_short(o['expected_value'])}")
        console.print(f"   {o['action']}")
    if out["handovers"]:
        console.print(f"hand-overs needing attention: {len(out['handovers'])}")
        for h in out["handovers"][:5]:
            console.print(f"   {h['action']}")
    for n in out["notes"]:
        console.print(f"[dim]{n}[/dim]")
