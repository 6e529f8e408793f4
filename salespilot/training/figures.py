"""The pictures a data scientist looks at for a run: calibration curve, SHAP summary, lift chart."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve

from salespilot.training.core import Evaluation


def _curves(ev: Evaluation) -> dict[str, np.ndarray]:
    curves = {"model": ev.p_test, **ev.baseline_p}
    if ev.oracle_p is not None:
        curves["oracle"] = ev.oracle_p
    return curves


def calibration_figure(ev: Evaluation) -> plt.Figure:
    """Observed positive rate against predicted probability (quantile bins), model vs others."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    for name, p in _curves(ev).items():
        frac, mean = calibration_curve(ev.y_test, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", ms=3, label=name)
    ax.set(
        xlabel="predicted probability",
        ylabel="observed rate",
        title=f"{ev.spec.name}: calibration (test, ECE {ev.metrics['ece']:.3f})",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lift_figure(ev: Evaluation) -> plt.Figure:
    """Cumulative share of positives captured against share of rows contacted (gain chart)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    y = ev.y_test.astype(float)
    x = np.arange(1, len(y) + 1) / len(y)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random")
    for name, p in _curves(ev).items():
        order = np.argsort(-p, kind="stable")
        ax.plot(x, np.cumsum(y[order]) / max(y.sum(), 1), label=name)
    ax.axvline(0.1, color="grey", lw=0.5)
    ax.set(
        xlabel="share of rows, highest score first",
        ylabel="share of positives captured",
        title=f"{ev.spec.name}: lift (top decile x{ev.metrics['top_decile_lift']:.2f})",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def shap_summary_figure(ev: Evaluation, max_rows: int = 1000) -> plt.Figure:
    """SHAP summary (beeswarm) of the test rows, from LightGBM's TreeSHAP (``pred_contrib``)."""
    import shap

    rows = ev.test.head(max_rows)
    contrib = ev.model.contributions(rows)
    x = ev.model.prepare(rows)
    for c in ev.model.categorical:  # colour categoricals by their code
        x[c] = x[c].cat.codes.replace(-1, np.nan).astype(float)
    names = [ev.model.readable_names.get(f, f) for f in ev.model.features]
    shap.summary_plot(
        contrib[ev.model.features].to_numpy(),
        x.to_numpy(dtype=float),
        feature_names=names,
        show=False,
        max_display=15,
        plot_size=(8, 6),
    )
    fig = plt.gcf()
    fig.suptitle(f"{ev.spec.name}: SHAP values (log-odds), test rows")
    fig.tight_layout()
    return fig
