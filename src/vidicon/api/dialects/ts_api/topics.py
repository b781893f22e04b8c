"""TS-API real-time topics: the request's parameters and the JSON messages built from the bus.

Translation only. The bus's events and state changes become the spec's
messages (``/wsapi/subscribeEvents``); names, times and texts follow the
spec, and nothing here decides who may see what (``EventAccess`` does).

Topic sources in Vidicon:

- ``channelStatus``: ``StateTopic.CAMERA`` (the status feed); each connection
  keeps the last value per channel and says what changed (``statusChanged``,
  ``nameChanged``, ``videoSrcModified``, ``videoStreamReady``,
  ``channelAdded``, ``channelRemoved``);
- ``recordingStatus``: ``StateTopic.RECORDING``; ``motionChanges``:
  ``StateTopic.MOTION``, sent at most once per ``MOTION_BATCH_S``;
- ``LPR``, ``emergencyCall``, ``systemEvent``, ``object``: the events of that kind;
- ``parkingCount``, ``packing``, ``bodyTemperature``: Vidicon has no parking
  counters, packing events or thermal cameras; the topics are accepted,
  ``parkingCount`` answers its initial message with no lots, then all stay quiet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from starlette.datastructures import QueryParams

from vidicon.api.dialects.ts_api import event_types
from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.lang import ENGLISH, language, text
from vidicon.api.dialects.ts_api.status_texts import MESSAGES as STATUS_TEXTS
from vidicon.base.errors import InvalidInput
from vidicon.core.events import Event, EventKind, JsonValue, StateChange, StateTopic
from vidicon.core.status import ChannelStatus

TOPICS = (
    "channelStatus", "LPR", "emergencyCall", "systemEvent", "motionChanges", "parkingCount",
    "packing", "recordingStatus", "object", "bodyTemperature",
)  # fmt: skip
OBJECT_TYPES = ("face", "human", "vehicle", "bodyTemperature")
MOTION_BATCH_S = 1.0
_BY_LOWER = {t.lower(): t for t in TOPICS}
_KINDS = {
    "LPR": EventKind.LPR,
    "emergencyCall": EventKind.EMERGENCY_CALL,
    "systemEvent": EventKind.SYSTEM,
    "object": EventKind.OBJECT,
}
_STATES = {
    "channelStatus": StateTopic.CAMERA,
    "motionChanges": StateTopic.MOTION,
    "recordingStatus": StateTopic.RECORDING,
}
# Vidicon knows no PTZ or I/O of its cameras yet: every capability is off.
CAPS: dict[str, bool | int] = {
    "pantilt": False, "zoom": False, "focus": False, "iris": False, "home": False,
    "maxPreset": 0, "aux": 0, "digitalInputs": 0, "relayOutputs": 0, "reboot": False,
}  # fmt: skip
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscribe:
    topics: tuple[str, ...]
    channels: frozenset[int] | None = None
    object_types: frozenset[str] | None = None  # None: every type
    verbose: bool = False
    lang: str = ENGLISH

    @property
    def kinds(self) -> frozenset[EventKind]:
        return frozenset(_KINDS[t] for t in self.topics if t in _KINDS)

    @property
    def states(self) -> frozenset[StateTopic]:
        return frozenset(_STATES[t] for t in self.topics if t in _STATES)


def parse_subscribe(params: QueryParams) -> Subscribe:
    """The query of ``subscribeEvents``; InvalidInput for a missing or unknown topic."""
    raw = [t.strip() for t in (params.get("topics") or "").split(",") if t.strip()]
    if not raw:
        raise InvalidInput("topics is required", "topics")
    topics: list[str] = []
    for name in raw:
        topic = _BY_LOWER.get(name.lower())
        if topic is None:
            raise InvalidInput(f"unsupported topic {name[:40]!r}", "topics")
        if topic not in topics:
            topics.append(topic)
    object_types = None
    kinds_text = params.get("objectType")
    if kinds_text and kinds_text.strip():
        wanted = {t.strip() for t in kinds_text.split(",") if t.strip()}
        unknown = sorted(wanted - set(OBJECT_TYPES))
        if unknown:
            raise InvalidInput(f"unsupported objectType {unknown[0][:40]!r}", "objectType")
        object_types = frozenset(wanted)
    channels = tr.parse_channels(params.get("ch"))
    return Subscribe(
        topics=tuple(topics),
        channels=None if channels is None else frozenset(channels),
        object_types=object_types,
        verbose=tr.flag(params.get("verbose")),
        lang=language(params.get("lang")),
    )


# The server side of one connection: channel names and live sources on demand.
Names = Callable[[], Mapping[int, str]]
Sources = Callable[[int], list[dict[str, Any]]]


@dataclass
class Translator:
    """Builds one connection's messages; remembers what it told the client."""

    request: Subscribe
    zone: tzinfo
    http_base: str  # http://host:port of the server as the client reached it
    names: Names
    sources: Sources
    can_view: Callable[[int], bool]
    # Each channel's camera capabilities (verbose channelStatus), read when the
    # subscription starts; none for a channel that appears later.
    caps: dict[int, Message] = field(default_factory=dict)
    cameras: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    motion_sent: dict[int, bool] = field(default_factory=dict)
    motion_pending: dict[int, bool] = field(default_factory=dict)

    def time(self, us: int) -> str:
        return tr.format_time(us, self.zone)

    # --- first messages --------------------------------------------------------------

    def initial(
        self,
        now_us: int,
        channels: list[int],
        state: Mapping[StateTopic, Mapping[int, JsonValue]],
    ) -> list[Message]:
        """What the spec sends right after the subscriber id, in the order of the topics."""
        out: list[Message] = []
        stamp = self.time(now_us)
        for topic in self.request.topics:
            if topic == "channelStatus":
                cameras = state.get(StateTopic.CAMERA, {})
                names = self.names()
                items = []
                for cid in channels:
                    # A channel the status feed has not read yet is connecting.
                    value = cameras.get(cid) or {
                        "status": int(ChannelStatus.CONNECTING),
                        "name": names.get(cid, ""),
                        "video": False,
                        "source": 0,
                    }
                    self.cameras[cid] = value
                    items.append(self._channel_item(cid, value))
                out.append(_head(stamp, "channelStatus", "currentStatus") | {"channel": items})
            elif topic == "motionChanges":
                motion = state.get(StateTopic.MOTION, {})
                self.motion_sent = {cid: _motion(motion.get(cid)) for cid in channels}
                updated = [{"chid": c, "motion": m} for c, m in self.motion_sent.items()]
                out.append({"topic": "motionChanges", "updated": updated})
            elif topic == "recordingStatus":
                recording = state.get(StateTopic.RECORDING, {})
                items = [self._recording_item(c, recording.get(c)) for c in channels]
                out.append(_head(stamp, "recordingStatus", "currentStatus") | {"channel": items})
            elif topic == "parkingCount":
                out.append({"timestamp": stamp, "topic": "parkingCount", "updated": []})
        return out

    # --- changes ---------------------------------------------------------------------

    def translate(self, item: Event | StateChange) -> list[Message]:
        if isinstance(item, StateChange):
            return self._state(item)
        if item.kind is EventKind.LPR and "LPR" in self.request.topics:
            return [self._lpr(item)]
        if item.kind is EventKind.EMERGENCY_CALL and "emergencyCall" in self.request.topics:
            return [self._call(item)]
        if item.kind is EventKind.SYSTEM and "systemEvent" in self.request.topics:
            return [self._system(item)]
        if item.kind is EventKind.OBJECT and "object" in self.request.topics:
            wanted = self.request.object_types
            if wanted is None or (item.label or "") in wanted:
                return [self._object(item)]
        return []

    def motion_batch(self) -> Message | None:
        """The channels whose motion changed since the last batch, or None."""
        updated = [
            {"chid": cid, "motion": value}
            for cid, value in sorted(self.motion_pending.items())
            if self.motion_sent.get(cid) != value
        ]
        self.motion_sent.update(self.motion_pending)
        self.motion_pending.clear()
        return {"topic": "motionChanges", "updated": updated} if updated else None

    def ping(self, now_us: int) -> Message:
        return {"topic": "ping", "timestamp": self.time(now_us)}

    def _state(self, change: StateChange) -> list[Message]:
        key, value, stamp = change.key, change.value, self.time(change.at_us)
        if change.topic is StateTopic.MOTION:
            if value is not None:
                self.motion_pending[key] = _motion(value)
            return []
        if change.topic is StateTopic.RECORDING:
            if value is None:
                return []
            item = self._recording_item(key, value)
            return [_head(stamp, "recordingStatus", "statusChanged") | {"channel": [item]}]
        return self._camera(key, value, stamp)

    def _camera(self, key: int, value: JsonValue, stamp: str) -> list[Message]:
        before = self.cameras.get(key)
        if value is None:
            if before is None:
                return []
            del self.cameras[key]
            return [_head(stamp, "channelStatus", "channelRemoved") | {"chid": key}]
        self.cameras[key] = value
        if before is None:
            return [_head(stamp, "channelStatus", "channelAdded") | {"chid": key}]
        out: list[Message] = []
        if value.get("name") != before.get("name"):
            name = str(value.get("name", ""))
            out.append(
                _head(stamp, "channelStatus", "nameChanged")
                | {"chid": key, "name": name, "displayName": f"CH{key}. {name}"}
            )
        if value.get("source") != before.get("source"):
            out.append(_head(stamp, "channelStatus", "videoSrcModified") | {"chid": key})
        if value.get("video") and not before.get("video"):
            ready = _head(stamp, "channelStatus", "videoStreamReady") | {
                "chid": key,
                "status": self._status(int(ChannelStatus.HAS_VIDEO), True),
                "src": self.sources(key),
            }
            out.append(ready)
        if value.get("status") != before.get("status"):
            status = self._status(int(value.get("status", 0)), True)
            out.append(
                _head(stamp, "channelStatus", "statusChanged") | {"chid": key, "status": status}
            )
        return out

    # --- pieces ----------------------------------------------------------------------

    def _status(self, code: int, with_message: bool) -> Message:
        if not with_message:
            return {"code": code}
        try:
            message = text(STATUS_TEXTS, ChannelStatus(code), self.request.lang)
        except (ValueError, KeyError):  # a code TS-API does not list
            message = str(code)
        return {"code": code, "message": message}

    def _channel_item(self, cid: int, value: Mapping[str, Any]) -> Message:
        status = self._status(int(value.get("status", 0)), self.request.verbose)
        if not self.request.verbose:
            return {"chid": cid, "status": status}
        title = str(value.get("name") or self.names().get(cid, ""))
        return {
            "chid": cid,
            "title": title,
            "displayName": f"CH{cid}. {title}",
            "status": status,
            "caps": dict(self.caps.get(cid, CAPS)),
            "src": self.sources(cid),
        }

    def _recording_item(self, cid: int, value: JsonValue) -> Message:
        value = value or {}
        item: Message = {
            "chid": cid,
            "streaming": bool(value.get("streaming")),
            "recording": bool(value.get("recording")),
        }
        if value.get("failureUs") is not None:
            item["timestampRecordingFailure"] = self.time(int(value["failureUs"]))
        return item

    def _linked(self, channels: Any, when_us: int | None, streams: bool) -> list[Message]:
        names = self.names()
        out = []
        for cid in channels if isinstance(channels, list) else []:
            if not isinstance(cid, int):  # EventAccess left only visible ones
                continue
            out.append(self._channel_ref(cid, names.get(cid, ""), when_us, streams))
        return out

    def _channel_ref(self, cid: int, title: str, when_us: int | None, streams: bool) -> Message:
        src = f"{self.http_base}/watch?ch={cid}"
        if when_us is not None:
            src += "&when=" + quote(self.time(when_us), safe="")
        ref: Message = {"chid": cid, "title": title, "displayName": f"CH{cid}. {title}"}
        ref["src"] = src
        if streams:
            ref["streams"] = [
                {k: s[k] for k in ("src", "type", "label", "size")} for s in self.sources(cid)
            ]
        return ref

    def _lpr(self, event: Event) -> Message:
        attrs = event.attributes
        when = event.end_us if event.end_us is not None else event.begin_us
        device = str(attrs.get("deviceCode", ""))
        out: Message = {"timestamp": self.time(when)}
        if event.channel_id is not None and self.can_view(event.channel_id):
            name = self.names().get(event.channel_id, "")
            out["chid"] = self._channel_ref(event.channel_id, name, when, False)
        linked = [c for c in attrs.get("linkedChannels", []) or [] if c != event.channel_id]
        out |= {
            "deviceCode": device,
            "deviceName": str(attrs.get("deviceName") or device),
            "linkedChannel": self._linked(linked, when, False),
            "plateNo": event.label or "",
        }
        for key in ("score", "roi", "parkingLot", "direction"):
            if attrs.get(key) is not None:
                out[key] = attrs[key]
        out["timeBegin"] = self.time(event.begin_us)
        out["topic"] = "LPR"
        return out

    def _call(self, event: Event) -> Message:
        attrs = event.attributes
        ended = event.end_us is not None
        caller = str(attrs.get("caller") or event.label or "")
        return {
            "timestamp": self.time(event.end_us if event.end_us is not None else event.begin_us),
            "caller": caller,
            "device": str(attrs.get("device", "")),
            "event": "callEnd" if ended else "callStart",
            # Calls link live video: no time in the links.
            "linkedChannel": self._linked(
                attrs.get("linkedChannels"), None, self.request.verbose and not ended
            ),
            "name": str(attrs.get("name") or caller),
            "topic": "emergencyCall",
        }

    def _system(self, event: Event) -> Message:
        """The event log's item of the event (one numbering for both)."""
        return {"topic": "systemEvent", **event_types.entry(event, self.request.lang, self.zone)}

    def _object(self, event: Event) -> Message:
        attrs = event.attributes
        out: Message = {
            "timestamp": self.time(event.begin_us),
            "chid": event.channel_id,
            "objId": attrs.get("objId", event.id),
            "type": event.label or "",
        }
        if attrs.get("parentId") is not None:
            out["parentId"] = attrs["parentId"]
        likelihood = attrs.get("likelihood")
        if likelihood is None and isinstance(attrs.get("confidence"), int | float):
            likelihood = round(float(attrs["confidence"]) * 100, 2)
        if likelihood is not None:
            out["likelihood"] = likelihood
        if isinstance(attrs.get("attributes"), dict):
            out["attributes"] = attrs["attributes"]
        out["topic"] = "object"
        return out


def _head(stamp: str, topic: str, event: str) -> Message:
    return {"timestamp": stamp, "topic": topic, "event": event}


def _motion(value: JsonValue) -> bool:
    if isinstance(value, Mapping):
        return bool(value.get("motion"))
    return bool(value)
