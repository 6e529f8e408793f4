"""Manager insights commands: ``channels`` (which lead source pays), ``gap`` (where a team's
shortfall against target comes from) and ``brief`` (a team's weekly brief)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from salespilot.cli.targets_cmds import AsOfOpt, DataOpt, JsonOpt, _as_of, _fail, _load, _short


def register(app: typer.Typer) -> None:
    app.command("channels")(channels)


def channels(
    team: Annotated[
        str | None, typer.Option("--team", help="Only the deals of this team's reps.")
    ] = None,
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per lead source and product line: lead share, win rate with a 95 % interval, cycle,
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
    for key, title in (("channels", "lead_source"), ("product_lines", "product_line")):
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
        console.print(t)
    for message in out["flagged"]:
        console.print(f"[yellow]![/yellow] {message}")
