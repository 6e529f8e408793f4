"""On the demo, a rep's factors are evidence they can act on, in words, never column names."""

from __future__ import annotations

import re

import pytest

from salespilot.features.names import display_name
from salespilot.serving.explanations import BACKGROUND, BACKGROUND_FEATURE, evidence_text


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("days_since_last_inbound", 5.2, "No reply from the customer for 5 days"),
        ("days_since_last_touch", 1.0, "No touch for 1 day"),
        ("days_to_expected_close", -12.0, "The expected close date passed 12 days ago"),
        ("days_in_stage_vs_norm", 2.5, "In this stage 2.5x as long as usual"),
        ("decision_maker_engaged", 0.0, "No decision maker engaged yet"),
        ("outbound_7d_vs_usual", 0.3, "Your touches this week below the usual pace (0.3x)"),
        ("product_line", "custom_solution", "Product line: Custom solution"),
        ("outbound_per_day", 1.2, "1.2 touches a day from you since the deal opened"),
        ("outbound_per_day", 0.2, "A touch every 5 days from you since the deal opened"),
        ("inbound_per_day", 0.0, "No replies or calls from the customer since the deal opened"),
        ("inbound_14d_vs_usual", None, "No usual reply pace of the customer yet to compare with"),
        ("stage_moves", 3.0, "Moved stage 3 times so far"),
    ],
)
def test_evidence_text(feature, value, text):
    assert evidence_text(feature, "Product line", value) == text


def test_display_names():
    assert display_name("custom_solution") == "Custom solution"
    assert display_name("platform") == "platform"
    assert display_name("EMEA North") == "EMEA North"


def _all_factors(state):
    items = [i for its in state.rep_items.values() for i in its]
    return items, [f for i in items for f in (*i.factors.positive, *i.factors.negative)]


def test_the_demo_lists_speak_in_evidence_a_rep_can_act_on(state):
    items, factors = _all_factors(state)
    assert len(factors) > 100
    texts = [f.text for f in factors]
    # nothing a rep cannot change comes one by one: owner tenure, the log-scaled stage pace
    assert not {f.feature for f in factors} & set(BACKGROUND)
    assert not [t for t in texts if "(log)" in t or "tenure (days)" in t.lower()]
    assert not [t for t in texts if t.endswith(": unknown")]
    background = [f for f in factors if f.feature == BACKGROUND_FEATURE]
    assert background and all(
        f.text.startswith("Background you cannot change (") for f in background
    )
    # no column names, no snake_case product names, in factors or titles
    snake = re.compile(r"\b[a-z]+_[a-z_]+\b")
    assert not [t for t in texts if snake.search(t)], [t for t in texts if snake.search(t)][:5]
    assert not [i.title for i in items if snake.search(i.title)]
    # evidence: how long since the customer replied or anyone touched the deal, in days
    assert any(re.fullmatch(r"No (reply from the customer|touch) for \d+ days?", t) for t in texts)


def test_the_at_risk_list_says_what_raises_the_risk(state):
    assert state.at_risk
    for a in state.at_risk:
        assert all(f.contribution > 0 for f in a.factors.positive)
        if a.factors.positive:
            assert a.risk_raised_by == [f.text for f in a.factors.positive]
        else:
            assert a.risk_raised_by == [
                "Nothing raises the risk above the usual: the account is listed for its value"
            ]
    assert sum(bool(a.factors.positive) for a in state.at_risk) > len(state.at_risk) / 2
