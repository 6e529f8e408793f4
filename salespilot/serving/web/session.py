"""Page sessions: a signed, expiring, HttpOnly SameSite cookie holding a token's hash, and CSRF.

Signing in checks an API token once and stores only its SHA-256 (what the token store keys
on) in a cookie signed with itsdangerous; every request re-verifies that hash against the
store, so a revoked token ends its sessions at once. Forms that change something carry a
CSRF value that must equal the one in a second signed cookie (double submit, bound to the
browser by SameSite).
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from salespilot.serving.auth import Principal, TokenStore, hash_token, signing_key
from salespilot.settings import Settings

SESSION_COOKIE = "sp_session"
CSRF_COOKIE = "sp_csrf"
CSRF_FIELD = "csrf"


class WebSessions:
    """Signs and reads the two cookies; one per app."""

    def __init__(self, settings: Settings, tokens: TokenStore) -> None:
        self.tokens = tokens
        self.max_age = settings.web_session_max_age_s
        self.secure = settings.web_cookie_secure
        key = signing_key(settings.state_dir, settings.web_session_secret)
        self._session = URLSafeTimedSerializer(key, salt="salespilot-web-session")
        self._csrf = URLSafeTimedSerializer(key, salt="salespilot-web-csrf")

    # -- session ----------------------------------------------------------------------------
    def sign_in(self, response: Response, token: str) -> Principal | None:
        """Check ``token``; on success set the session cookie and return who signed in."""
        principal = self.tokens.verify(token.strip())
        if principal is None:
            return None
        value = self._session.dumps({"h": hash_token(token.strip())})
        self._set(response, SESSION_COOKIE, value, self.max_age)
        return principal

    def sign_out(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", samesite="lax", httponly=True)

    def principal(self, request: Request) -> Principal | None:
        """Who the session belongs to; None when absent, tampered with, expired or revoked."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        return self.tokens.verify_hash(str(data.get("h", "")))

    # -- CSRF -------------------------------------------------------------------------------
    def csrf_value(self, request: Request) -> str:
        """The browser's CSRF value (from its cookie) or a new one for :meth:`keep_csrf`."""
        raw = request.cookies.get(CSRF_COOKIE)
        if raw:
            try:
                return str(self._csrf.loads(raw, max_age=self.max_age))
            except BadSignature:
                pass
        return secrets.token_urlsafe(24)

    def keep_csrf(self, response: Response, value: str) -> None:
        self._set(response, CSRF_COOKIE, self._csrf.dumps(value), self.max_age)

    def csrf_ok(self, request: Request, submitted: str | None) -> bool:
        raw = request.cookies.get(CSRF_COOKIE)
        if not raw or not submitted:
            return False
        try:
            expected = str(self._csrf.loads(raw, max_age=self.max_age))
        except BadSignature:
            return False
        return hmac.compare_digest(expected, submitted)

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
