"""Churn risk: will this account's active subscription value drop to zero within the horizon?

One row per account with an active subscription x weekly ``as_of``; the no-model rule is the
number of days since anyone last spoke to the account.
"""

from __future__ import annotations

from salespilot.features.schema import MODEL_TABLES
from salespilot.models._params import BASE_PARAMS
from salespilot.models.spec import BaselineRule, ModelSpec

READABLE_NAMES: dict[str, str] = {
    "industry": "Industry",
    "account_region": "Account's region",
    "employees": "Company size (employees)",
    "account_age_days": "Days since the account was created",
    "customer_tenure_days": "Days as a paying customer",
    "active_monthly_value": "Active monthly subscription value",
    "active_subscriptions": "Active subscriptions",
    "products_held": "Products held",
    "monthly_value_90d_ago": "Monthly value 90 days ago",
    "monthly_value_change_90d": "Change of the monthly value over 90 days",
    "subscriptions_ended": "Subscriptions ended before",
    "value_ended_180d": "Monthly value ended in the last 180 days",
    "activities_30d": "Touches in the last 30 days",
    "activities_prev_90d": "Touches in the 90 days before that",
    "activity_trend": "Touches: last 30 days against the 90 before",
    "inbound_30d": "Inbound messages in the last 30 days",
    "inbound_prev_90d": "Inbound messages in the 90 days before that",
    "inbound_trend": "Inbound: last 30 days against the 90 before",
    "outbound_30d": "Outbound touches in the last 30 days",
    "customer_inbound_rate_4w": "Customer's own contacts per week (last month, weighted)",
    "customer_inbound_rate_13w": "Customer's own contacts per week (last quarter, weighted)",
    "customer_inbound_rate_26w": "Customer's own contacts per week (last half-year, weighted)",
    "customer_inbound_rate_life": "Customer's own contacts per week since becoming a customer",
    "customer_inbound_vs_usual": "Customer's contacts: last quarter against their usual rate",
    "customer_touch_rate_13w": "Check-ins with the customer per week (last quarter, weighted)",
    "customer_meetings_held_180d": "Customer meetings held in the last 180 days",
    "customer_meetings_missed_180d": "Customer meetings postponed or cancelled in the last 180 days",
    "days_since_last_touch": "Days since anyone last spoke to the account",
    "days_since_last_inbound": "Days since the customer last got in touch",
    "days_since_last_meeting": "Days since the last meeting",
    "owner_tenure_days": "Account owner's tenure (days)",
    "owner_left": "The account owner has left",
    "days_since_owner_change": "Days since the owner changed",
    "owner_changed_without_handover": "Owner changed without a hand-over touch",
    "open_deals": "Open deals with the account",
    "open_pipeline_amount": "Amount of open deals with the account",
    "deals_won_365d": "Deals won in the last year",
    "deals_lost_365d": "Deals lost in the last year",
}

SPEC = ModelSpec(
    name="churn_risk",
    description="Probability that an account's active subscription value drops to zero within the horizon.",
    entity="account_id",
    table="accounts",
    label="label_churned",
    horizon_days=90,
    features=tuple(READABLE_NAMES),
    categorical=("industry", "account_region"),
    readable_names=READABLE_NAMES,
    # churn is a weak, noisy signal: few small trees, slow learning, strong regularisation
    # (bench/quality.py: +0.008 ROC AUC over the shared defaults on 100 reps x 24 months)
    params={
        **BASE_PARAMS,
        "learning_rate": 0.02,
        "num_leaves": 7,
        "min_data_in_leaf": 300,
        "feature_fraction": 0.6,
        "lambda_l2": 10.0,
    },
    num_boost_round=800,
    early_stopping_rounds=80,
    required_tables=MODEL_TABLES["churn_risk"],
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
