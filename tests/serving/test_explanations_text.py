"""Factors in plain words, from the specs' readable names and the feature values."""

import pytest

from salespilot.serving.explanations import factor_text


@pytest.mark.parametrize(
    ("readable", "value", "text"),
    [
        ("Inbound replies in the last 7 days", 3.0, "3 inbound replies in the last 7 days"),
        ("Inbound replies in the last 7 days", 1.0, "1 inbound reply in the last 7 days"),
        ("Days since the customer last replied", 4.4, "4 days since the customer last replied"),
        ("Meetings and demos postponed", 2.0, "2 meetings and demos postponed"),
        ("A decision maker is engaged", 1.0, "A decision maker is engaged"),
        ("A decision maker is engaged", 0.0, "A decision maker is engaged: no"),
        ("Owner's win rate (smoothed)", 0.31, "Owner's win rate (smoothed): 31%"),
        ("Deal amount", 12000.0, "Deal amount: 12,000"),
        ("Current stage", "proposal", "Current stage: proposal"),
        (
            "Days in stage compared with that stage's typical dwell",
            2.5,
            "Days in stage compared with that stage's typical dwell: 2.50",
        ),
        ("Lead source", None, "Lead source: unknown"),
        ("{value} open deals at this account", 2.0, "2 open deals at this account"),
        ("Typical days in this stage", 12.0, "Typical days in this stage: 12"),
        ("Earlier attempts to reach the contact", 5.0, "5 earlier attempts to reach the contact"),
        ("Owner changed without a hand-over touch", 1.0, "Owner changed without a hand-over touch"),
        (
            "Weekday in the contact's time zone",
            2.0,
            "Weekday in the contact's time zone: Wednesday",
        ),
        (
            "Hour of day in the contact's time zone",
            9.0,
            "Hour of day in the contact's time zone: 09:00",
        ),
        ("Deals won in the last year", 3.0, "3 deals won in the last year"),
        (
            "Days in stage against the stage's typical dwell",
            2.5,
            "Days in stage against the stage's typical dwell: 2.50",
        ),
    ],
)
def test_factor_text(readable, value, text):
    assert factor_text(readable, value) == text
