"""Forecast fan charts (matplotlib, Agg backend): past bookings, then the simulated bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fan_chart(
    path: Path,
    *,
    title: str,
    labels: list[str],
    draws: list[np.ndarray | None],
    actual: list[float | None],
    targets: dict[str, list[float | None]] | None = None,
) -> Path:
    """One x position per period: P10-P90 and P25-P75 bands and the P50 line where ``draws``
    are given, the actual bookings as a line with dots, and optional target markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    have = [i for i, d in enumerate(draws) if d is not None and len(d)]
    if have:
        q = np.array([np.quantile(draws[i], [0.1, 0.25, 0.5, 0.75, 0.9]) for i in have])
        xs = x[have]
        ax.fill_between(xs, q[:, 0], q[:, 4], color="tab:blue", alpha=0.18, label="P10-P90")
        ax.fill_between(xs, q[:, 1], q[:, 3], color="tab:blue", alpha=0.32, label="P25-P75")
        ax.plot(xs, q[:, 2], color="tab:blue", lw=1.5, label="P50")
        if len(have) == 1:  # a single period: draw the bands as an error bar
            ax.errorbar(xs, q[:, 2], yerr=[[q[0, 2] - q[0, 0]], [q[0, 4] - q[0, 2]]],
                        fmt="o", color="tab:blue", capsize=8)  # fmt: skip
    known = [(i, a) for i, a in enumerate(actual) if a is not None]
    if known:
        ax.plot([i for i, _ in known], [a for _, a in known], "o-", color="black", lw=1,
                ms=4, label="booked")  # fmt: skip
    for (name, values), marker in zip((targets or {}).items(), ("_", "x", "+"), strict=False):
        pts = [(i, v) for i, v in enumerate(values) if v is not None]
        if pts:
            ax.scatter([i for i, _ in pts], [v for _, v in pts], marker=marker, s=160, lw=2,
                       label=name, zorder=3)  # fmt: skip
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("bookings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
