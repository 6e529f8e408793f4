"""Pydantic schemas of the API: one per purpose, every response declared."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from salespilot.models.win_probability import SCORE_LABEL as WIN_LABEL

ModelName = Literal["win_probability", "churn_risk", "contact_time"]


def _with_offset(value: datetime) -> datetime:
    """Every instant is held as naive UTC inside; the API says so (``+00:00``), as the schema's
    ``date-time`` requires. A zoned value (a contact's local time) keeps its own offset."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_with_offset)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Out):
    code: str = Field(description="Machine-readable error code, e.g. `forbidden`.")
    message: str = Field(description="What went wrong, for a person.")


class ErrorResponse(_Out):
    error: ErrorDetail


#: what each error status means, in the OpenAPI schema of every route that can answer it
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be read: not UTF-8 text (`bad_request`)",
    401: "Missing, unknown or revoked token",
    403: "Outside the token's scope",
    404: "Unknown id",
    413: "The body is larger than the service accepts (`body_too_large`)",
    422: "Invalid parameters, or a NUL character in the path, query or body (`nul_byte`)",
    429: "Rate limit or rebuild limit reached (see Retry-After)",
    503: "Data or models not loaded yet, or the request's time limit passed",
}
#: the statuses only a request with a body can get (read by the body guard before any route)
BODY_ERRORS = (400, 413)


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error ``statuses`` (an :class:`ErrorResponse` each);
    ``descriptions`` (``e404="Unknown team"``) says what a status means on these routes."""
    return {
        s: {
            "model": ErrorResponse,
            "description": descriptions.get(f"e{s}", ERROR_DESCRIPTIONS[s]),
        }
        for s in statuses
    }


# -- health --------------------------------------------------------------------------------


class Health(_Out):
    status: Literal["ok", "degraded"] = "ok"
    degraded: bool = Field(
        False, description="True while serving the last good models (see /ready's problems)."
    )


class Readiness(_Out):
    ready: bool
    degraded: bool = Field(
        description="True when a model could not be (re)loaded: the last good one serves."
    )
    loaded_at: UtcDatetime | None
    data_as_of: UtcDatetime | None
    models: dict[str, str | None] = Field(description="Model name -> version serving (or null).")
    problems: list[str] = Field(default_factory=list)


# -- shared pieces -------------------------------------------------------------------------


class Factor(_Out):
    feature: str
    readable_name: str
    value: float | str | None
    contribution: float = Field(description="SHAP value in log-odds (+ raises the score).")
    text: str = Field(description="The factor in plain words.")


class Factors(_Out):
    positive: list[Factor]
    negative: list[Factor]


class WarningOut(_Out):
    code: str
    message: str
    evidence: dict[str, Any]


class BestTime(_Out):
    contact_id: str
    contact_role: str | None
    contact_timezone: str
    contact_local_time: UtcDatetime = Field(description="Slot start in the contact's time zone.")
    rep_timezone: str
    rep_local_time: UtcDatetime = Field(description="The same instant in the rep's time zone.")
    connect_probability: float


class Trend(_Out):
    direction: Literal["improving", "steady", "declining", "new"]
    previous_score: float | None = None
    previous_as_of: UtcDatetime | None = None
    change: float | None = None


class DataInfo(_Out):
    source: str | None
    content_hash: str | None
    as_of: UtcDatetime
    rules_left_out: dict[str, str] = Field(
        default_factory=dict,
        description="Warning rules with no data to stand on in this history (code -> why): "
        "they never fire here, so their absence says nothing.",
    )


# -- priorities ----------------------------------------------------------------------------


class HandoverNote(_Out):
    previous_owner_rep_id: str
    previous_owner_left: bool = Field(description="The previous owner has left the company.")
    handed_over_at: UtcDatetime = Field(description="The previous owner's last outbound touch.")
    missing: list[Literal["no_decision_maker", "no_contact_30d", "no_next_step"]] = Field(
        description="What the successor lacks: no decision maker known, nothing logged in 30 "
        "days, no touch of theirs since the hand-over."
    )
    note: str = Field(description="The hand-over note in plain words, with what to do.")


class PriorityItem(_Out):
    rank: int
    kind: Literal["deal", "account"]
    entity_id: str = Field(description="opportunity_id for deals, account_id for accounts.")
    account_id: str
    account_name: str | None
    title: str
    model: ModelName
    score: float = Field(
        description=f"Deals: probability {WIN_LABEL} (not of winning eventually; N days: the "
        "served model's horizon, GET /v1/models); accounts: churn risk."
    )
    value: float = Field(description="Deal amount or the account's annual value.")
    value_at_stake: float = Field(description="weight x score x value: the ranking key.")
    grade: Literal["A", "B", "C", "D"]
    trend: Trend
    best_time: BestTime | None
    warnings: list[WarningOut]
    factors: Factors
    next_step: str
    handover: HandoverNote | None = Field(
        None, description="Set when the item was handed over to this rep and something is missing."
    )


class PrioritiesResponse(_Out):
    rep_id: str
    rep_name: str | None
    team: str | None
    as_of: UtcDatetime
    data: DataInfo
    model_versions: dict[str, str | None]
    total: int = Field(description="Items before the limit was applied.")
    items: list[PriorityItem]


class CalendarLink(_Out):
    rep_id: str
    url: str = Field(description="The rep's calendar feed; the key in it replaces the header.")
    webcal_url: str = Field(description="The same address for calendar apps (webcal://).")
    token_id: str = Field(description="The token the key was issued from.")
    revoke: str = Field(description="The command that ends the subscription.")


# -- best times ----------------------------------------------------------------------------


class Slot(_Out):
    weekday: int = Field(ge=0, le=6, description="0 = Monday, contact's local time.")
    hour: int = Field(ge=0, le=23)
    contact_local_time: UtcDatetime | None = None
    connect_probability: float


class BestTimesResponse(_Out):
    contact_id: str
    account_id: str
    contact_timezone: str
    as_of: UtcDatetime
    model_version: str | None
    top_slots: list[Slot]
    grid: list[list[float | None]] = Field(
        description="7 x 24 connect probabilities, [weekday][hour], contact's local time."
    )


# -- at risk -------------------------------------------------------------------------------


class AtRiskAccount(_Out):
    rank: int
    account_id: str
    account_name: str | None
    owner_rep_id: str | None
    team: str | None
    churn_risk: float
    annual_value: float
    value_at_stake: float
    grade: Literal["A", "B", "C", "D"]
    warnings: list[WarningOut]
    factors: Factors
    risk_raised_by: list[str] = Field(
        default_factory=list,
        description="What raises this account's churn risk, in plain words (the positive "
        "factors' text, strongest first).",
    )


class AtRiskResponse(_Out):
    team: str | None
    as_of: UtcDatetime
    model_version: str | None
    total: int
    items: list[AtRiskAccount]


# -- explanations --------------------------------------------------------------------------


class Contribution(_Out):
    feature: str
    readable_name: str
    value: float | str | None
    contribution: float


class ExplanationResponse(_Out):
    model: ModelName
    model_version: str | None
    entity_id: str
    as_of: UtcDatetime
    probability: float = Field(description="Calibrated probability served.")
    raw_score: float = Field(description="LightGBM raw score (log-odds).")
    base_value: float = Field(description="SHAP expected value (log-odds).")
    contributions: list[Contribution] = Field(
        description="Every feature; base_value + sum(contribution) == raw_score."
    )


# -- models --------------------------------------------------------------------------------


class WonVsLost(_Out):
    won: int = Field(description="Test rows of deals that closed won within the horizon.")
    lost: int = Field(description="Test rows of deals that closed lost within the horizon.")
    auc: float | None = Field(None, description="The model's ROC AUC of won against lost there.")
    interval: list[float] | None = Field(
        None, description="Its seeded bootstrap 90 % interval (None: too few rows to judge)."
    )
    age_baseline_auc: float | None = Field(
        None, description="ROC AUC of the deal's age alone on the same rows."
    )
    gain_interval: list[float] | None = Field(
        None,
        description="90 % interval of the model's ROC AUC minus the deal-age baseline's; a "
        "lower end at or below 0 makes the version not_ready.",
    )


class ModelReadiness(_Out):
    verdict: Literal["ready", "usable", "not_ready"]
    reasons: list[str]
    won_vs_lost: WonVsLost | None = Field(
        None,
        description="Win model only: won against lost among the test deals that closed within "
        "the horizon, beside the deal's age alone.",
    )


class ModelInfo(_Out):
    name: str
    version: str | None
    alias: str
    trained_at: UtcDatetime | str | None
    metrics: dict[str, float]
    loaded: bool
    stale: bool = Field(description="True when a newer load failed and this one kept serving.")
    problem: str | None = None
    readiness: ModelReadiness | None = Field(
        None, description="The version's readiness verdict from training (None for older versions)."
    )
    horizon_days: int | None = Field(
        None,
        description="How far ahead the version's label looks: 'won/churned within N days' "
        "(None: no horizon, or no model loaded).",
    )


class ModelsResponse(_Out):
    degraded: bool
    loaded_at: UtcDatetime | None
    models: list[ModelInfo]


class ReloadResponse(_Out):
    reloaded: bool
    degraded: bool
    loaded_at: UtcDatetime | None
    models: dict[str, str | None]
    problems: list[str]
