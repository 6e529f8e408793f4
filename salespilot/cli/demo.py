"""The one-command demo (`salespilot demo`): every step of the product on a generated history,
then the API; what it prints is CLI presentation, the work is the flows' own."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from salespilot.atomic import write_json
from salespilot.settings import Settings
from salespilot.tables import print_table

console = Console(highlight=False)


def _step(n: int, total: int, text: str) -> None:
    console.print(f"\n[bold cyan][{n}/{total}][/bold cyan] [bold]{text}[/bold]")


def ensure_history(settings: Settings, *, reps: int, months: int, seed: int) -> Path:
    """Generate the demo history once; a second run finds it and reuses it."""
    from salespilot.features.demo import generate_history

    data_dir = Path(settings.data_dir)
    if (data_dir / "opportunities.csv").exists() or (data_dir / "opportunities.parquet").exists():
        console.print(f"  reusing the demo history in {data_dir}")
        return data_dir
    started = time.perf_counter()
    summary = generate_history(data_dir, reps=reps, months=months, seed=seed)
    rows = summary.get("rows", summary)
    console.print(
        f"  generated {reps} reps x {months} months in {time.perf_counter() - started:.1f} s "
        f"into {data_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items() if isinstance(v, int) and "/" not in k)
    )
    return data_dir


def models_without_champion(settings: Settings) -> list[str]:
    from salespilot.models import SPECS
    from salespilot.training.promotion import current_champion

    return [name for name in SPECS if current_champion(settings, name) is None]


def demo_tokens(settings: Settings, state) -> dict[str, dict[str, str]]:
    """A rep, a manager and an admin token for the demo (kept in the state folder, dev only)."""
    from salespilot.serving.auth import TokenStore, demo_token_name

    path = settings.state_dir / "demo-tokens.json"
    if path.exists():
        return json.loads(path.read_text())
    store = TokenStore.for_state_dir(settings.state_dir)
    sizes = {rep: len(items) for rep, items in state.rep_items.items()}
    rep_id = max(sorted(sizes), key=lambda r: sizes[r])
    team = state.rep_team(rep_id)
    tokens = {}
    for role, kw in (
        ("rep", {"rep_id": rep_id}),
        ("manager", {"team": team}),
        ("admin", {}),
    ):
        secret, _record = store.create(role=role, name=demo_token_name(role), **kw)
        tokens[role] = {"token": secret, "scope": str(kw.get("rep_id") or kw.get("team") or "all")}
    write_json(path, tokens, indent=2)
    return tokens


MODEL_TABLE_COLUMNS = (
    "model",
    "version, verdict",
    "test ROC AUC",
    "logistic regression",
    "no-model rule",
)


def model_table(results: dict[str, dict]) -> Table:
    """The demo's summary of ``train_models``' results, compact enough for 80 columns."""
    table = Table(*MODEL_TABLE_COLUMNS, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    failures = []
    for (name, res), row in zip(results.items(), model_table_rows(results), strict=True):
        if "error" in res:
            # a sentence in a narrow column would be a word per line: it goes under the table
            failures.append(f"{name} failed: {res['error']}")
            row = (name, "-", "failed", "", "")
        table.add_row(*row)
    if failures:
        table.caption = "\n".join(failures)
        table.caption_justify = "left"
    return table


def model_table_rows(results: dict[str, dict]) -> list[tuple[str, ...]]:
    """One row per trained model: its version, alias and readiness verdict, test ROC AUC of
    the model, its logistic regression and its named no-model rule (from ``train_models``'
    results)."""
    from salespilot.models import SPECS

    rows = []
    for name, res in results.items():
        if "error" in res:
            rows.append((name, "-", res["error"], "", ""))
            continue
        rule = SPECS[name].baseline_rule.name
        auc = {
            k: f"{v.get('roc_auc', float('nan')):.3f}"
            for k, v in {"model": res["metrics"], **res.get("baselines", {})}.items()
        }
        verdict = ((res.get("readiness") or {}).get("verdict") or "").replace("_", " ")
        alias = "champion" if res.get("champion") else "challenger"
        rows.append(
            (
                name,
                f"{res.get('version')} {alias}" + (f", {verdict}" if verdict else ""),
                auc["model"],
                auc.get("logistic_regression", "-"),
                f"{auc.get(rule, '-')} ({rule})",
            )
        )
    return rows


def run_demo(*, port: int, reps: int, months: int, seed: int, serve: bool = True) -> None:
    from salespilot.features.loader import load_history, summarize_history
    from salespilot.flows.features_flow import build_features
    from salespilot.flows.morning import morning_lists
    from salespilot.flows.training_flow import train_models

    settings = Settings()
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    total = 6 if serve else 5
    t0 = time.perf_counter()

    _step(1, total, "Demo CRM history")
    data_dir = ensure_history(settings, reps=reps, months=months, seed=seed)

    _step(2, total, "Validate it")
    history = load_history(data_dir)
    summary = summarize_history(history)
    deals = summary["deals"]
    console.print(
        f"  valid: {summary['reps_active']} active reps, {summary['accounts']:,} accounts, "
        f"{deals['open']:,} open / {deals['won']:,} won / {deals['lost']:,} lost deals, "
        f"{summary['active_subscriptions']:,} active subscriptions "
        f"({summary['date_range']['start'][:10]} to {summary['date_range']['end'][:10]})"
    )

    _step(3, total, "Point-in-time features (Prefect flow build_features)")
    with console.status("  building feature snapshots ..."):
        built = build_features(data_dir=str(data_dir))
    for table, info in built["tables"].items():
        console.print(f"  {table}: {info.get('rows', info)!s} rows")

    _step(4, total, "Models (Prefect flow train_models, tracked in MLflow)")
    todo = models_without_champion(settings)
    if todo:
        with console.status(f"  training {', '.join(todo)} ..."):
            results = train_models(models=todo, data_dir=str(data_dir))
        print_table(console, model_table(results))
    else:
        console.print("  every model has a champion already; reusing them")

    _step(5, total, "Morning lists (Prefect flow morning_lists)")
    with console.status("  ranking every rep's list ..."):
        lists = morning_lists()
    console.print(
        f"  {lists['lists']} lists as of {lists['as_of']} in {settings.state_dir / 'lists'}"
    )

    from salespilot.serving.state import build_state

    state = build_state(settings, history=history, persist_scores=False)
    tokens = demo_tokens(settings, state)
    console.print(f"\nReady in {time.perf_counter() - t0:.0f} s.")
    if not serve:
        return
    _step(
        6,
        total,
        f"API and pages on http://127.0.0.1:{port} (docs at /docs, pages at /app/login); Ctrl-C to stop",
    )
    _print_examples(port, tokens)
    import uvicorn

    from salespilot.serving.app import create_app

    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def _print_examples(port: int, tokens: dict[str, dict[str, str]]) -> None:
    base = f"http://127.0.0.1:{port}"
    rep, mgr, adm = tokens["rep"], tokens["manager"], tokens["admin"]
    console.print(f"  rep {rep['scope']} token:     {rep['token']}")
    console.print(f"  manager ({mgr['scope']}) token: {mgr['token']}")
    console.print(f"  admin token:        {adm['token']}")
    console.print(
        f"\n  Pages: sign in at {base}/app/login with one of these tokens (the rep sees their"
        " morning list, the manager the team's targets, the admin the models)"
    )
    nxt = pd.Timestamp.now().to_period("Q") + 1
    quarter = f"{nxt.year}-Q{nxt.quarter}"
    team = quote(mgr["scope"])
    console.print("\n  Try:")
    for line in (
        f'curl -H "Authorization: Bearer {rep["token"]}" "{base}/v1/reps/{rep["scope"]}/priorities?limit=5"',
        f'curl -H "Authorization: Bearer {mgr["token"]}" "{base}/v1/accounts/at-risk?limit=5"',
        f'curl -H "Authorization: Bearer {mgr["token"]}" "{base}/v1/teams/{team}/health"',
        f'curl -H "Authorization: Bearer {mgr["token"]}" -H "Content-Type: application/json" '
        f'-d \'{{"period": "{quarter}", "unit": "rep"}}\' {base}/v1/targets/recommendations',
        f'curl -H "Authorization: Bearer {adm["token"]}" {base}/v1/models',
    ):
        console.print(f"    {line}", soft_wrap=True)
