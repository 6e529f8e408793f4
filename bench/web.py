"""Pages benchmark: the morning page and the target dashboard on a real uvicorn server.

    uv run python bench/web.py [--workdir DIR] [--repeat 30]

Generates a demo history (20 reps, 12 months, seed 7) and trains the three models into
``--workdir`` (kept for the next run), serves the app on a free port in this process, signs in
through the form (CSRF included) as the biggest list's rep and its team's manager, then times
``--repeat`` GETs of the morning page and of the dashboard, one client, after one warm-up (the
dashboard's targets are memoised per state, as in /v1; the per-token rate limit is lifted for
the run). Prints p50/p99 in ms (measured at the
client over loopback) and each page's transfer size (bytes on the wire; Plotly's script is
sent gzip-compressed once and cached by the browser).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd

END = pd.Timestamp("2026-06-30")


def _prepare(work: Path):
    from salespilot.features.demo import generate_history
    from salespilot.features.loader import load_history
    from salespilot.models import SPECS
    from salespilot.settings import Settings
    from salespilot.training import train_model

    data, state = work / "data", work / "state"
    if not (data / "reps.csv").exists():
        generate_history(data, reps=20, months=12, seed=7, end=END)
    # one client timing many requests: lift the per-token limit on expensive routes
    settings = Settings(
        state_dir=state, data_dir=data, serving_rate_burst=10_000, serving_rate_per_minute=1e6
    )
    if not (state / "mlflow.db").exists():
        h = load_history(data, now=END + pd.Timedelta(days=1))
        for spec in SPECS.values():
            train_model(spec, h, settings, figures=False)
    return settings


def _serve(settings):
    import uvicorn

    from salespilot.serving.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return app, server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def _signed_in(base: str, token: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=60)
    page = c.get("/app/login").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = c.post("/app/login", data={"token": token, "csrf": csrf})
    assert r.status_code == 303, r.text
    return c


def _wire(c: httpx.Client, url: str) -> int:
    with c.stream("GET", url) as r:
        r.read()
        assert r.status_code == 200, url
        return r.num_bytes_downloaded


def _time(c: httpx.Client, url: str, repeat: int) -> tuple[float, float]:
    c.get(url)  # warm-up
    ms = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = c.get(url)
        ms.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, url
    return statistics.median(ms), float(np.percentile(ms, 99))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sp-bench-web-"))
    print(f"workdir {work}", flush=True)
    settings = _prepare(work)
    app, server, base = _serve(settings)
    try:
        state = app.state.holder.state
        sizes = {r: len(items) for r, items in state.rep_items.items()}
        rep = max(sorted(sizes), key=lambda r: sizes[r])
        team = state.rep_team(rep)
        store = app.state.tokens
        rep_c = _signed_in(base, store.create(role="rep", rep_id=rep, name="bench")[0])
        mgr_c = _signed_in(base, store.create(role="manager", team=team, name="bench")[0])
        adm_c = _signed_in(base, store.create(role="admin", name="bench")[0])
        item = state.rep_items[rep][0].entity_id
        morning = f"/app/reps/{rep}"
        dashboard = f"/app/teams/{quote(team)}"
        print(f"rep {rep} ({sizes[rep]} items), team {team}, {args.repeat} requests, one client")
        for name, c, url in (("morning page", rep_c, morning), ("dashboard", mgr_c, dashboard)):
            p50, p99 = _time(c, url, args.repeat)
            print(f"  {name:<13} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
        print("transfer size per page (bytes on the wire):")
        for name, c, url in (
            ("login", httpx.Client(base_url=base), "/app/login"),
            ("morning page", rep_c, morning),
            ("item page", rep_c, f"{morning}/items/{item}"),
            ("dashboard", mgr_c, dashboard),
            ("models", adm_c, "/app/models"),
            ("app.css", rep_c, "/app/static/app.css"),
            ("plotly.min.js", rep_c, "/app/static/plotly.min.js"),
        ):
            print(f"  {name:<13} {_wire(c, url):>10,}")
    finally:
        server.should_exit = True


if __name__ == "__main__":
    main()
