"""Metadata commands: ``compare``, ``promote``, ``rollback``, ``tokens`` and ``--help``, each timed
as a whole process, as a user types them.

    uv run python bench/metadata.py [--reps 10] [--months 12] [--runs 5]

Trains the win model twice on a small demo history (outside the timings) so that the registry
holds two versions, then runs each command ``--runs`` times in turns and prints the median and
the range of its wall time. ``promote`` and ``rollback`` alternate, so each run moves the alias.
``--mlflow`` also times the registry commands with the sqlite3 path turned off in the process
(``registry_db.KNOWN_REVISIONS`` emptied), that is through MLflow's client, as any store other
than a SQLite file of a known schema goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_history import add_arguments, demo_history


def _state(args: argparse.Namespace) -> Path:
    from salespilot.models import SPECS
    from salespilot.settings import Settings
    from salespilot.training import train_model

    _, history = demo_history(args)
    state = Path(tempfile.mkdtemp(prefix="sp-bench-metadata-"))
    settings = Settings(state_dir=state)
    spec = SPECS["win_probability"]
    for params in ({}, {"min_child_samples": 40}):
        train_model(spec.with_params(**params), history, settings, figures=False)
    return state


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    ap.set_defaults(reps=10, months=12)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mlflow", action="store_true", help="also through MLflow's client")
    args = ap.parse_args()

    state = _state(args)
    exe = str(Path(sys.executable).with_name("salespilot"))
    env = os.environ | {"SALESPILOT_STATE_DIR": str(state)}
    commands = {
        "--help": [exe, "--help"],
        "compare": [exe, "compare", "win_probability"],
        "compare --json": [exe, "compare", "win_probability", "--json"],
        "promote": [exe, "promote", "win_probability", "2"],
        "rollback": [exe, "rollback", "win_probability"],
        "tokens list": [exe, "tokens", "list"],
    }
    if args.mlflow:
        through_mlflow = (
            "import sys; from salespilot.training import registry_db; "
            "registry_db.KNOWN_REVISIONS = frozenset(); from salespilot.cli import main; "
            "sys.argv = ['salespilot', *sys.argv[1:]]; sys.exit(main())"
        )
        for name in ("compare", "promote", "rollback"):
            commands[f"{name} (MLflow)"] = [
                sys.executable,
                "-c",
                through_mlflow,
                *commands[name][1:],
            ]
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for name, cmd in commands.items():  # warm-up: the file cache, the registry's first read
        _time(cmd, env)
        walls[name] = []
    for _ in range(args.runs):
        for name, cmd in commands.items():
            walls[name].append(_time(cmd, env))
    print(f"{args.runs} runs each, in turns; state {state}; load {os.getloadavg()[0]:.1f}")
    print(f"{'command':<18} {'median s':>9} {'min':>6} {'max':>6}")
    for name, values in walls.items():
        print(f"{name:<18} {statistics.median(values):9.2f} {min(values):6.2f} {max(values):6.2f}")
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
