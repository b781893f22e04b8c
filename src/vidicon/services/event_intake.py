"""Events pushed in from outside: licence plates and emergency calls.

External recognisers and call devices report through an API (TS-API's
``POST /api/push``); each report becomes an event on the bus, stored and
searchable like the server's own. Rules:

- plates need the LPR right (they feed the plate log that right guards);
  calls need any signed-in user; linked channels must be channels the user
  may see;
- a report is checked whole before anything is stored, so a bad item in a
  batch stores none of it;
- an emergency call is one lasting event: ``callStart`` begins it, the next
  ``callEnd`` from the same caller code finishes it (found in the store, so
  a restart in between does not split it). A second start of a call that is
  still open is the same call; an end with no open call is kept as a call
  that ended when it was reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidicon.base.errors import InvalidInput, Unauthorized
from vidicon.core.clock import Clock
from vidicon.core.events import Event, EventKind, EventQuery, JsonValue
from vidicon.core.rights import Right
from vidicon.services.auth import User
from vidicon.services.events import EventService

PLATE_CODE = "plate"
CALL_CODE = "call"


@dataclass(frozen=True, slots=True)
class PlateReport:
    plate: str
    device: str  # the recognising device's (or zone's) code
    when_us: int | None = None  # None: when it was received
    first_seen_us: int | None = None  # a parked car: when it was first recognised
    channels: tuple[int, ...] = ()  # the recognising channel first, then linked ones


@dataclass(frozen=True, slots=True)
class CallReport:
    start: bool  # callStart, else callEnd
    caller: str  # the call device's location code
    device: str = ""  # the call device's model name
    when_us: int | None = None
    channels: tuple[int, ...] = ()


Report = PlateReport | CallReport


class EventIntake:
    def __init__(self, events: EventService, clock: Clock) -> None:
        self.events = events
        self.clock = clock

    def check(self, user: User, reports: list[Report]) -> None:
        """Unauthorized / Forbidden / InvalidInput before anything is stored."""
        if user.anonymous:
            raise Unauthorized("pushing events needs credentials")
        for report in reports:
            if isinstance(report, PlateReport):
                user.require(Right.LPR)
                _text(report.plate, "plateNo")
                _text(report.device, "src")
                first, when = report.first_seen_us, report.when_us
                if first is not None and when is not None and first > when:
                    raise InvalidInput("timeBegin is after when", "timeBegin")
            else:
                _text(report.caller, "src")
                _text(report.device, "device", allow_empty=True)
            for channel_id in report.channels:
                user.require_channel(channel_id)

    async def push(self, user: User, reports: list[Report]) -> list[Event]:
        """Store and fan out every report, in order; returns the events."""
        self.check(user, reports)
        out = []
        for report in reports:
            if isinstance(report, PlateReport):
                out.append(await self._plate(report))
            else:
                out.append(await self._call(report))
        return out

    async def _plate(self, report: PlateReport) -> Event:
        when = report.when_us if report.when_us is not None else self.clock.now_us()
        first = report.first_seen_us if report.first_seen_us is not None else when
        attributes: dict[str, JsonValue] = {"deviceCode": report.device}
        if report.channels:
            attributes["linkedChannels"] = list(report.channels)
        event = Event(
            EventKind.LPR,
            PLATE_CODE,
            min(first, when),
            report.channels[0] if report.channels else None,
            end_us=when,
            label=report.plate,
            attributes=attributes,
        )
        return await self.events.publish(event)

    async def _call(self, report: CallReport) -> Event:
        when = report.when_us if report.when_us is not None else self.clock.now_us()
        attributes: dict[str, JsonValue] = {
            "caller": report.caller,
            "device": report.device,
            "linkedChannels": list(report.channels),
        }
        ongoing = await self._ongoing(report.caller)
        if report.start:
            if ongoing is not None:
                return ongoing
            event = Event(
                EventKind.EMERGENCY_CALL, CALL_CODE, when, label=report.caller,
                attributes=attributes,
            )  # fmt: skip
            return await self.events.begin(event)
        if ongoing is not None:
            kept = dict(ongoing.attributes)
            if report.channels:  # the end may name other cameras; the latest list wins
                kept["linkedChannels"] = list(report.channels)
            return await self.events.finish(ongoing, when, kept)
        event = Event(
            EventKind.EMERGENCY_CALL, CALL_CODE, when, end_us=when, label=report.caller,
            attributes={**attributes, "unmatchedEnd": True},
        )  # fmt: skip
        return await self.events.publish(event)

    async def _ongoing(self, caller: str) -> Event | None:
        page = await self.events.search(
            EventQuery(kinds=frozenset({EventKind.EMERGENCY_CALL}), label=caller, limit=1)
        )
        latest = page.events[0] if page.events else None
        return latest if latest is not None and latest.end_us is None else None


def _text(value: str, name: str, allow_empty: bool = False) -> None:
    if (not value.strip() and not allow_empty) or len(value) > 64:
        raise InvalidInput(f"{name} must be 1-64 characters", name)
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{name} must be printable text", name)
