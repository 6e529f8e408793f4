"""Tables at 80 columns: wrapped at the words or split into parts, never a cell cut."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from salespilot.cli.demo import model_table
from salespilot.tables import print_table
from tests.terminal import assert_readable_at_80


def _render(table: Table, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    with console.capture() as captured:
        print_table(console, table)
    return captured.get()


def _wide() -> Table:
    t = Table(*("unit", "P10", "P50", "P90", "pipe", "new", "base", "stretch", "alloc"),
              *("P(≥)", "ramp", "lead/wk", "demo/mo"), title="targets", caption="a caption")  # fmt: skip
    for i in range(3):
        t.add_row(f"R0001{i} Ada Lovelace-Byron", "1.23M", "1.50M", "1.94M", "903k", "310k",
                  "1.41M", "1.77M", "1.52M", "45%", "1.00", "13.4", "2.1")  # fmt: skip
    return t


def test_a_table_that_fits_prints_as_one():
    t = Table("a", "b")
    t.add_row("R00017", "0.812")
    out = _render(t)
    assert out.count("R00017") == 1 and "0.812" in out


def test_a_wide_table_splits_its_columns_and_repeats_the_unit():
    out = _render(_wide())
    assert_readable_at_80(out, ("R00010 Ada Lovelace-Byron", "1.23M", "1.52M", "demo/mo", "13.4"))
    # every part names its rows
    assert out.count("R00011 Ada Lovelace-Byron") >= 2
    assert out.count("targets") == 1 and out.count("a caption") == 1
    assert out.index("1.23M") < out.index("13.4")


def test_a_column_wider_than_the_terminal_falls_back_to_one_block_per_row():
    t = Table("id", "reason")
    t.add_row("R00017", "x" * 90)
    out = _render(t)
    assert "…" not in out and "R00017" in out and out.replace("\n", "").count("x") == 90


def test_the_demo_model_table_fits_80_columns_with_names_and_rules_whole():
    results = {
        "win_probability": {
            "version": "3", "champion": True, "metrics": {"roc_auc": 0.8123},
            "baselines": {"logistic_regression": {"roc_auc": 0.79}, "stage_rule": {"roc_auc": 0.7}},
        },
        "churn_risk": {
            "version": "12", "champion": False, "metrics": {"roc_auc": 0.6},
            "readiness": {"verdict": "not_ready"},
            "baselines": {"logistic_regression": {"roc_auc": 0.58},
                          "days_since_contact_rule": {"roc_auc": 0.55}},
        },
        "contact_time": {"error": "not enough outbound attempts in the test period: 12 < 200"},
    }  # fmt: skip
    out = _render(model_table(results))
    assert out.count("win_probability") == 1  # one table, not split
    assert_readable_at_80(
        out,
        ("win_probability", "churn_risk", "0.700 (stage_rule)", "3 champion", "challenger,", "not ready", "(days_since_contact_rule)",
         "regression", "0.790",
         "contact_time failed: not enough outbound attempts in the test period: 12 < 200"),
    )  # fmt: skip
