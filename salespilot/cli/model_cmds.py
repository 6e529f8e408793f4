"""``salespilot train | compare | promote | rollback``: the data scientist's daily loop.

Heavy libraries (MLflow, LightGBM, SHAP) load inside the commands, never at import time.
With ``--json`` exactly one JSON object goes to stdout; progress and library chatter go to
stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from salespilot.tables import print_table

err = Console(stderr=True)
out = Console()

MODEL_HELP = "win_probability, churn_risk, contact_time, or all"


def _items(values: list[str] | None) -> list[str]:
    """A repeatable option's items: ``--x a --x b`` or several in one (``"a b"`` / ``"a,b"``)."""
    return [item for raw in values or [] for item in raw.replace(",", " ").split()]


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["num_leaves=7", "learning_rate=0.1"]`` -> typed dict (JSON values, else strings)."""
    params: dict[str, Any] = {}
    for pair in _items(pairs):
        if "=" not in pair:
            raise typer.BadParameter(f"--params expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _known_model(model: str, *also: str) -> None:
    """A mistyped model name answers at once with the closest names, before MLflow loads."""
    from salespilot.features.names import unknown_name
    from salespilot.models import SPECS

    if model not in (*SPECS, *also):
        _fail(unknown_name("model", model, [*SPECS, *also]))


def _quiet_libraries() -> None:
    # MLflow configures its own loggers when first imported: tell it through its variable
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", message=".*type hints.*")
    for name in ("mlflow", "alembic", "lightgbm", "shap", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def train(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "all",
    data: Annotated[
        Path | None, typer.Option("--data", help="History folder (default: settings.data_dir).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object keyed by model.")
    ] = False,
    params: Annotated[
        list[str] | None,
        typer.Option("--params", help="LightGBM parameter override key=value (repeatable)."),
    ] = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(
            "--horizon-days",
            min=1,
            help="Label horizon in days: 'won/churned within N days' (default: the "
            "horizon_days setting, else the model's own: 60 win, 90 churn). With `all` it applies "
            "to every model with a horizon (win_probability, churn_risk); contact_time has none.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Leave this feature out, by the name the warnings give it (repeatable), e.g. a "
            "field filled in after the outcome: --exclude custom_lead_type.",
        ),
    ] = None,
) -> None:
    """Train, evaluate, log to MLflow and register models; promote a version only if it wins."""
    from salespilot.models import SPECS
    from salespilot.settings import get_settings

    _quiet_libraries()
    settings = get_settings()
    names = list(SPECS) if model == "all" else [model]
    _known_model(model, "all")
    if horizon_days is not None and model != "all" and not SPECS[model].horizon_applies:
        _fail(f"{model} has no label horizon (its label is the attempt's own outcome)")
    overrides = parse_params(params)
    excluded = tuple(_items(exclude))
    if excluded and model == "all":
        _fail("--exclude names one model's features: name the model (train win_probability ...)")
    from salespilot.training.fit import UnknownParamsError, check_lightgbm_params

    try:
        check_lightgbm_params(overrides)
    except UnknownParamsError as exc:
        _fail(str(exc))
    data_dir = Path(data or settings.data_dir)
    if not data_dir.exists():
        _fail(
            f"history folder {data_dir} does not exist (generate one with `salespilot demo` or pass --data)"
        )

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from salespilot.training.runs import failure_report, train_named

    results: dict[str, Any] = {}
    failed = False
    with (
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
        ) as bar,
        contextlib.redirect_stdout(sys.stderr),  # MLflow prints registration notices
    ):
        task = bar.add_task(f"loading history from {data_dir}", total=len(names))
        try:
            from salespilot.features.loader import load_history

            history = load_history(data_dir, observed_until=settings.observed_until)
        except Exception as exc:  # the loader's message names file/column/rule
            bar.stop()
            _fail(str(exc))
        for name in names:
            bar.update(task, description=f"{name}: starting")
            try:  # the train_models flow's own path: same reuse of stored features, same reports
                result = train_named(
                    name,
                    history,
                    settings,
                    params=overrides,
                    horizon_days=horizon_days,
                    exclude_features=excluded,
                    features_dir=settings.features_dir,
                    progress=lambda msg: bar.update(task, description=msg),
                )
            except Exception as exc:
                results[name] = failure_report(exc)
                if "skipped" in results[name]:
                    err.print(f"[yellow]{escape(results[name]['skipped'])}[/]")
                else:
                    failed = True
                    err.print(f"[bold red]{name}:[/] {escape(results[name]['error'])}")
            else:
                results[name] = result.to_json()
                for w in result.evaluation.warnings:
                    err.print(f"[yellow]warning:[/] {w}")
            bar.advance(task)
        bar.update(task, description="done")

    if as_json:
        sys.stdout.write(json.dumps(_clean(results), allow_nan=False) + "\n")
    else:
        _print_train_table(results)
    if failed:
        raise typer.Exit(1)


def _print_train_table(results: dict[str, Any]) -> None:
    for name, r in results.items():
        if "metrics" not in r:
            continue
        horizon = f", {r['horizon_days']}-day horizon" if r.get("horizon_days") else ""
        table = Table(
            title=f"{name} v{r['version']} - {'champion' if r['champion'] else 'challenger'}"
            + horizon
        )
        cols = {"model": r["metrics"], **r["baselines"]}
        if r.get("oracle"):
            cols["oracle"] = r["oracle"]
        table.add_column("metric")
        for c in cols:
            table.add_column(c, justify="right")
        for metric in r["metrics"]:
            table.add_row(metric, *(_fmt(v.get(metric)) for v in cols.values()))
        print_table(out, table)
        for why in (r.get("baselines_left_out") or {}).values():
            out.print(f"  {why}")
        if r.get("excluded_features"):
            out.print(f"  features excluded (--exclude): {', '.join(r['excluded_features'])}")
        for line in _row_lines(r.get("row_accounting")):
            out.print(f"  {line}")
        ready = r.get("readiness") or {}
        if ready:
            out.print(f"  readiness: {ready['verdict']} - " + "; ".join(ready["reasons"]))
            if ready.get("won_vs_lost"):
                out.print(f"  won vs lost (test deals that closed): {_won_vs_lost(ready)}")
            if ready.get("help"):
                out.print(f"  what would help: {ready['help']}")
        out.print(f"  {r['reason']}")


def _row_lines(account: dict[str, Any] | None) -> list[str]:
    """The run's row account in three short lines (see salespilot/training/accounting.py)."""
    if not account:
        return []
    noun = account["entity"].removesuffix("_id").replace("_", " ")
    total = account["candidates"]
    used = ", ".join(f"{k} {v['rows']:,}" for k, v in account["used"].items())
    left = ", ".join(
        f"{k.replace('_', ' ')} {v['rows']:,}" for k, v in account["left_out"].items() if v["rows"]
    )
    return [
        f"rows: {total['rows']:,} candidates ({total['entities']:,} {_plural(noun)})",
        f"used: {used}",
        f"left out: {left or 'none'}",
    ]


def _won_vs_lost(readiness: dict[str, Any] | None) -> str:
    """``model 0.510 (0.496-0.525), deal age 0.507`` from a readiness's ``won_vs_lost``."""
    w = (readiness or {}).get("won_vs_lost")
    if not w:
        return "-"
    if w.get("auc") is None:
        return f"{w['won']} won, {w['lost']} lost: not judged"
    text = f"model {w['auc']:.3f}"
    if w.get("interval"):
        text += f" ({w['interval'][0]:.3f}-{w['interval'][1]:.3f})"
    if w.get("age_baseline_auc") is not None:
        text += f", deal age {w['age_baseline_auc']:.3f}"
    return text + f" on {w['won']} won, {w['lost']} lost rows"


def _horizon(model: str, days: str | None) -> str:
    """A version's label horizon as the compare table shows it ("-": the model has none)."""
    from salespilot.models import SPECS

    if not days or not SPECS[model].horizon_applies:
        return "-"
    return f"{float(days):g} days"


def compare(
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every registered version side by side: test metrics, data hash, alias, date."""
    from salespilot.settings import get_settings
    from salespilot.training import RegistryError
    from salespilot.training import compare as _compare

    _known_model(model)
    _quiet_libraries()
    try:
        versions = _compare(model, settings=get_settings())
    except RegistryError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(
            json.dumps(_clean({"model": model, "versions": versions}), allow_nan=False) + "\n"
        )
        return
    from salespilot.training.evaluate import METRIC_NAMES

    # the table shows every test metric but the capture (the lift says the same, scaled)
    metric_names = [m for m in METRIC_NAMES if m != "top_decile_capture"]
    table = Table(title=f"{model}: registered versions")
    won_lost = any((v.get("readiness") or {}).get("won_vs_lost") for v in versions)
    extra_cols = ("won vs lost",) if won_lost else ()
    cols = (
        "version", "alias", "created", "data", "horizon", *metric_names, "readiness", *extra_cols
    )  # fmt: skip
    for col in (*cols, "reason"):
        table.add_column(col)
    for v in versions:
        table.add_row(
            v["version"],
            ", ".join(v["aliases"]) or "-",
            v["created_at"][:16],
            v["history_hash"] or "-",
            _horizon(model, v.get("horizon_days")),
            *(_fmt(v["metrics"].get(m)) for m in metric_names),
            (v.get("readiness") or {}).get("verdict", "-"),
            *((_won_vs_lost(v.get("readiness")),) if won_lost else ()),
            v["reason"] or "",
        )
    print_table(out, table)


def promote(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
) -> None:
    """Make VERSION the champion by hand (the previous one is remembered for rollback)."""
    from salespilot.settings import get_settings
    from salespilot.training import RegistryError
    from salespilot.training import promote as _promote

    _known_model(model)
    _quiet_libraries()
    try:
        _promote(model, version, settings=get_settings())
    except RegistryError as exc:
        _fail(str(exc))
    out.print(f"{model}: v{version} is now the champion")


def rollback(model: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Make the previous champion the champion again."""
    from salespilot.settings import get_settings
    from salespilot.training import RegistryError
    from salespilot.training import rollback as _rollback

    _known_model(model)
    _quiet_libraries()
    try:
        version = _rollback(model, settings=get_settings())
    except RegistryError as exc:
        _fail(str(exc))
    out.print(f"{model}: rolled back, v{version} is the champion again")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("compare")(compare)
    app.command("promote")(promote)
    app.command("rollback")(rollback)


def _plural(noun: str) -> str:
    """opportunity -> opportunities, account -> accounts."""
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
