"""Targets commands: ``targets`` (forecast + base/stretch targets + activity plan),
``health`` (a team's process health) and ``backtest-targets`` (replay past quarters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from salespilot.tables import print_table

UNITS = ("rep", "team", "region", "product_line")


def register(app: typer.Typer) -> None:
    app.command("targets")(targets)
    app.command("health")(health)
    app.command("backtest-targets")(backtest_targets)


DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="History folder (default: SALESPILOT_DATA_DIR)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object and nothing else.")]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Use only data before this date (default: all).")
]


def _fail(message: str, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)


def _load(data: Path | None, as_json: bool) -> tuple[Any, Any]:
    from rich.console import Console

    from salespilot.features.loader import load_history
    from salespilot.features.validation import HistoryValidationError
    from salespilot.settings import get_settings

    settings = get_settings()
    folder = data or settings.data_dir
    if not Path(folder).exists():
        _fail(f"history folder {folder} does not exist (pass --data DIR)", as_json)
    try:
        with Console(stderr=True).status(f"loading {folder} ...") if not as_json else _null():
            history = load_history(folder, observed_until=settings.observed_until)
    except HistoryValidationError as exc:
        _fail(str(exc), as_json)
    return history, settings


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _as_of(value: str | None, as_json: bool):
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        _fail(f"--as-of {value!r} is not a date (use e.g. 2026-01-01)", as_json)


def _money(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _short(v: float | None) -> str:
    """Compact amounts for wide tables: 950, 12.3k, 4.56M."""
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def targets(
    period: Annotated[
        str, typer.Option("--period", help="A quarter (2026-Q1) or month (2026-03).")
    ],
    by: Annotated[str, typer.Option("--by", help="rep, team, region or product_line.")] = "team",
    company_target: Annotated[
        float | None,
        typer.Option("--company-target", help="Top-down number to allocate across units."),
    ] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="Only this team (its top-down number).")
    ] = None,
    base: Annotated[float | None, typer.Option("--base", help="Base quantile (0.5).")] = None,
    stretch: Annotated[float | None, typer.Option("--stretch", help="Stretch quantile.")] = None,
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a forecast fan chart PNG per unit here.")
    ] = None,
) -> None:
    """Forecast a period's bookings and recommend base and stretch targets per unit.

    Open pipeline (p_win from the champion model, else the history's win rate by stage and
    age) plus expected new business, simulated per rep x product line; with
    --company-target, the top-down number allocated in proportion to each unit's reach.
    """
    import dataclasses

    from salespilot.targets.periods import parse_period
    from salespilot.targets.service import (
        champion_scorer,
        configs_from_settings,
        recommend,
    )

    if by not in UNITS:
        _fail(f"--by {by!r} must be one of {', '.join(UNITS)}", as_json)
    try:
        p = parse_period(period)
    except ValueError as exc:
        _fail(str(exc), as_json)
    history, settings = _load(data, as_json)
    fc, tc, _ = configs_from_settings(settings)
    try:
        if base is not None or stretch is not None:
            tc = dataclasses.replace(
                tc,
                base_quantile=base if base is not None else tc.base_quantile,
                stretch_quantile=stretch if stretch is not None else tc.stretch_quantile,
            )
        rec = recommend(
            history,
            p,
            by=by,
            as_of=_as_of(as_of, as_json),
            top_down=company_target,
            team=team,
            scorer=champion_scorer(settings),
            forecast_config=fc,
            target_config=tc,
        )
    except (ValueError, LookupError) as exc:
        _fail(str(exc).strip("'\""), as_json)
    out = rec.to_dict()
    if plot is not None:
        out["plots"] = [str(x) for x in _plots(rec, history, by, plot)]
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    _print_targets(out)


def _plots(rec, history, by: str, folder: Path) -> list[Path]:
    """Per unit: the last four periods' bookings, then this period's forecast bands."""
    from salespilot.targets.backtest import booked
    from salespilot.targets.plots import fan_chart

    period = rec.forecast.period
    past = [period.shift(-k) for k in range(4, 0, -1)]
    labels, draws = rec.forecast.unit_draws(by)
    actuals = [booked(history, q, by=by) for q in past]
    paths = []
    for i, unit in enumerate(labels):
        actual = [float(b.get(unit, 0.0)) for b in actuals]
        row = rec.plan.units.iloc[i]
        targets = {"base": [None] * 4 + [float(row["base"])]}
        if "allocated" in row:
            targets["allocated"] = [None] * 4 + [float(row["allocated"])]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in unit)
        paths.append(
            fan_chart(
                folder / f"{by}-{safe}.png",
                title=f"{by} {unit}: bookings and the {period} forecast",
                labels=[q.label for q in past] + [period.label],
                draws=[None] * 4 + [draws[:, i]],
                actual=[*actual, None],
                targets=targets,
            )
        )
    return paths


def _print_targets(out: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(
        title=f"{out['period']} targets by {out['by']} "
        f"(base P{round(out['base_quantile'] * 100)}, stretch P{round(out['stretch_quantile'] * 100)};"
        f" p_win: {out['p_win_source']})",
        caption="pipe: expected from open deals; new: from deals not created yet; "
        "P(≥): chance to reach the allocated number",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    has_alloc = out["total"].get("top_down") is not None
    cols = ["unit", "P10", "P50", "P90", "pipe", "new", "base", "stretch"]
    if has_alloc:
        cols += ["alloc", "P(≥)"]
    if out["by"] == "rep":
        cols += ["ramp", "lead/wk", "demo/mo"]
    for c in cols:
        t.add_column(c, justify="left" if c == "unit" else "right")
    for u in out["units"]:
        name = u["unit"]
        row = [name] + [
            _short(u[k]) for k in ("p10", "p50", "p90", "pipeline_mean", "new_business_mean")
        ]
        row += [_short(u["base"]), _short(u["stretch"])]
        if has_alloc:
            row += [_short(u["allocated"]), f"{u['p_reach_allocated']:.0%}"]
        if out["by"] == "rep":
            plan = u.get("activity_plan", {})
            row += [
                f"{u['ramp']:.2f}",
                f"{plan.get('leads_per_week', 0):.1f}",
                f"{plan.get('demos_per_month', 0):.1f}",
            ]
        t.add_row(*row)
    print_table(console, t)
    tot = out["total"]
    console.print(
        f"total: P10 {_money(tot['p10'])}  P50 {_money(tot['p50'])}  P90 {_money(tot['p90'])}"
        f"  mean {_money(tot['mean'])}  (sum of unit bases {_money(tot['sum_of_unit_base'])})"
    )
    if has_alloc:
        console.print(
            f"top-down {_money(tot['top_down'])}: the pipeline supports {_money(tot['supported'])}"
            f" (base); gap {_money(tot['gap'])}; chance to reach it {tot['p_reach_top_down']:.0%}"
        )
    for n in out.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {n}")
    for p in out.get("plots", []):
        console.print(f"plot: {p}")


def health(
    team: Annotated[str, typer.Argument(help="Team name, as in reps.team.")],
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Process health of a team per rep and week, with the "below 70 % of plan" alerts."""
    from salespilot.targets.service import (
        champion_scorer,
        configs_from_settings,
        team_health,
    )

    history, settings = _load(data, as_json)
    fc, tc, th = configs_from_settings(settings)
    try:
        report = team_health(
            history,
            team,
            as_of=_as_of(as_of, as_json),
            thresholds=th,
            forecast_config=fc,
            target_config=tc,
            scorer=champion_scorer(settings),
        )
    except LookupError as exc:
        _fail(str(exc).strip("'\""), as_json)
    out = report.to_dict()
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    _print_health(out)


_STYLE = {"healthy": "green", "watch": "yellow", "warning": "red", None: "dim"}


def _print_health(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    latest = out["weeks"][-1] if out["weeks"] else None
    t = Table(
        title=f"{out['team']}: process health, week of {latest} (as of {out['as_of'][:10]})",
        caption="latest judged week per metric; ! = a warning or a plan alert",
    )
    for c in ("rep", "leads", "plan/wk", "lead->meeting", "days in stage", "reply h", "flag"):
        t.add_column(c, justify="left" if c == "rep" else "right")

    def cell(row: dict, metric: str, fmt: str) -> str:
        v, s = row.get(metric), row.get(f"{metric}_status")
        if v is None:
            return "[dim]-[/dim]"
        return f"[{_STYLE[s]}]{format(v, fmt)}[/{_STYLE[s]}]"

    flagged = set(out["flagged_reps"])
    by_rep: dict[str, list[dict]] = {}
    for row in out["reps"]:
        by_rep.setdefault(row["rep_id"], []).append(row)
    for rep_id, rows in by_rep.items():
        rows = sorted(rows, key=lambda r: r["week_start"])

        def last(metric: str, rows=rows) -> dict:
            # The latest week where the metric is known (conversion waits for its window).
            known = [r for r in rows if r.get(metric) is not None]
            return known[-1] if known else {}

        now = rows[-1]
        plan = now.get("plan_leads_per_week")
        t.add_row(
            f"{rep_id} {now['name']}",
            str(now["leads"]),
            "-" if plan is None else f"{plan:.1f}",
            cell(last("lead_to_meeting"), "lead_to_meeting", ".0%"),
            cell(last("avg_days_in_stage"), "avg_days_in_stage", ".1f"),
            cell(last("response_hours"), "response_hours", ".0f"),
            "[red]![/red]" if rep_id in flagged else "",
        )
    print_table(console, t)
    w = Table(title="team by week")
    for c in ("week", "leads", "lead->meeting", "days in stage", "reply h"):
        w.add_column(c, justify="right")
    for row in out["team_weeks"]:
        w.add_row(
            row["week_start"],
            str(row["leads"]),
            cell(row, "lead_to_meeting", ".0%"),
            cell(row, "avg_days_in_stage", ".1f"),
            cell(row, "response_hours", ".0f"),
        )
    print_table(console, w)
    for a in out["alerts"]:
        console.print(f"[red]alert[/red] {a['rep_id']}: {a['message']}")
        for i, item in enumerate(a["look_first"], 1):
            console.print(f"   {i}. {item['message']}")
    if not out["alerts"]:
        console.print("[green]no plan alerts[/green]")


def backtest_targets(
    data: DataOpt = None,
    periods: Annotated[int, typer.Option("--periods", min=1, help="Quarters to replay.")] = 4,
    as_json: JsonOpt = False,
    no_mlflow: Annotated[
        bool, typer.Option("--no-mlflow", help="Do not log the run to MLflow.")
    ] = False,
    p_win: Annotated[
        str,
        typer.Option(
            "--p-win",
            help="model: a LightGBM win model refit on the data before each quarter; "
            "empirical: the history's win rate by stage and age (fast).",
        ),
    ] = "model",
) -> None:
    """Replay past quarters: targets from data before each vs what each rep booked.

    Side by side with "last year + 20 %" and an even split of the same total; logged to the
    MLflow experiment ``targets_backtest`` with a fan chart per team.
    """
    from rich.console import Console
    from rich.progress import Progress

    from salespilot.targets.service import backtest, log_backtest

    if p_win not in ("model", "empirical"):
        _fail(f"--p-win {p_win!r} must be 'model' or 'empirical'", as_json)
    history, settings = _load(data, as_json)
    with Progress(console=Console(stderr=True), disable=as_json, transient=True) as bar:
        task = bar.add_task("replaying quarters", total=periods)

        def tick(label: str) -> None:
            bar.update(task, description=f"replaying {label}", advance=0)

        try:
            result = backtest(
                history,
                settings,
                periods=periods,
                p_win=p_win,
                progress=lambda label: (tick(label), bar.advance(task)),
            )
        except ValueError as exc:
            _fail(str(exc), as_json)
    out = result.to_dict()
    if not no_mlflow:
        out["mlflow_run_id"] = log_backtest(result, history, settings)
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    console = Console()
    from rich.table import Table

    t = Table(
        title=f"targets backtest: {', '.join(out['periods'])} ({out['rep_periods']} rep-quarters)"
    )
    for c in ("method", "coverage", "mape", "attainment spread", "wape"):
        t.add_column(c, justify="left" if c == "method" else "right")
    for m in ("salespilot", "last_year_plus_20", "even_split"):
        r = out[m]
        t.add_row(m, f"{r['coverage']:.1%}", f"{r['mape']:.3f}", f"{r['attainment_spread']:.3f}",
                  f"{r['wape']:.3f}")  # fmt: skip
    print_table(console, t)
    console.print(
        f"p_win: {out['p_win_source']}. "
        f"coverage: share of reps reaching the base (aim {settings.targets_base_quantile:.0%}); mape: error of"
        " target vs booked; spread: IQR of booked/target across reps"
    )
    if "mlflow_run_id" in out:
        console.print(f"MLflow run {out['mlflow_run_id']} in experiment targets_backtest")
