"""Churn risk: will this account's active subscription value drop to zero within the horizon?

One row per account with an active subscription x weekly ``as_of``; the no-model rule is the
number of days since anyone last spoke to the account.
"""

from __future__ import annotations

from salespilot.models._params import BASE_PARAMS
from salespilot.models.spec import BaselineRule, ModelSpec

READABLE_NAMES: dict[str, str] = {
    "tenure_days": "Days as a customer",
    "active_monthly_value": "Active monthly subscription value",
    "monthly_value_change_90d": "Change of the monthly value over 90 days",
    "products_held": "Products held",
    "activities_30d": "Touches in the last 30 days",
    "activities_prev_90d": "Touches in the 90 days before that",
    "activity_trend": "Touches: last 30 days against the 90 before",
    "inbound_30d": "Inbound messages in the last 30 days",
    "inbound_trend": "Inbound: last 30 days against the 90 before",
    "days_since_last_touch": "Days since anyone last spoke to the account",
    "days_since_last_meeting": "Days since the last meeting",
    "owner_left": "The account owner has left",
    "owner_changed_without_handover": "Owner changed without a hand-over touch",
    "open_deals": "Open deals with the account",
    "earlier_cancellations": "Subscriptions cancelled before",
    "industry": "Industry",
    "employees": "Company size (employees)",
}

SPEC = ModelSpec(
    name="churn_risk",
    description="Probability that an account's active subscription value drops to zero within the horizon.",
    entity="account_id",
    table="accounts",
    label="label_churned",
    horizon_days=60,
    features=tuple(READABLE_NAMES),
    categorical=("industry",),
    readable_names=READABLE_NAMES,
    params=BASE_PARAMS,
    required_tables=("reps", "accounts", "opportunities", "activities", "subscriptions"),
    baseline_rule=BaselineRule(
        name="days_since_contact_rule",
        kind="monotone_score",
        column="days_since_last_touch",
        description="The longer since anyone spoke to the account, the higher the risk.",
    ),
    promotion_metric="roc_auc",
    promotion_margin=0.002,
    min_examples_per_class=20,
    positive_name="churned",
    negative_name="retained",
)
