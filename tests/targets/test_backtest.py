"""Backtest on small demo data: looser versions of the issue's bars, JSON keys, MLflow run."""

from __future__ import annotations

import json

import pytest

from salespilot.targets.backtest import METHODS, log_to_mlflow, run_backtest
from salespilot.targets.forecast import ForecastConfig


@pytest.fixture(scope="module")
def result(targets_backtest_history):
    return run_backtest(
        targets_backtest_history, periods=2, forecast_config=ForecastConfig(simulations=1000)
    )


def test_backtest_replays_periods_with_sane_figures(result):
    out = json.loads(json.dumps(result.to_dict()))
    assert out["periods"] == ["2026-Q1", "2026-Q2"]
    for m in METHODS:
        assert set(out[m]) >= {"coverage", "mape", "attainment_spread", "periods"}
    sp, ly = out["salespilot"], out["last_year_plus_20"]
    # A P50 base is reached about half the time: a sane band on ~20 rep-quarters ...
    assert 0.2 <= sp["coverage"] <= 0.8
    # ... it misses by less than "last year + 20 %" and spreads attainment less.
    assert sp["mape"] < ly["mape"]
    assert sp["attainment_spread"] < ly["attainment_spread"]


def test_backtest_uses_only_data_before_each_period(result, targets_backtest_history):
    rows = result.rows
    first = rows[rows["period"] == "2026-Q1"]
    # Reps hired during the quarter had no target; each rep-quarter is scored once.
    hired = targets_backtest_history.reps.set_index("rep_id")["hired_at"]
    assert (hired.reindex(first["rep_id"]) < "2026-01-01").all()
    assert not rows.duplicated(["period", "rep_id"]).any()
    # Even split: one number per team and period (the team's salespilot total / its reps).
    assert (rows.groupby(["period", "team"])["even_split"].nunique() == 1).all()


def test_backtest_logs_to_mlflow_with_fan_charts(result, tmp_path, mlflow_template):
    import mlflow

    uri = f"sqlite:///{mlflow_template(tmp_path) / 'mlflow.db'}"
    run_id = log_to_mlflow(
        result,
        tracking_uri=uri,
        artifacts_dir=tmp_path / "art",
        params={"x": 1},
        chart_levels=("company",),  # one chart keeps the test quick; the CLI adds teams
    )
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.metrics["salespilot_coverage"] == result.metrics["salespilot"]["coverage"]
    charts = [a.path for a in client.list_artifacts(run_id, "fan_charts/company")]
    assert charts == ["fan_charts/company/company.png"]
    assert "backtest_rows.csv" in [a.path for a in client.list_artifacts(run_id)]
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.get_experiment(run.info.experiment_id).name == "targets_backtest"


def test_booked_by_every_dimension_sums_the_same_won_deals():
    from salespilot.targets.backtest import booked
    from salespilot.targets.periods import parse_period
    from targets.factories import make_history

    h = make_history(reps=4, months=6, seed=3)
    q = parse_period("2025-Q4")
    opp = h.opportunities
    won = opp[(opp["status"] == "won") & (opp["closed_at"] >= q.start) & (opp["closed_at"] < q.end)]
    assert len(won) > 0
    total = float(won["amount"].sum())
    for by in ("rep", "team", "region", "product_line", "company"):
        assert booked(h, q, by=by).sum() == pytest.approx(total), by
    team = booked(h, q, by="team")
    north = h.reps.loc[h.reps["team"] == "north", "rep_id"]
    assert team["north"] == pytest.approx(won.loc[won["owner_rep_id"].isin(north), "amount"].sum())
    only = booked(h, q, by="region", rep_ids=north)  # the north team's deals, per region
    assert only.sum() == pytest.approx(team["north"])
    with pytest.raises(ValueError, match="booked by"):
        booked(h, q, by="industry")
