"""Win probability: will this open deal close won within the horizon?

One row per open opportunity x weekly ``as_of``; the no-model rule is the CRM's fixed
probability per stage.
"""

from __future__ import annotations

from salespilot.models._params import BASE_PARAMS
from salespilot.models.spec import BaselineRule, ModelSpec

READABLE_NAMES: dict[str, str] = {
    "age_days": "Days since the deal was created",
    "stage": "Current stage",
    "stage_index": "Position of the current stage in the funnel",
    "days_in_stage": "Days in the current stage",
    "days_in_stage_vs_typical": "Days in stage compared with that stage's typical dwell",
    "stages_skipped": "Stages skipped so far",
    "stage_changes": "Stage changes so far",
    "amount": "Deal amount",
    "amount_change": "Change of the deal amount since creation",
    "product_line": "Product line",
    "lead_source": "Lead source",
    "outbound_7d": "Outbound touches in the last 7 days",
    "outbound_30d": "Outbound touches in the last 30 days",
    "inbound_7d": "Inbound replies in the last 7 days",
    "inbound_30d": "Inbound replies in the last 30 days",
    "inbound_90d": "Inbound replies in the last 90 days",
    "calls_30d": "Calls in the last 30 days",
    "emails_30d": "Emails in the last 30 days",
    "meetings_30d": "Meetings in the last 30 days",
    "days_since_last_touch": "Days since the last touch",
    "days_since_last_inbound": "Days since the customer last replied",
    "median_reply_delay_h": "The customer's median reply delay (hours)",
    "meetings_held": "Meetings and demos held",
    "meetings_postponed": "Meetings and demos postponed",
    "meetings_cancelled": "Meetings and demos cancelled",
    "decision_maker_engaged": "A decision maker is engaged",
    "contacts_engaged": "Contacts engaged",
    "days_to_expected_close": "Days until the expected close date",
    "days_past_expected_close": "Days past the expected close date",
    "owner_tenure_days": "Owner's tenure (days)",
    "owner_win_rate": "Owner's win rate (smoothed)",
    "owner_changed": "The deal changed owner",
    "owner_left": "The owner has left",
    "account_prior_deals": "Earlier deals with this account",
    "account_prior_wins": "Earlier deals won with this account",
}

SPEC = ModelSpec(
    name="win_probability",
    description="Probability that an open deal closes won within the horizon.",
    entity="opportunity_id",
    table="deals",
    label="label_won",
    horizon_days=60,
    features=tuple(READABLE_NAMES),
    categorical=("stage", "product_line", "lead_source"),
    readable_names=READABLE_NAMES,
    params=BASE_PARAMS,
    required_tables=("reps", "accounts", "opportunities", "stage_changes", "activities"),
    baseline_rule=BaselineRule(
        name="stage_rule",
        kind="per_category_rate",
        column="stage",
        description="The CRM's fixed probability per stage (each stage's win rate on the training period).",
    ),
    promotion_metric="roc_auc",
    promotion_margin=0.002,
    min_examples_per_class=30,
    positive_name="won",
    negative_name="not won",
    # the deal's eventual outcome, for the leak check of fields fixed per deal (checks.py)
    extra={"outcome_label": "label_outcome_won"},
)
