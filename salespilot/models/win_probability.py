"""Win probability: will this open deal close won within the horizon?

One row per open opportunity x weekly ``as_of``; the no-model rule is the CRM's fixed
probability per stage.
"""

from __future__ import annotations

from salespilot.features.schema import MODEL_TABLES
from salespilot.models._params import BASE_PARAMS
from salespilot.models.spec import BaselineRule, ModelSpec

_CHANNELS = {
    "calls": "calls",
    "emails": "emails",
    "meetings": "meetings",
    "demos": "demos",
    "messages": "messages",
}
_DIRECTIONS = {"out": "Outbound", "in": "Inbound"}

READABLE_NAMES: dict[str, str] = {
    "deal_age_days": "Days since the deal was created",
    "amount": "Deal amount",
    "product_line": "Product line",
    "lead_source": "Lead source",
    # the owner's team and region: their cycle lengths and deal sizes differ (a flat lead list
    # knows the rep; without these the model saw only the owner's smoothed win rate so far)
    "team": "Owner's team",
    "region": "Owner's region",
    "stage": "Current stage",
    "stage_index": "Position of the current stage in the funnel",
    "stage_moves": "Stage changes so far",
    "days_in_stage": "Days in the current stage",
    "stage_norm_days": "Typical days in this stage",
    "days_in_stage_vs_norm": "Days in stage against the stage's typical dwell",
    "stages_skipped": "Stages skipped so far",
    **{
        f"{plural}_{d}_{w}d": f"{word} {_CHANNELS[plural]} in the last {w} days"
        for plural in _CHANNELS
        for d, word in _DIRECTIONS.items()
        for w in (7, 30, 90)
    },
    "activities_total": "Touches since the deal was created",
    "days_since_last_touch": "Days since the last touch",
    "days_since_last_inbound": "Days since the customer last replied",
    "days_since_last_outbound": "Days since the rep last reached out",
    "hours_awaiting_reply": "Hours waiting for the customer's reply",
    "median_reply_delay_h": "The customer's median reply delay (hours)",
    "meetings_held": "Meetings held",
    "meetings_postponed": "Meetings postponed",
    "meetings_cancelled": "Meetings cancelled",
    "demos_held": "Demos held",
    "demos_postponed": "Demos postponed",
    "demos_cancelled": "Demos cancelled",
    "postponements": "Meetings and demos postponed",
    "decision_maker_engaged": "A decision maker is engaged",
    "contacts_engaged": "Contacts engaged",
    "days_to_expected_close": "Days until the expected close date (negative: past it)",
    "owner_tenure_days": "Owner's tenure (days)",
    "owner_deals_closed": "Deals the owner has closed",
    "owner_win_rate_smoothed": "Owner's win rate (smoothed towards the team's)",
    "team_win_rate_smoothed": "Team's win rate (smoothed)",
    "reps_on_deal": "Reps who worked the deal",
    "owner_changed": "The deal changed owner",
    "owner_left": "The owner has left",
    "account_prior_deals_won": "Earlier deals won with this account",
    "account_prior_deals_lost": "Earlier deals lost with this account",
    "account_open_deals": "Other open deals with this account",
    "outbound_per_day": "Rep touches per day since the deal was created",
    "inbound_per_day": "Customer replies and call-ins per day since the deal was created",
    "call_connect_rate": "Share of the rep's calls the customer answered (smoothed)",
    "decision_maker_touched": "A decision maker has been contacted on the deal",
    "meetings_missed_30d": "Meetings and demos postponed or cancelled in the last 30 days",
    "meetings_scheduled_30d": "Meetings and demos scheduled in the last 30 days",
    "days_since_meeting_held": "Days since the last meeting or demo took place",
    "outbound_7d_vs_usual": "Rep touches in the last 7 days against the deal's usual pace",
    "outbound_14d_vs_usual": "Rep touches in the last 14 days against the deal's usual pace",
    "inbound_14d_vs_usual": "Customer replies in the last 14 days against the deal's usual pace",
    "team_stage_norm_days": "Typical days in this stage for the owner's team",
    "days_in_stage_vs_team_norm": "Days in stage against the team's typical dwell",
    "pace_vs_team": "How slowly the deal passed its earlier stages against the team (log)",
}

#: A rep must be able to trust the direction: engagement never lowers the score, waiting and
#: postponing never raise it.
MONOTONE: dict[str, int] = {
    **{f"{plural}_in_{w}d": 1 for plural in _CHANNELS for w in (7, 30, 90)},
    "activities_total": 1,
    "meetings_held": 1,
    "demos_held": 1,
    "decision_maker_engaged": 1,
    "contacts_engaged": 1,
    "days_since_last_inbound": -1,
    "days_since_last_touch": -1,
    "hours_awaiting_reply": -1,
    "median_reply_delay_h": -1,
    "meetings_postponed": -1,
    "meetings_cancelled": -1,
    "demos_postponed": -1,
    "demos_cancelled": -1,
    "postponements": -1,
    # the signals of a good deal: more engagement never lowers, missed meetings never raise
    "outbound_per_day": 1,
    "inbound_per_day": 1,
    "call_connect_rate": 1,
    "decision_maker_touched": 1,
    "outbound_7d_vs_usual": 1,
    "outbound_14d_vs_usual": 1,
    "inbound_14d_vs_usual": 1,
    "meetings_missed_30d": -1,
    "days_since_meeting_held": -1,
}

HORIZON_DAYS = 60


def score_label(horizon_days: float = HORIZON_DAYS) -> str:
    """What the score means, wherever it is shown: won within the horizon, not won eventually."""
    return f"won within {horizon_days:g} days"


SCORE_LABEL = score_label()

SPEC = ModelSpec(
    name="win_probability",
    description="Probability that an open deal closes won within the horizon.",
    entity="opportunity_id",
    table="deals",
    label="label_won",
    horizon_days=HORIZON_DAYS,
    features=tuple(READABLE_NAMES),
    categorical=("stage", "product_line", "lead_source", "team", "region"),
    readable_names=READABLE_NAMES,
    monotone=MONOTONE,
    # small trees: the signal is close to additive (a logistic regression on the same features
    # is as good as the default trees); 7 leaves x 100 rows gain ~0.001 ROC AUC on two demo seeds
    params={**BASE_PARAMS, "num_leaves": 7, "min_data_in_leaf": 100},
    # reps, accounts and opportunities: the deal features treat missing stage changes and
    # activities as none (many teams export nothing else at first, e.g. the Maven example)
    required_tables=MODEL_TABLES["win_probability"],
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
    # the eventual outcome, for the leak check of fields fixed per deal (checks.py); closed
    # within the horizon and the deal's age, for the won-against-lost check (readiness.py)
    extra={
        "outcome_label": "label_outcome_won",
        "closed_label": "label_closed",
        "age_feature": "deal_age_days",
    },
)
