"""The pages' charts, drawn with Plotly (its JavaScript ships with the Python package)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio

from salespilot.serving.schemas import ExplanationResponse

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d"]}
_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
    "height": 360,
    "template": "plotly_white",
}


def to_div(fig: go.Figure, div_id: str) -> str:
    """The figure as an HTML fragment; the page loads plotly.min.js once itself."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, config=_CONFIG, div_id=div_id)


def _short(label: str, width: int = 32) -> str:
    # long readable names squeeze the bars on a phone; the hover text has them whole
    return label if len(label) <= width else label[: width - 1].rstrip() + "…"


def shap_waterfall(exp: ExplanationResponse, *, top: int = 8) -> go.Figure:
    """From the base rate to the score: the ``top`` largest SHAP contributions, the rest summed."""
    head = exp.contributions[:top]
    rest = sum(c.contribution for c in exp.contributions[top:])
    full = ["Base rate"] + [c.readable_name for c in head]
    labels = [_short(n) for n in full]
    values = [exp.base_value] + [c.contribution for c in head]
    measure = ["absolute"] + ["relative"] * len(head)
    if exp.contributions[top:]:
        labels.append(f"{len(exp.contributions) - top} other factors")
        full.append(labels[-1])
        values.append(rest)
        measure.append("relative")
    labels.append("Score")
    full.append("Score")
    values.append(exp.raw_score)
    measure.append("total")
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            y=labels,
            x=values,
            measure=measure,
            hovertext=full,
            text=[
                f"{v:+.2f}" if m == "relative" else f"{v:.2f}"
                for v, m in zip(values, measure, strict=True)
            ],
            increasing={"marker": {"color": "#1a7f37"}},
            decreasing={"marker": {"color": "#b42318"}},
            totals={"marker": {"color": "#1f4e89"}},
        )
    )
    fig.update_layout(
        **_LAYOUT,
        title=f"Why {exp.probability:.0%}: contributions in log-odds",
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={"title": "log-odds"},
        showlegend=False,
    )
    return fig


def forecast_fan(units: Sequence[dict], *, booked: dict[str, float] | None = None) -> go.Figure:
    """Each unit's P10-P90 forecast band with its median, base and stretch targets."""
    names = [str(u.get("name") or u["unit"]) for u in units]
    p10 = [u["p10"] for u in units]
    p90 = [u["p90"] for u in units]
    fig = go.Figure()
    fig.add_bar(
        y=names,
        x=[b - a for a, b in zip(p10, p90, strict=True)],
        base=p10,
        orientation="h",
        name="forecast P10-P90",
        marker={"color": "rgba(31,78,137,0.25)"},
        hovertemplate="%{y}: %{base:,.0f} to %{x:,.0f} more<extra></extra>",
    )
    for key, label, symbol, color in (
        ("p50", "forecast P50", "line-ns-open", "#1f4e89"),
        ("base", "base target", "diamond", "#0b6e4f"),
        ("stretch", "stretch target", "triangle-right", "#9a3412"),
    ):
        fig.add_scatter(
            y=names,
            x=[u[key] for u in units],
            mode="markers",
            name=label,
            marker={"symbol": symbol, "size": 12, "color": color},
        )
    if booked:
        fig.add_scatter(
            y=names,
            x=[booked.get(str(u["unit"]), 0.0) for u in units],
            mode="markers",
            name="booked so far",
            marker={"symbol": "x", "size": 10, "color": "#111"},
        )
    fig.update_layout(
        **{**_LAYOUT, "height": max(260, 40 * len(units) + 120)},
        title="Forecast of bookings (P10-P90) and targets",
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={"title": "bookings", "tickformat": ",.0f"},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def calibration_chart(curves: dict[str, dict[str, list[float]]]) -> go.Figure:
    """Observed rate against predicted probability, one line per version."""
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash", "color": "grey"}
    )
    for label, c in curves.items():
        fig.add_scatter(x=c["predicted"], y=c["observed"], mode="lines+markers", name=label)
    fig.update_layout(
        **{**_LAYOUT, "height": 320},
        title="Calibration on the test rows",
        xaxis={"title": "predicted probability", "range": [0, 1]},
        yaxis={"title": "observed rate", "range": [0, 1]},
    )
    return fig
