"""Serving benchmark: GET /v1/reps/{rep}/priorities?limit=50 on a real uvicorn server, against a
bare FastAPI route returning the same bytes.

    uv run python bench/serving.py [--port 0] [--duration 5] [--rounds 2] [--workdir DIR]
    uv run python bench/serving.py --ready-only --reps 100 --months 24 [--state-dir DIR]

Generates a demo history, trains the three models into a fresh MLflow store (kept in
``--workdir`` for the next run), gives one rep 300 open deals and 200 customer accounts, starts
``uvicorn`` (one worker) for the service on ``--port`` (0: a free port the OS picks) and times it
to ``/ready``; then starts a bare FastAPI app (the same web stack, one route returning the
service's body) and times it to ready too. The load runs in a separate process: ``wrk`` when it
is installed (``apt-get install wrk``), else a Python load process with httpx threads (which
understates the server). For 1 and 8 clients, service and bare route take turns (``--rounds``
each) and the service / bare ratios of p50, p99 and requests per second are printed. Beside it:
the bare LightGBM prediction + contributions for the same rows, what scoring per request would
cost. It shares the machine's cores: quote the ratios, and run it on an idle machine.

``--ready-only`` times starts alone: the service on a state folder the flows left (``--state-dir``;
without data there it runs ``salespilot demo --no-serve --reps R --months M``: features,
training, morning lists), a bare FastAPI app, and a bare app that imports the data stack
(pandas, pyarrow, LightGBM) first; ``--ready-runs`` starts of each, interleaved, medians and
the service / bare ratios printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

END = pd.Timestamp("2026-06-30")
DEALS, ACCOUNTS = 300, 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_rep_history(src: Path, dst: Path) -> tuple[str, pd.Timestamp]:
    """Copy the history, handing 300 open deals and 200 subscribed accounts to one rep."""
    from salespilot.features.loader import load_history
    from salespilot.features.pit import observed_end

    h = load_history(src, now=END + pd.Timedelta(days=1))
    as_of = observed_end(h) + pd.Timedelta(seconds=1)
    o = h.opportunities
    open_ids = o.loc[(o["status"] == "open"), "opportunity_id"]
    rep = o.loc[o["status"] == "open", "owner_rep_id"].value_counts().index[0]
    if len(open_ids) < DEALS:
        raise SystemExit(f"only {len(open_ids)} open deals; generate more reps")
    o.loc[o["opportunity_id"].isin(open_ids.iloc[:DEALS]), "owner_rep_id"] = rep
    s = h.subscriptions
    active = s[(s["started_at"] < as_of) & (s["ended_at"].isna() | (s["ended_at"] >= as_of))]
    accs = active["account_id"].drop_duplicates().iloc[:ACCOUNTS]
    h.accounts.loc[h.accounts["account_id"].isin(accs), "owner_rep_id"] = rep
    dst.mkdir(parents=True, exist_ok=True)
    for name in h.present_tables:
        h.table(name).to_parquet(dst / f"{name}.parquet", index=False)
    return rep, as_of


def _train(data: Path, settings) -> None:
    from salespilot.features.loader import load_history
    from salespilot.models import churn_risk, contact_time, win_probability
    from salespilot.training import train_model

    h = load_history(data, now=END + pd.Timedelta(days=1))
    for spec in (win_probability.SPEC, churn_risk.SPEC, contact_time.SPEC):
        t = time.perf_counter()
        train_model(spec, h, settings, figures=False)
        print(f"  trained {spec.name} in {time.perf_counter() - t:.1f}s", flush=True)


def _bare(settings, data: Path, rep: str, as_of: pd.Timestamp, repeat: int = 30) -> float:
    """Median seconds of predict_proba + contributions on the rep's deals and accounts (what a
    service scoring per request would pay), and of the bare boosters on prepared matrices."""
    from salespilot.features.accounts import account_snapshot
    from salespilot.features.deals import deal_snapshot
    from salespilot.features.loader import load_history
    from salespilot.training import load_model

    h = load_history(data, now=END + pd.Timedelta(days=1))
    deals = deal_snapshot(h, as_of)
    deals = deals[deals["owner_rep_id"] == rep]
    accs = account_snapshot(h, as_of)
    accs = accs[accs["owner_rep_id"] == rep]
    win, churn = (
        load_model("win_probability", settings=settings),
        load_model("churn_risk", settings=settings),
    )
    times, booster_times = [], []
    xd, xa = win.model.prepare(deals), churn.model.prepare(accs)
    for _ in range(repeat):
        t = time.perf_counter()
        win.predict_proba(deals), win.contributions(deals)
        churn.predict_proba(accs), churn.contributions(accs)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        for b, x in ((win.model.booster, xd), (churn.model.booster, xa)):
            b.predict(x, raw_score=True), b.predict(x, pred_contrib=True)
        booster_times.append(time.perf_counter() - t)
    print(f"  bare rows: {len(deals)} deals, {len(accs)} accounts")
    print(
        f"  booster.predict + pred_contrib on prepared matrices: {statistics.median(booster_times) * 1000:.2f} ms"
    )
    return statistics.median(times)


def _httpx_load(url: str, headers: dict, clients: int, duration: float) -> dict:
    """The fallback load (run in its own process): ``clients`` httpx threads for ``duration``."""
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def worker() -> None:
        nonlocal errors
        with httpx.Client(headers=headers, timeout=30) as c:
            c.get(url)  # connect + warm
            mine, bad = [], 0
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = c.get(url)
                mine.append(time.perf_counter() - t)
                bad += r.status_code != 200
            with lock:
                lat.extend(mine)
                errors += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    return dict(
        requests=len(a),
        errors=errors,
        rps=len(a) / wall,
        p50=float(np.percentile(a, 50)),
        p99=float(np.percentile(a, 99)),
    )


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _WRK_UNITS[m.group(2)]


def _load(url: str, headers: dict, clients: int, duration: float) -> dict:
    """Load ``url`` from a separate process: wrk when installed, else the httpx fallback."""
    wrk = shutil.which("wrk")
    if wrk:
        cmd = [wrk, "-t1", f"-c{clients}", f"-d{duration:g}s", "--latency", url]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)$", out, re.M))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return dict(
            requests=int(re.search(r"(\d+) requests in", out).group(1)),
            errors=int(bad.group(1)) if bad else 0,
            rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            p50=_wrk_ms(pct["50"]),
            p99=_wrk_ms(pct["99"]),
        )
    cmd = [sys.executable, __file__, "--load-url", url, "--clients", str(clients)]
    cmd += ["--duration", str(duration), "--headers", json.dumps(headers)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def bare_app():
    """The floor: the same web stack, one route returning the service's body as bytes."""
    from fastapi import FastAPI, Response

    body = Path(os.environ["SALESPILOT_BENCH_BODY"]).read_bytes()
    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict:
        return {"ready": True}

    @app.get("/list")
    async def list_() -> Response:
        return Response(content=body, media_type="application/json")

    return app


def bare_data_app():
    """The bare app, importing the data stack the service reads its state with (pandas,
    pyarrow, LightGBM's booster) before its one route: what no start can go below."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from salespilot.training.lightgbm_import import booster_only

    booster_only()
    return bare_app()


def _ready_only(args: argparse.Namespace) -> None:
    """Time to /ready of the service on what the flows left, and of the bare apps, interleaved."""
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sp-bench-ready-"))
    state = args.state_dir or work / "state"
    data = args.data_dir or state / "demo-data"
    env = {**os.environ, "SALESPILOT_STATE_DIR": str(state), "SALESPILOT_DATA_DIR": str(data)}
    if not (data / "opportunities.csv").exists() and not (data / "opportunities.parquet").exists():
        # the flows, as a user runs them: features, training, the morning lists
        cmd = [str(Path(sys.executable).parent / "salespilot"), "demo", "--no-serve"]
        cmd += ["--reps", str(args.reps), "--months", str(args.months)]
        print(f"running the flows: salespilot {' '.join(cmd[1:])} in {state}", flush=True)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"  flows done in {time.perf_counter() - t:.0f} s", flush=True)
    body = work / "body.json"
    work.mkdir(parents=True, exist_ok=True)
    body.write_text('{"items": []}')
    bare_env = {**env, "SALESPILOT_BENCH_BODY": str(body)}
    runs: dict[str, list[float]] = {}
    starts = (
        ("service", "salespilot.serving.app:create_app", env),
        ("bare", "serving:bare_app", bare_env),
        ("bare+data", "serving:bare_data_app", bare_env),
    )
    for _ in range(args.ready_runs):  # interleaved: the machine's drift hits all three
        for name, factory, e in starts:
            server, _, seconds = _start(factory, 0, e)
            _stop(server)
            runs.setdefault(name, []).append(seconds)
    print(f"\ntime to /ready, {args.ready_runs} interleaved starts each (median; all runs)")
    service = statistics.median(runs["service"])
    for name, times in runs.items():
        med = statistics.median(times)
        print(
            f"  {name:>9}: {med:5.2f} s  ({', '.join(f'{t:.2f}' for t in times)})"
            + ("" if name == "service" else f"  service / {name}: {service / med:.2f}x")
        )


def _start(factory: str, port: int, env: dict) -> tuple[subprocess.Popen, str, float]:
    """Start uvicorn (one worker) with ``factory``; wait for /ready; (process, base, seconds)."""
    port = port or _free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", factory, "--app-dir", str(Path(__file__).parent),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    t0 = time.perf_counter()
    server = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return server, base, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.perf_counter() - t0 > 600:
            server.kill()
            raise SystemExit(f"{factory} did not become ready on port {port}")
        time.sleep(0.1)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0, help="service port (0: a free one)")
    ap.add_argument("--bare-port", type=int, default=0, help="bare app port (0: a free one)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of load per run")
    ap.add_argument("--rounds", type=int, default=2, help="service/bare turns per client count")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--months", type=int, default=24, help="months of history (--ready-only)")
    ap.add_argument(
        "--ready-only",
        action="store_true",
        help="only time starts to /ready: the service on what the flows left (run with "
        "`salespilot demo --no-serve --reps R --months M` when --state-dir has no data), "
        "a bare FastAPI app and a bare app importing the data stack, interleaved",
    )
    ap.add_argument("--ready-runs", type=int, default=3, help="starts of each (--ready-only)")
    ap.add_argument("--state-dir", type=Path, default=None, help="an existing state folder")
    ap.add_argument("--data-dir", type=Path, default=None, help="its history folder")
    # the fallback load process (no wrk): bench/serving.py --load-url URL ...
    ap.add_argument("--load-url", help=argparse.SUPPRESS)
    ap.add_argument("--clients", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_url:
        r = _httpx_load(args.load_url, json.loads(args.headers), args.clients, args.duration)
        print(json.dumps(r))
        return
    if args.ready_only:
        _ready_only(args)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sp-bench-serving-"))
    from salespilot.features.demo import generate_history
    from salespilot.serving.auth import TokenStore
    from salespilot.settings import Settings

    demo, data, state = work / "demo", work / "data", work / "state"
    print(f"workdir {work}", flush=True)
    if not (demo / "reps.csv").exists() and not (demo / "reps.parquet").exists():
        generate_history(demo, reps=args.reps, months=12, seed=11, end=END)
    settings = Settings(state_dir=state, data_dir=data)
    if not (state / "mlflow.db").exists():
        _train(demo, settings)
    rep, as_of = _one_rep_history(demo, data)
    shutil.rmtree(state / "serving", ignore_errors=True)
    token, _ = TokenStore.for_state_dir(state).create(role="rep", rep_id=rep, name="bench")
    print(f"load from a separate process: {'wrk' if shutil.which('wrk') else 'httpx threads'}")

    env = {**os.environ, "SALESPILOT_STATE_DIR": str(state), "SALESPILOT_DATA_DIR": str(data)}
    headers = {"Authorization": f"Bearer {token}"}
    server, base, ready_s = _start("salespilot.serving.app:create_app", args.port, env)
    try:
        url = f"{base}/v1/reps/{rep}/priorities?limit=50"
        r = httpx.get(url, headers=headers)
        body = r.content
        print(f"rep {rep}: {r.json()['total']} items in the list, 50 returned, {len(body)} bytes")
        (work / "body.json").write_bytes(body)
        bare_env = {**env, "SALESPILOT_BENCH_BODY": str(work / "body.json")}
        bare, bare_base, bare_ready_s = _start("serving:bare_app", args.bare_port, bare_env)
        try:
            runs: dict[tuple[str, int], list[dict]] = {}
            for clients in (1, 8):
                for _ in range(args.rounds):  # interleaved: the machine's drift hits both
                    for name, u, h in (
                        ("service", url, headers),
                        ("bare", f"{bare_base}/list", {}),
                    ):
                        runs.setdefault((name, clients), []).append(
                            _load(u, h, clients, args.duration)
                        )
        finally:
            _stop(bare)
    finally:
        _stop(server)
    bare_score = _bare(settings, data, rep, as_of)

    def med(name: str, clients: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[(name, clients)])

    print(f"\ntime to /ready: service {ready_s:.1f} s, bare app {bare_ready_s:.1f} s "
          f"({ready_s / bare_ready_s:.1f}x)")  # fmt: skip
    print(f"\nGET /v1/reps/{rep}/priorities?limit=50 vs the bare route, same {len(body)} bytes, "
          f"uvicorn 1 worker, medians of {args.rounds} interleaved {args.duration:g} s runs")  # fmt: skip
    head = f"{'clients':>7} {'route':>8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(head)
    for clients in (1, 8):
        for name in ("service", "bare"):
            errors = sum(r["errors"] for r in runs[(name, clients)])
            print(
                f"{clients:>7} {name:>8} {med(name, clients, 'rps'):>8.0f} "
                f"{med(name, clients, 'p50'):>8.2f} {med(name, clients, 'p99'):>8.2f} {errors:>7}"
            )
        print(
            f"{clients:>7} {'ratio':>8} {med('service', clients, 'rps') / med('bare', clients, 'rps'):>8.2f} "
            f"{med('service', clients, 'p50') / med('bare', clients, 'p50'):>8.2f} "
            f"{med('service', clients, 'p99') / med('bare', clients, 'p99'):>8.2f}"
        )
    print(
        f"\nbare model predict_proba + contributions (pred_contrib), same rows: {bare_score * 1000:.2f} ms"
        f" (per-request scoring would cost this; the service precomputes at load)"
    )


if __name__ == "__main__":
    main()
