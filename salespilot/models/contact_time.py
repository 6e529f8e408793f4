"""Best contact time: will this outbound call connect (or this email get a reply within 24 h)?

One row per outbound attempt, with the contact's local hour and weekday. The service scores the
candidate slots of a contact and recommends the best; the no-model rule is the hour the rep
usually calls.
"""

from __future__ import annotations

from salespilot.features.schema import MODEL_TABLES
from salespilot.models._params import BASE_PARAMS
from salespilot.models.spec import BaselineRule, ModelSpec, SlotEvaluation

READABLE_NAMES: dict[str, str] = {
    "channel": "Channel (call or email)",
    "role": "Contact's role",
    "local_hour": "Hour of day in the contact's time zone",
    "local_weekday": "Weekday in the contact's time zone",
    "hour_band": "Hour band in the contact's time zone",
    "population_rate": "Everyone's answer rate",
    "population_band_rate": "Everyone's answer rate in this hour band",
    "population_weekday_rate": "Everyone's answer rate on this weekday",
    "contact_attempts": "Earlier attempts to reach the contact",
    "contact_rate": "Contact's earlier answer rate",
    "contact_band_attempts": "Earlier attempts to reach the contact in this hour band",
    "contact_band_rate": "Contact's earlier answer rate in this hour band",
    "contact_weekday_rate": "Contact's earlier answer rate on this weekday",
    "account_attempts": "Earlier attempts to reach the account",
    "account_rate": "Account's earlier answer rate",
    "account_band_rate": "Account's earlier answer rate in this hour band",
    "account_weekday_rate": "Account's earlier answer rate on this weekday",
    "contact_attempts_7d": "Attempts to reach the contact in the last 7 days",
    "days_since_contact_inbound": "Days since the contact last got in touch",
}

SPEC = ModelSpec(
    name="contact_time",
    description="Probability that an outbound call connects (or an email is replied to within 24 h).",
    entity="contact_id",
    table="attempts",
    label="label_success",
    horizon_days=1,
    horizon_applies=False,
    features=tuple(READABLE_NAMES),
    categorical=("channel", "role"),
    readable_names=READABLE_NAMES,
    params={**BASE_PARAMS, "min_data_in_leaf": 60},
    required_tables=MODEL_TABLES["contact_time"],
    baseline_rule=BaselineRule(
        name="usual_hour_rule",
        kind="usual_hour",
        column="rep_id",
        description="Call at the hour the rep usually calls.",
    ),
    promotion_metric="roc_auc",
    promotion_margin=0.002,
    min_examples_per_class=50,
    slot_evaluation=SlotEvaluation(),
    positive_name="connected",
    negative_name="missed",
)
