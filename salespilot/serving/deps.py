"""FastAPI dependencies as types: the current state, the caller, their role and scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from salespilot.serving.auth import Principal, TokenStore
from salespilot.serving.errors import ApiError, redact
from salespilot.serving.state import ServingState, StateHolder

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `salespilot tokens create` (rep, manager or admin).",
)

_WWW = {"WWW-Authenticate": "Bearer"}


async def get_holder(request: Request) -> StateHolder:
    return request.app.state.holder


Holder = Annotated[StateHolder, Depends(get_holder)]


async def get_state(holder: Holder) -> ServingState:
    """The state current when the request started (a reload never changes it under us)."""
    state = holder.state
    if state is None:
        # before the caller is known: no URI or path of the failure
        reason = redact(holder.last_error or "the service is still loading data and models")
        raise ApiError(503, f"Not ready: {reason}.", code="not_ready")
    return state


State = Annotated[ServingState, Depends(get_state)]


def authenticate(store: TokenStore, authorization: str | None) -> Principal:
    """The caller an ``Authorization`` header names; :class:`ApiError` 401 otherwise."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(
            401,
            "Missing bearer token: send 'Authorization: Bearer <token>' "
            "(create one with `salespilot tokens create`).",
            code="missing_token",
            headers=_WWW,
        )
    principal = store.verify(secret.strip())
    if principal is None:
        raise ApiError(401, "Unknown or revoked token.", code="invalid_token", headers=_WWW)
    return principal


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    return authenticate(request.app.state.tokens, header)


CurrentUser = Annotated[Principal, Depends(current_user)]


async def require_admin(user: CurrentUser) -> Principal:
    if not user.is_admin:
        raise ApiError(403, "This endpoint is for admin tokens only.", code="admin_only")
    return user


AdminUser = Annotated[Principal, Depends(require_admin)]


async def rate_limited(user: CurrentUser, holder: Holder) -> Principal:
    """The caller, after spending one request of their token's budget for expensive routes."""
    holder.limiter.check(user.token_id)
    return user


#: The caller of an expensive route (computes per request): 429 beyond the token's rate.
LimitedUser = Annotated[Principal, Depends(rate_limited)]


# -- scope checks (plain functions: routes call them after resolving what the entity is) --


def check_rep(user: Principal, state: ServingState, rep_id: str) -> None:
    """A rep reads their own list, a manager their team's, an admin anyone's."""
    if user.role == "rep" and user.rep_id != rep_id:
        raise ApiError(403, f"A rep token may only read its own list ({user.rep_id}).")
    if user.role == "manager" and state.rep_team(rep_id) != user.team:
        # an unknown rep is "not in your team" too: the answer must not tell what exists
        raise ApiError(403, f"Rep {rep_id} is not in your team ({user.team}).")
    if rep_id not in state.reps.index:
        raise ApiError(404, f"No rep with id {rep_id!r}.", code="rep_not_found")


def check_owned(user: Principal, state: ServingState, owners: set[str], what: str) -> None:
    """Access to an entity owned by ``owners`` (reps): the rep must be one, the manager's team
    must hold one."""
    if user.is_admin:
        return
    if user.role == "rep" and user.rep_id in owners:
        return
    if user.role == "manager" and any(state.rep_team(r) == user.team for r in owners):
        return
    raise ApiError(403, f"This {what} is outside your scope.")


def check_known(
    user: Principal, state: ServingState, owners: set[str] | None, what: str, not_found: ApiError
) -> None:
    """Access to an entity that may not exist (``owners`` None): only an admin learns that it
    does not (``not_found``, a 404); anyone else gets the same 403 as for another's entity, so
    no answer tells a rep or a manager which ids exist outside their scope."""
    if owners is None and user.is_admin:
        raise not_found
    check_owned(user, state, owners or set(), what)


def check_team_exists(state: ServingState, team: str | None) -> None:
    """404 for a team no rep belongs to (``None`` means every team and always passes)."""
    if team is not None and team not in set(state.reps["team"].astype(str)):
        raise ApiError(404, f"No team named {team!r}.", code="team_not_found")


def scope_team(user: Principal, team: str | None, state: ServingState, what: str) -> str | None:
    """The team a team-level route answers for: a manager's own team (403 for another), any
    team or all of them (``None``) for an admin; reps are refused (403)."""
    if user.role == "rep":
        raise ApiError(403, f"{what} are for manager and admin tokens.", code="forbidden")
    if user.role == "manager":
        if team is not None and team != user.team:
            raise ApiError(403, f"Team {team!r} is not your team ({user.team}).", code="forbidden")
        team = user.team
    check_team_exists(state, team)
    return team
