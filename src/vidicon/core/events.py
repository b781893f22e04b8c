"""One typed model for everything that happens: events and live state.

An :class:`Event` is stored and searchable: it has a kind, a code inside the
kind, an optional channel, a time range (``end_us`` is None while it lasts;
a moment ends when it begins),
a short searchable ``label`` (a plate number, an object type), free
``attributes`` (JSON values) and snapshot ``images`` (paths relative to the
event image directory). Dialects map kinds and codes onto their vendor's
numbers and names; nothing here is vendor-specific.

A :class:`StateChange` is not stored: it is the current value of something
per key (a channel's motion on/off, its camera or recording status) that
subscribers get first as a snapshot and then on every change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JsonValue = Any  # str | int | float | bool | None | list | dict of those

# Attributes kept for the server's own use (a face's LBPH descriptor, for
# face search) that no API answer, topic or notification shows.
FACE_DESCRIPTOR = "faceDescriptor"
PRIVATE_ATTRIBUTES = frozenset({FACE_DESCRIPTOR})


class EventKind(StrEnum):
    MOTION = "motion"
    OBJECT = "object"  # label: face | human | vehicle
    LINE_CROSSING = "lineCrossing"
    INTRUSION = "intrusion"
    LOITERING = "loitering"
    PEOPLE_GATHERING = "peopleGathering"
    LPR = "lpr"  # label: the plate number
    EMERGENCY_CALL = "emergencyCall"
    DRIVING = "driving"  # dashcam driving events; code: the Qucam event name
    CAMERA_STATUS = "cameraStatus"  # code: connected | disconnected | ...
    RECORDING_STATUS = "recordingStatus"
    SYSTEM = "system"  # code: startup | shutdown | storageReady | ...
    AUDIT = "audit"  # code: signIn | signOut | settingsChanged | export | ...
    USER = "user"  # user-defined events pushed through an API


class StateTopic(StrEnum):
    MOTION = "motion"  # key: channel id, value: bool
    CAMERA = "camera"  # key: channel id, value: status mapping
    RECORDING = "recording"  # key: channel id, value: status mapping


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    code: str
    begin_us: int
    channel_id: int | None = None
    end_us: int | None = None
    label: str | None = None
    attributes: Mapping[str, JsonValue] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.code or len(self.code) > 64:
            raise ValueError("an event code is 1-64 characters")
        if self.end_us is not None and self.end_us < self.begin_us:
            raise ValueError("an event cannot end before it begins")
        if self.label is not None and len(self.label) > 64:
            raise ValueError("an event label is at most 64 characters")

    def public_attributes(self) -> dict[str, JsonValue]:
        """The attributes an API may show: all but :data:`PRIVATE_ATTRIBUTES`."""
        return {k: v for k, v in self.attributes.items() if k not in PRIVATE_ATTRIBUTES}


@dataclass(frozen=True, slots=True)
class StateChange:
    topic: StateTopic
    key: int
    value: JsonValue
    at_us: int


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A search: every given filter must hold. ``label`` matches the whole
    label, ``label_contains`` a part of it (case-insensitive); ``attributes``
    match top-level attribute values exactly; ``attributes_in`` holds when a
    top-level text attribute is one of the given values.

    ``contains`` holds for each ``(name, item)`` when the list attribute
    ``name`` has an element that contains ``item``: equal to it (a scalar),
    or, for a mapping, an object whose keys match (scalars equal, lists
    holding every given value) - JSON containment, as PostgreSQL's ``@>``.

    ``channelless`` widens ``channels`` to events that belong to no channel
    (the system log, pushed plates). ``either`` holds when at least one of its
    queries' filters holds (their paging and order are ignored).
    """

    begin_us: int | None = None
    end_us: int | None = None
    kinds: frozenset[EventKind] | None = None
    codes: frozenset[str] | None = None
    channels: frozenset[int] | None = None
    label: str | None = None
    label_contains: str | None = None
    attributes: Mapping[str, JsonValue] = field(default_factory=dict)
    offset: int = 0
    limit: int = 50
    ascending: bool = False
    attributes_in: Mapping[str, frozenset[str]] = field(default_factory=dict)
    contains: tuple[tuple[str, JsonValue], ...] = ()
    channelless: bool = False
    either: tuple[EventQuery, ...] = ()


@dataclass(frozen=True, slots=True)
class EventPage:
    total: int
    offset: int
    events: list[Event]
