"""The audit trail: who signed in or out, changed settings or users, exported.

Every entry is an :class:`~vidicon.core.events.Event` of kind ``AUDIT`` on the
event bus (``app.events``), so it is stored and searchable with the other
events and reaches the event log's privacy entries and live subscribers. The
attributes say who (``uid``: the sign-in name, as TS-API's log shows it, and
``userId``; a failed sign-in names the ``user`` it tried), from where (``client``) and what
changed; never a password, a key or a camera credential: callers pass names
of changed fields, not their values, wherever a value could be secret.

Entries are stored before the request is answered (``publish``), so an
action the client was told about is always in the trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidicon.core.clock import Clock
from vidicon.core.events import Event, EventKind, EventPage, EventQuery, JsonValue
from vidicon.db.exports import ExportRecords
from vidicon.services.auth import User
from vidicon.services.events import EventService

MAX_PAGE = 500

# Audit codes (Event.code of kind AUDIT).
SIGN_IN = "signIn"
SIGN_IN_FAILED = "signInFailed"
SIGN_OUT = "signOut"
PASSWORD_CHANGED = "passwordChanged"  # noqa: S105 (an audit code)
USER_CREATED = "userCreated"
USER_UPDATED = "userUpdated"
USER_DELETED = "userDeleted"
API_KEY_CREATED = "apiKeyCreated"
API_KEY_REVOKED = "apiKeyRevoked"
SETTINGS_CHANGED = "settingsChanged"
EXPORT_STARTED = "exportStarted"
EXPORT_FINISHED = "exportFinished"

# Attribute names that must never reach the trail, whatever a caller passes.
_SECRET_KEYS = ("password", "secret", "token", "credential", "key_value")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: the user (None before sign-in) and the client address."""

    user: User | None
    client: str | None = None


class AuditService:
    def __init__(self, events: EventService, clock: Clock, exports: ExportRecords) -> None:
        self.events = events
        self.clock = clock
        self.exports = exports

    async def record(
        self, code: str, actor: Actor, channel_id: int | None = None, **what: JsonValue
    ) -> Event:
        """Store one audit entry now; ``what`` describes the action (no secrets)."""
        attributes: dict[str, Any] = {
            k: v for k, v in what.items() if not any(s in k.lower() for s in _SECRET_KEYS)
        }
        if actor.user is not None:
            # TS-API's uid is the sign-in name (its Privacy log shows it).
            attributes["uid"] = actor.user.username
            attributes["userId"] = actor.user.id
        attributes["client"] = actor.client or ""
        label = actor.user.username[:64] if actor.user is not None else None
        if label is None and isinstance(what.get("user"), str):
            label = str(what["user"])[:64]
        event = Event(
            EventKind.AUDIT,
            code,
            self.clock.now_us(),
            channel_id=channel_id,
            label=label,
            attributes=attributes,
        )
        return await self.events.publish(event)

    async def page(
        self,
        viewer: User,
        *,
        offset: int = 0,
        limit: int = 50,
        codes: frozenset[str] | None = None,
        begin_us: int | None = None,
        end_us: int | None = None,
        username: str | None = None,
    ) -> EventPage:
        """Audit entries, newest first (administrators only)."""
        viewer.require_admin()
        query = EventQuery(
            begin_us=begin_us,
            end_us=end_us,
            kinds=frozenset({EventKind.AUDIT}),
            codes=codes,
            label=username,
            offset=max(0, offset),
            limit=max(1, min(limit, MAX_PAGE)),
        )
        return await self.events.search(query)

    async def export_log(self, viewer: User, limit: int = 100) -> list[dict[str, Any]]:
        """The export log (submitter, recipient, purpose, files), newest first;
        administrators only."""
        viewer.require_admin()
        return await self.exports.recent(max(1, min(limit, MAX_PAGE)))
