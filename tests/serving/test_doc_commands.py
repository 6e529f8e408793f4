"""Every command of the README and docs/*.md, run on the demo state.

The commands are read from the documents themselves, so an edit there is tested here. The
``salespilot`` lines run through the CLI in a project laid out as a clone after the demo (the
small demo history and its trained models in ``.salespilot/``, no ``SALESPILOT_*`` folder set);
the ``curl`` lines go to the real app through its test client. Long runs get small data
(``generate`` at most 6 reps x 6 months, a 2-quarter backtest, training and features on a
small history). What is not run here
says why in ``NOT_HERE`` (a server, a database, the suite itself), and a test checks that
every line of the documents is one or the other.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_COMMAND = re.compile(
    r"^(\$ )?(\w+=\S+ )*(uv run (--extra dev )?)?(salespilot|curl|mlflow|python3?|bash|prefect|pytest|ruff)( |$)"
)

#: document lines not run here, and why (the README tour runs in tests/test_readme_tour.py)
NOT_HERE = {
    "python3 -m pip install -q uv && uv run salespilot demo": "serves until stopped; its "
    "steps are the demo tests' (tests/test_clean_failures.py, tests/serving)",
    "bash scripts/test-setup.sh && python3 -m pip install -q uv && uv run --extra dev pytest -n 2 "
    "--dist loadfile": ("the test suite itself"),
    "uv run --extra dev pytest -n 2 --dist loadfile": "the test suite itself",
    "uv run --extra dev ruff check . && uv run --extra dev ruff format --check .": "lint, CI",
    "uv run mlflow ui --backend-store-uri sqlite:///.salespilot/mlflow.db": "serves MLflow's "
    "UI until stopped (the store it reads is the tour's)",
    "uv run salespilot schedule": "serves until stopped; tests/flows/test_schedules.py starts "
    "a Prefect server and runs `schedule --register-only` against it",
    "SALESPILOT_PREFECT_API_URL=http://prefect:4200/api uv run salespilot schedule": (
        "an existing Prefect server: tests/flows/test_schedules.py"
    ),
    "uv run salespilot run build_features": "runs under a Prefect server (an ephemeral one "
    "takes most of a minute to start): tests/flows/test_flows.py runs the build_features flow "
    "under the suite's server",
    "uv run salespilot train all --data .salespilot/demo-data": "the tour runs `train all` on "
    "the same data (tests/test_readme_tour.py, with --json); the train commands below run here",
    "salespilot import --mapping my_crm.yaml --source postgresql://reader@crm-replica/crm "
    "--out data/history": "a PostgreSQL replica: tests/features/test_import_postgres.py",
    "salespilot import --mapping my_crm.yaml --source exports/ --out data/history": (
        "the user's own export: tests/features/test_mapping_import.py imports mapped exports"
    ),
}
_BENCH = "benchmarks run by hand (bench/, never in tests)"
_MAVEN = "the public Maven CRM export: tests/features/test_mapping_maven.py runs it when present"


def _not_here(line: str) -> str | None:
    if line in NOT_HERE:
        return NOT_HERE[line]
    if re.match(r"^uv run python bench/", line):
        return _BENCH
    if ".salespilot/maven" in line or "examples/maven_crm" in line or "darcel-schlecht" in line:
        return _MAVEN
    return None


def doc_lines() -> list[tuple[str, str]]:
    """``(document, command line)`` of every fenced shell block, comments dropped."""
    out = []
    for doc in DOCS:
        for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", doc.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                if not _COMMAND.match(line):
                    continue
                words = shlex.split(line, comments=True)
                if words and words[0] == "$":
                    words = words[1:]
                out.append((doc.name, shlex.join(words) if "&&" not in words else _plain(line)))
    return out


def _plain(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _tour() -> set[str]:
    from tests.test_readme_tour import tour_commands

    return {shlex.join(["uv", "run", "salespilot", *c]) for c in tour_commands()}


def test_every_documented_command_is_run_here_or_says_where():
    tour, lines = _tour(), doc_lines()
    assert len(lines) > 40
    names = {line for _, line in lines}
    for key in NOT_HERE:
        assert key in names, f"NOT_HERE names a line no document has any more: {key}"
    for doc, line in lines:
        words = shlex.split(line)
        runnable = "salespilot" in words or words[0] == "curl"
        assert runnable or _not_here(line) or line in tour, (doc, line)


# -- running them ----------------------------------------------------------------------------

SMALL = {"generate": {"--reps": 6, "--months": 6}, "backtest-targets": {"--periods": 2}}


@pytest.fixture(scope="module")
def project(trained_state, demo_history_dir, tmp_path_factory):
    """A clone after the demo: ``.salespilot/`` with the demo history and a copy of the
    trained registry; the documents' data folders name the same history."""
    import pandas as pd

    from salespilot.features.demo import generate_history

    root = tmp_path_factory.mktemp("doc-project")
    (root / "pyproject.toml").write_text('[project]\nname = "my-salespilot"\n')
    state = root / ".salespilot"
    state.mkdir()
    db = Path(str(trained_state.mlflow_tracking_uri).removeprefix("sqlite:///"))
    shutil.copy(db, state / "mlflow.db")
    for name in (".salespilot/demo-data", "demo-data", "path/to/history", "data/history"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(demo_history_dir, root / name, ignore=shutil.ignore_patterns("truth"))
    # `--data DIR` for the training and feature commands: a small history (a quick run)
    generate_history(root / "DIR", reps=8, months=13, seed=3, end=pd.Timestamp("2026-06-30"))
    return root


def _argv(line: str, project: Path, created: dict) -> tuple[dict[str, str], list[str]]:
    # an optional part ``[--flag value|other]`` is run, with its first choice
    line = re.sub(r"\[([^\]]+)\]", lambda m: m.group(1).split("|")[0], line)
    words = shlex.split(line)
    env = {}
    while words and re.fullmatch(r"\w+=\S+", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    if words[:2] == ["uv", "run"]:
        words = words[2:]
    assert words[0] == "salespilot", line
    args = words[1:]
    if args[0] in ("train", "features") and "--data" in args:
        args[args.index("--data") + 1] = "DIR"  # the small history: a quick run
    for flag, most in SMALL.get(args[0], {}).items():
        if flag in args:
            k = args.index(flag) + 1
            args[k] = str(min(int(args[k]), most))
    if args[0] in ("generate", "features") and "--out" in args:
        k = args.index("--out") + 1
        args[k] = str(project / "out" / args[0] / str(len(created)))
        created[args[k]] = True
    if "tok_1a2b3c4d" in args:
        args[args.index("tok_1a2b3c4d")] = created["token_id"]
    return env, args


def test_every_documented_salespilot_command_runs_on_the_demo_state(project, monkeypatch):
    import os

    for var in [v for v in os.environ if v.startswith("SALESPILOT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("SALESPILOT_TARGETS_SIMULATIONS", "300")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(project)
    tour = _tour()
    created: dict = {}
    ran = []
    for doc, line in doc_lines():
        if _not_here(line) or line in tour or "salespilot" not in shlex.split(line):
            continue
        env, args = _argv(line, project, created)
        get_settings.cache_clear()
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, (doc, line, r.output[-2000:])
        assert "Traceback" not in r.output, (doc, line, r.output[-2000:])
        if args[:2] == ["tokens", "create"]:
            created["token_id"] = re.search(r"\btok_\w+", r.output).group(0)
        ran.append(args[0])
    get_settings.cache_clear()
    assert {"tokens", "generate", "features", "validate", "train", "targets", "health"} <= set(ran)


def test_every_documented_request_answers_200(client, state, people):
    """docs/api.md's curl lines, with its shell variables filled as it says to fill them."""
    first = state.rep_items["R00017"][0]
    values = {
        "$TOKEN": people.tokens["admin"],
        "$ADMIN": people.tokens["admin"],
        "$DEAL": first.entity_id,
        "$CONTACT": next(
            i.best_time.contact_id for i in state.rep_items["R00017"] if i.best_time is not None
        ),
    }
    requests = 0
    for doc, line in doc_lines():
        words = shlex.split(line)
        if words[0] != "curl":
            continue
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        url = next(w for w in words if w.startswith("http"))
        header = words[words.index("-H") + 1]
        for k, v in values.items():
            url, header = url.replace(k, v), header.replace(k, v)
        name, _, value = header.partition(": ")
        path = url.split("8000", 1)[1]
        r = client.request(method, path, headers={name: value})
        assert r.status_code == 200, (doc, line, r.status_code, r.text[:300])
        json.loads(r.text)
        requests += 1
    assert requests >= 6
