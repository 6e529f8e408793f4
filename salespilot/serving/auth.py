"""API tokens: random bearer secrets stored only as hashes, each bound to a role and a scope.

A token is 32 random bytes (``sp_`` + url-safe base64); the store keeps its SHA-256, never the
token itself, so a leaked ``tokens.json`` does not leak access. SHA-256 without a salt is
enough here because the secrets are random and long (no dictionary to attack), and it keeps
verification a dictionary lookup. Roles:

* ``rep``     - scope ``rep_id``: their own list, deals, accounts and contacts;
* ``manager`` - scope ``team``: every rep, account and contact of that team;
* ``admin``   - everything, plus the model endpoints.

A calendar app cannot send a bearer header, so a rep's calendar feed also opens with a
*calendar key* (:class:`CalendarKeys`): the rep's id and the issuing token's id, signed with
the service's key. It reads that one feed only, and stops working when the token is revoked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer

from salespilot.atomic import write_json, write_text

log = logging.getLogger(__name__)

Role = Literal["rep", "manager", "admin"]
ROLES: tuple[str, ...] = ("rep", "manager", "admin")
TOKEN_PREFIX = "sp_"


class TokenError(ValueError):
    """A token request that cannot be honoured (bad role/scope, unknown id)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the role and scope of a verified token."""

    token_id: str
    role: Role
    rep_id: str | None = None
    team: str | None = None
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    token_hash: str
    role: Role
    rep_id: str | None
    team: str | None
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(self.token_id, self.role, self.rep_id, self.team, self.name)

    def public(self) -> dict:
        """Everything but the hash (for ``tokens list``)."""
        d = asdict(self)
        d.pop("token_hash")
        return d


def demo_token_name(role: str) -> str:
    """The label the demo gives the tokens it prints in clear (and prod refuses)."""
    return f"demo {role}"


class DemoTokensActive(RuntimeError):
    """``env=prod`` with tokens the demo printed (and kept in the state folder) still valid."""


def refuse_demo_tokens(store: TokenStore) -> None:
    """Refuse to serve while a token the demo created is still active (prod only)."""
    names = {demo_token_name(role) for role in ROLES}
    demo = [r.token_id for r in store.list() if r.name in names]
    if demo:
        raise DemoTokensActive(
            "SALESPILOT_ENV=prod refuses to start: the demo's tokens still open the API "
            f"(their secrets were printed and saved in clear); revoke {', '.join(demo)} with "
            "`salespilot tokens revoke ID`"
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Tokens in ``<state_dir>/tokens.json``; re-read when the file changes (revocation is live)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._by_hash: dict[str, TokenRecord] = {}

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> TokenStore:
        return cls(Path(state_dir) / "tokens.json")

    # -- persistence --------------------------------------------------------------------
    def _read(self) -> list[TokenRecord]:
        if not self.path.exists():
            return []
        raw = json.loads(self.path.read_text(encoding="utf-8") or "[]")
        return [TokenRecord(**r) for r in raw]

    def _write(self, records: list[TokenRecord]) -> None:
        # whole: a reader sees the old or the new file, never half
        write_json(self.path, [asdict(r) for r in records], mode=0o600, indent=2)

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            self._by_hash = {r.token_hash: r for r in self._read()}
            self._mtime = mtime

    # -- public API ---------------------------------------------------------------------
    def create(
        self,
        *,
        role: str,
        rep_id: str | None = None,
        team: str | None = None,
        name: str = "",
    ) -> tuple[str, TokenRecord]:
        """Create a token; returns ``(secret, record)``. The secret is never stored."""
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if role == "rep" and not rep_id:
            raise TokenError("a rep token needs --rep REP_ID (the rep whose list it may read)")
        if role == "manager" and not team:
            raise TokenError("a manager token needs --team TEAM (the team it may read)")
        if role != "rep":
            rep_id = None if role == "admin" else rep_id
        if role != "manager":
            team = None
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(
            token_id="tok_" + secrets.token_hex(4),
            token_hash=hash_token(secret),
            role=role,  # type: ignore[arg-type]
            rep_id=rep_id,
            team=team,
            name=name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._lock:
            records = self._read()
            records.append(record)
            self._write(records)
            self._mtime = None
        return secret, record

    def list(self, *, include_revoked: bool = False) -> list[TokenRecord]:
        records = self._read()
        return [r for r in records if include_revoked or r.active]

    def revoke(self, token_id: str) -> TokenRecord:
        with self._lock:
            records = self._read()
            for i, r in enumerate(records):
                if r.token_id == token_id:
                    if r.active:
                        records[i] = TokenRecord(
                            **{
                                **asdict(r),
                                "revoked_at": datetime.now(UTC).isoformat(timespec="seconds"),
                            }
                        )
                        self._write(records)
                        self._mtime = None
                    return records[i]
        raise TokenError(f"no token with id {token_id!r}; see `salespilot tokens list`")

    def verify(self, secret: str) -> Principal | None:
        """The principal of an active token, or None for unknown/revoked ones."""
        return self.verify_hash(hash_token(secret))

    def verify_id(self, token_id: str) -> Principal | None:
        """The principal of the active token with this id (what a calendar key names)."""
        with self._lock:
            self._refresh()
            record = next((r for r in self._by_hash.values() if r.token_id == token_id), None)
        if record is None or not record.active:
            return None
        return record.principal()

    def verify_hash(self, token_hash: str) -> Principal | None:
        """:meth:`verify` from the token's hash (what a page session holds, never the token)."""
        with self._lock:
            self._refresh()
            record = self._by_hash.get(token_hash)
        if record is None or not record.active:
            return None
        return record.principal()


def signing_key(state_dir: Path, configured: str | None = None) -> str:
    """The service's signing key (page sessions, calendar keys): ``configured``, else a random
    key created once in ``<state_dir>/web-session.key``."""
    if configured:
        return configured
    path = Path(state_dir) / "web-session.key"
    if not path.exists():
        write_text(path, secrets.token_urlsafe(32), mode=0o600)
    return path.read_text(encoding="utf-8").strip()


class CalendarKeys:
    """Keys for subscribing to ``/v1/reps/{rep_id}/calendar.ics?key=...`` without a header.

    A key is ``{rep_id, token_id}`` signed with itsdangerous: it cannot be forged or moved to
    another rep, carries no secret, and lives as long as the token it was issued from (revoke
    that token with ``salespilot tokens revoke`` to end the subscription). The scope is checked
    again on each read, so it never grants more than the token would."""

    def __init__(self, secret: str, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._signer = URLSafeSerializer(secret, salt="salespilot-calendar")

    def key(self, principal: Principal, rep_id: str) -> str:
        return self._signer.dumps({"r": rep_id, "t": principal.token_id})

    def principal(self, key: str, rep_id: str) -> Principal | None:
        """Who issued ``key`` for ``rep_id``; None when forged, for another rep, or revoked."""
        try:
            data = self._signer.loads(key)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("r") != rep_id:
            return None
        return self.tokens.verify_id(str(data.get("t", "")))
