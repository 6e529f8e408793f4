"""Serving benchmark: GET /v1/reps/{rep}/priorities?limit=50 on a real uvicorn server.

    uv run python bench/serving.py [--requests 400] [--workdir DIR]

Generates a demo history, trains the three models into a fresh MLflow store, gives one rep
300 open deals and 200 customer accounts, starts ``uvicorn`` (one worker) on 127.0.0.1 and
measures requests per second and p50/p99 latency with 1 and 16 concurrent clients. Beside it:
the bare LightGBM prediction + contributions (pred_contrib) for the same 500 rows, so the
service's overhead reads as a ratio. Run it once: it shares the machine's two cores.
"""

from __future__ import annotations

import argparse
import os
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


def _load(url: str, headers: dict, clients: int, total: int) -> dict:
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    per = total // clients

    def worker() -> None:
        nonlocal errors
        with httpx.Client(headers=headers, timeout=30) as c:
            c.get(url)  # connect + warm
            mine, bad = [], 0
            for _ in range(per):
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
        clients=clients,
        requests=len(a),
        errors=errors,
        rps=len(a) / wall,
        p50=float(np.percentile(a, 50)),
        p99=float(np.percentile(a, 99)),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
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

    port = _free_port()
    env = {**os.environ, "SALESPILOT_STATE_DIR": str(state), "SALESPILOT_DATA_DIR": str(data)}
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "salespilot.serving.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    t0 = time.perf_counter()
    server = subprocess.Popen(cmd, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - t0 > 600:
                raise SystemExit("server did not become ready")
            time.sleep(0.5)
        print(
            f"server ready in {time.perf_counter() - t0:.1f}s (load + score + explain everything)"
        )
        url = f"{base}/v1/reps/{rep}/priorities?limit=50"
        headers = {"Authorization": f"Bearer {token}"}
        body = httpx.get(url, headers=headers).json()
        print(f"rep {rep}: {body['total']} items in the list, {len(body['items'])} returned, "
              f"{len(httpx.get(url, headers=headers).content)} bytes")  # fmt: skip
        results = [_load(url, headers, c, args.requests) for c in (1, 16)]
        health = _load(f"{base}/health", {}, 1, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare = _bare(settings, data, rep, as_of)
    print(f"\nGET /v1/reps/{rep}/priorities?limit=50 (with explanations), uvicorn 1 worker")
    print(f"{'clients':>8} {'requests':>9} {'errors':>7} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(
            f"{r['clients']:>8} {r['requests']:>9} {r['errors']:>7} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}"
        )
    print(
        f"GET /health (the HTTP floor, 1 client): p50 {health['p50']:.2f} ms, p99 {health['p99']:.2f} ms"
    )
    print(
        f"\nbare model predict_proba + contributions (pred_contrib), same rows: {bare * 1000:.2f} ms"
    )
    print(
        f"p50 (1 client) / bare = {results[0]['p50'] / (bare * 1000):.3f}x "
        "(scores and explanations are precomputed at load/reload)"
    )


if __name__ == "__main__":
    main()
