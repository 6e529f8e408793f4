"""At-risk accounts: customers ranked by churn risk x annual value, per team or overall."""

from __future__ import annotations

from typing import TYPE_CHECKING

from salespilot.serving.schemas import AtRiskAccount, AtRiskResponse

if TYPE_CHECKING:
    from salespilot.serving.state import ServingState


def at_risk_accounts(
    state: ServingState,
    *,
    team: str | None = None,
    owner_rep_id: str | None = None,
    limit: int = 20,
) -> AtRiskResponse:
    """The top ``limit`` accounts by value at stake, optionally of one team or one owner."""
    rows: list[AtRiskAccount] = [
        a
        for a in state.at_risk
        if (team is None or a.team == team)
        and (owner_rep_id is None or a.owner_rep_id == owner_rep_id)
    ]
    items = [a.model_copy(update={"rank": k + 1}) for k, a in enumerate(rows[:limit])]
    slot = state.models.get("churn_risk")
    return AtRiskResponse(
        team=team,
        as_of=state.as_of.to_pydatetime(),
        model_version=None if slot is None else slot.version,
        total=len(rows),
        items=items,
    )
