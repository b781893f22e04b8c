"""The rights that events need, in one place for every search, fetch,
image and live subscription (``EventSearch`` and ``EventAccess`` use it).

- Licence plates (``lpr``) need the LPR right.
- Detected objects (``object``: faces, people, vehicles with their
  attributes) need Playback: TS-API gates its object search and object
  topic on it ("Search and play back saved videos"), and an object event is
  a description of recorded video (who wore what, which car, a snapshot).
  Smart-rule alarms (intrusion, line crossing, loitering, people gathering)
  are alarms like motion, raised on live video: they stay visible without
  Playback, as motion, system and camera status do.
- The audit log is the caller's own entries, or all of them for an
  administrator; that rule is the services' own (a search shows one's own
  entries, a live subscription only administrators').

Linked channels (``linkedChannels`` of plates and calls) are cut down to
the channels the user may see before an event leaves a service.
"""

from __future__ import annotations

import dataclasses

from vidicon.core.events import Event, EventKind, StateChange
from vidicon.core.rights import Right
from vidicon.services.auth import User

NEEDS: dict[EventKind, Right] = {EventKind.LPR: Right.LPR, EventKind.OBJECT: Right.PLAYBACK}
LINKED = "linkedChannels"


def may_see_kind(user: User, kind: EventKind) -> bool:
    """Whether ``user`` holds the right that events of ``kind`` need (audit aside)."""
    needed = NEEDS.get(kind)
    return needed is None or user.has(needed)


def hidden_kinds(user: User) -> frozenset[EventKind]:
    """The kinds ``user`` lacks the right for."""
    return frozenset(kind for kind in NEEDS if not may_see_kind(user, kind))


def shown(user: User, event: Event) -> Event:
    """``event`` without the linked channels ``user`` may not see."""
    linked = event.attributes.get(LINKED)
    if not isinstance(linked, list) or user.is_admin or user.channels is None:
        return event
    kept = [c for c in linked if isinstance(c, int) and user.can_view(c)]
    if kept == linked:
        return event
    return dataclasses.replace(event, attributes={**event.attributes, LINKED: kept})


def shown_item(user: User, item: Event | StateChange) -> Event | StateChange:
    """:func:`shown` for a bus item (state changes pass as they are)."""
    return item if isinstance(item, StateChange) else shown(user, item)
