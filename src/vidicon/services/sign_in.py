"""Explicit sign-in and sign-out (native ``/v1/auth/login``, TS-API ``/api/auth``).

A sign-in always makes a new session id, and revokes the one the client
brought, so a session id planted before sign-in (session fixation) is never
the one that gets authenticated. Only explicit sign-ins and sign-outs go to
the audit trail, not every request that carries a password.
"""

from __future__ import annotations

from vidicon.base.errors import Forbidden, TooManyRequests, Unauthorized, VidiconError
from vidicon.services.audit import SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, Actor, AuditService
from vidicon.services.auth import AuthService, User


class SignInService:
    def __init__(self, auth: AuthService, audit: AuditService) -> None:
        self.auth = auth
        self.audit = audit

    async def sign_in(
        self, username: str, password: str, client: str | None, old_session: str | None
    ) -> tuple[User, str]:
        """The user and a fresh session id; the old session id (if any) is revoked."""
        if old_session:
            await self.auth.revoke_session(old_session)
        try:
            user = await self.auth.verify_password(username, password, client)
            user.require_origin(client)
        except (Unauthorized, TooManyRequests, Forbidden) as exc:
            await self.audit.record(
                SIGN_IN_FAILED, Actor(None, client), user=username[:64], reason=exc.code
            )
            raise
        session = await self.auth.create_session(user)
        await self.audit.record(SIGN_IN, Actor(user, client))
        return user, session

    async def sign_out(self, session: str | None, client: str | None) -> None:
        """Revoke the session server-side (a copy of the cookie dies with it)."""
        if not session:
            return
        try:
            user: User | None = await self.auth.verify_session(session)
        except VidiconError:
            user = None
        await self.auth.revoke_session(session)
        if user is not None:
            await self.audit.record(SIGN_OUT, Actor(user, client))
