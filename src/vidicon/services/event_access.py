"""Who may receive which live events, and the channels they may see.

Every surface that streams the bus (TS-API ``subscribeEvents``, the native
``/v1/events/ws``) opens its subscription here so the rules are the same:

- a signed-in user (never anonymous);
- licence plates (``LPR``) need the LPR right, detected objects Playback
  (:mod:`vidicon.services.event_rules`, the same rule as the searches), the
  audit log needs an administrator; asking for them explicitly without it
  is Forbidden, asking for "everything" simply leaves them out;
- a user limited to some channels gets only those channels' events and
  state; naming another channel is Forbidden. Events without a channel
  (system log, pushed plates and calls) reach everyone subscribed to them,
  without the linked channels the user may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from vidicon.base.errors import Forbidden, Unauthorized
from vidicon.core.events import EventKind, JsonValue, StateTopic
from vidicon.services import event_rules
from vidicon.services.auth import User
from vidicon.services.events import EventService, Subscription
from vidicon.services.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ChannelName:
    channel_id: int
    name: str


class EventAccess:
    def __init__(self, events: EventService, runtime: Runtime) -> None:
        self.events = events
        self.runtime = runtime

    def allowed_kinds(self, user: User, kinds: Iterable[EventKind] | None) -> frozenset[EventKind]:
        """``kinds`` (None: every kind ``user`` may see); Forbidden for one it may not."""
        if user.anonymous:
            raise Unauthorized("events need credentials")
        if kinds is None:
            return frozenset(k for k in EventKind if _may(user, k))
        wanted = frozenset(kinds)
        for kind in wanted:
            if not _may(user, kind):
                raise Forbidden(f"{kind.value} events need more rights")
        return wanted

    def allowed_channels(self, user: User, channels: Iterable[int] | None) -> frozenset[int] | None:
        """The channel filter for ``user``: ``channels`` checked, or all it may see (None: all)."""
        if user.anonymous:
            raise Unauthorized("events need credentials")
        if channels is not None:
            wanted = frozenset(channels)
            for channel_id in sorted(wanted):
                user.require_channel(channel_id)
            return wanted
        if user.is_admin or user.channels is None:
            return None
        return user.channels

    def open(
        self,
        user: User,
        *,
        kinds: Iterable[EventKind] | None,
        states: Iterable[StateTopic] = (),
        channels: Iterable[int] | None = None,
    ) -> Subscription:
        """A subscription to what ``user`` may see; close it when done."""
        return self.events.subscribe(
            kinds=self.allowed_kinds(user, kinds),
            states=states,
            channels=self.allowed_channels(user, channels),
            shown=partial(event_rules.shown_item, user),
        )

    def state(
        self, user: User, topic: StateTopic, channels: frozenset[int] | None
    ) -> dict[int, JsonValue]:
        """The current ``topic`` state of the channels ``user`` may see (within ``channels``)."""
        return {
            key: value
            for key, value in sorted(self.events.state(topic).items())
            if user.can_view(key) and (channels is None or key in channels) and value is not None
        }

    def channel_names(self, user: User, channels: frozenset[int] | None) -> list[ChannelName]:
        """The configured channels ``user`` may see (within ``channels``), in order."""
        return [
            ChannelName(cid, pipeline.settings.name)
            for cid, pipeline in sorted(self.runtime.pipelines.items())
            if user.can_view(cid) and (channels is None or cid in channels)
        ]


def _may(user: User, kind: EventKind) -> bool:
    if kind is EventKind.AUDIT:
        return user.is_admin
    return event_rules.may_see_kind(user, kind)
