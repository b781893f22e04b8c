"""Searching stored events, with the same visibility rules for every API.

What a user may find:

- a signed-in user (never anonymous);
- licence plates need the LPR right and detected objects the Playback
  right (:mod:`vidicon.services.event_rules`): a search for "everything"
  leaves them out, asking for one by id is "not found" (its images too),
  and a plate or object search without the right is Forbidden; so is the
  list of plate sources without LPR;
- the audit log (TS-API's Privacy entries): everything for administrators,
  a user's own entries for the others, known by the numeric ``userId``
  (never the sign-in name: a new account may reuse a deleted one's name);
- linked channels of the events found (plates, calls) and of plate sources
  are only those the user may see;
- a user limited to some channels finds only those channels' events and
  the events of no channel (system log, pushed plates without a channel);
  naming another channel is Forbidden. An event the user may not see is
  "not found" when asked for by id.

Plate sources (TS-API ``lprSrc``) come from the register kept from the
plate events themselves; similar plates are ranked by :mod:`vidicon.core.plates`
in a worker thread (it compares up to ``SIMILAR_SCAN`` plates; the keyword
is at most ``plates.MAX_KEYWORD`` characters, longer is InvalidInput).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from vidicon.base.errors import InvalidInput, NotFound, Unauthorized
from vidicon.core import plates
from vidicon.core.events import Event, EventKind, EventPage, EventQuery
from vidicon.core.rights import Right
from vidicon.db.lpr_sources import LprSource, LprSourceRegister
from vidicon.services import event_rules
from vidicon.services.auth import User
from vidicon.services.events import EventService
from vidicon.storage.event_images import EventImages

EVERY_KIND = frozenset(EventKind)
PLATES = frozenset({EventKind.LPR})
OBJECTS = frozenset({EventKind.OBJECT})
SIMILAR_SCAN = 50_000  # distinct plates compared at most, the most recent first
AUDIT_USER = "userId"  # the attribute of audit events that holds their user's id


class EventSearch:
    def __init__(
        self, events: EventService, sources: LprSourceRegister, images: EventImages
    ) -> None:
        self.events = events
        self.sources = sources
        self.images = images

    # --- searches ----------------------------------------------------------

    async def search(self, user: User, query: EventQuery) -> EventPage:
        """Events matching ``query`` among those ``user`` may see."""
        page = await self.events.search(self.visible(user, query))
        shown = [event_rules.shown(user, e) for e in page.events]
        return dataclasses.replace(page, events=shown)

    async def plates(self, user: User, query: EventQuery) -> EventPage:
        """Licence plate events (the LPR right)."""
        _signed_in(user)
        user.require(Right.LPR)
        return await self.search(user, dataclasses.replace(query, kinds=PLATES))

    def check_objects(self, user: User) -> None:
        """Unauthorized / Forbidden unless ``user`` may search objects (Playback)."""
        _signed_in(user)
        user.require(Right.PLAYBACK)

    async def objects(self, user: User, query: EventQuery) -> EventPage:
        """Detected objects (the Playback right)."""
        self.check_objects(user)
        return await self.search(user, dataclasses.replace(query, kinds=OBJECTS))

    async def similar_plates(self, user: User, keyword: str, limit: int) -> list[str]:
        """Stored plates similar to ``keyword``, best first (the LPR right)."""
        _signed_in(user)
        user.require(Right.LPR)
        keyword = keyword.strip()
        too_long = max(len(keyword), len(plates.normal(keyword))) > plates.MAX_KEYWORD
        if not keyword or too_long:
            raise InvalidInput(f"keyword must be 1-{plates.MAX_KEYWORD} characters", "keyword")
        query = self.visible(user, EventQuery(kinds=PLATES))
        seen = await self.events.store.labels(query, SIMILAR_SCAN)
        # Seconds of numpy work at worst: never on the event loop.
        return await asyncio.to_thread(plates.similar, keyword, seen, limit)

    async def get(self, user: User, event_id: int) -> Event:
        """One event, if ``user`` may see it."""
        query = self.visible(user, EventQuery())
        event = await self.events.get(event_id)
        if event is None or not _admits(query, event, user):
            raise NotFound(f"event {event_id} not found")
        return event_rules.shown(user, event)

    async def image(self, user: User, event_id: int, number: int) -> Path:
        """The file of image ``number`` (from 0) of an event ``user`` may see."""
        event = await self.get(user, event_id)
        if not 0 <= number < len(event.images):
            raise NotFound(f"event {event_id} has no image {number}")
        try:
            return self.images.path(event.images[number])
        except (ValueError, FileNotFoundError):
            raise NotFound(f"image {number} of event {event_id} is not stored") from None

    async def lpr_sources(self, user: User) -> list[LprSource]:
        """The plate sources seen so far, in the order they were first seen (the
        LPR right): a channel's own reader only for a user who may see that
        channel, linked channels only those the user may see."""
        _signed_in(user)
        user.require(Right.LPR)
        await self.sources.update()
        return [
            dataclasses.replace(s, linked=tuple(c for c in s.linked if user.can_view(c)))
            for s in await self.sources.all()
            if s.channel_id is None or user.can_view(s.channel_id)
        ]

    async def source_filter(self, user: User, ids: list[int]) -> EventQuery:
        """A filter for the plates of the sources ``ids`` (unknown ids match nothing)."""
        wanted = {s.id: s for s in await self.lpr_sources(user) if s.id in ids}
        devices = frozenset(s.code for s in wanted.values() if s.channel_id is None)
        readers = frozenset(s.channel_id for s in wanted.values() if s.channel_id is not None)
        either = [EventQuery(codes=frozenset())]  # nothing, when no source is known
        if devices:
            either.append(EventQuery(attributes_in={"deviceCode": devices}))
        if readers:
            either.append(EventQuery(channels=readers, attributes={"deviceCode": None}))
        return EventQuery(either=tuple(either))

    # --- rules -------------------------------------------------------------

    def visible(self, user: User, query: EventQuery) -> EventQuery:
        """``query`` narrowed to what ``user`` may see."""
        _signed_in(user)
        kinds = query.kinds if query.kinds is not None else EVERY_KIND
        kinds = kinds - event_rules.hidden_kinds(user)
        channels = query.channels
        channelless = query.channelless
        if channels is not None:
            for channel_id in sorted(channels):
                user.require_channel(channel_id)
        elif not user.is_admin and user.channels is not None:
            channels, channelless = user.channels, True
        narrowed = dataclasses.replace(
            query,
            kinds=frozenset(kinds) if query.kinds is not None or kinds != EVERY_KIND else None,
            channels=channels,
            channelless=channelless,
        )
        if user.is_admin or EventKind.AUDIT not in kinds:
            return narrowed
        # (the query's own alternatives) and (not audit, or the user's own audit entries)
        others = EventQuery(kinds=kinds - {EventKind.AUDIT}, either=query.either)
        own = EventQuery(
            kinds=frozenset({EventKind.AUDIT}),
            attributes={AUDIT_USER: user.id},
            either=query.either,
        )
        return dataclasses.replace(narrowed, either=(others, own))


def _signed_in(user: User) -> None:
    if user.anonymous:
        raise Unauthorized("searching events needs credentials")


def _admits(query: EventQuery, event: Event, user: User) -> bool:
    """Whether an event passes the visibility part of ``visible``'s query."""
    if query.kinds is not None and event.kind not in query.kinds:
        return False
    channel = event.channel_id
    if query.channels is not None and channel is not None and channel not in query.channels:
        return False
    if event.kind is EventKind.AUDIT and not user.is_admin:
        owner = event.attributes.get(AUDIT_USER)
        return type(owner) is int and owner == user.id
    return True
