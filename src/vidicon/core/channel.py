"""Channel settings: what a camera is and how it is recorded.

These models validate every field a client can send. Camera credentials are
accepted here and split off by the channel service; they never appear in
:class:`ChannelView` or any other output model.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vidicon.core.analytics import AnalyticsSettings
from vidicon.core.sources import SourceError, parse_source

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
StreamName = Literal["main", "sub"]


class StreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048, description="rtsp, rtsps, rtmp, rtmps, http(s), media: or sim:"
    )
    username: str | None = Field(default=None, max_length=128, description="write-only")
    password: str | None = Field(default=None, max_length=256, description="write-only")
    transport: Literal["tcp", "udp"] = "tcp"
    demuxer: Literal["auto", "native", "ffmpeg"] = Field(
        default="auto",
        description="rtsp:// uses Vidicon's own RTSP client unless 'ffmpeg' is chosen",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            parse_source(value)
        except SourceError as exc:
            raise ValueError(str(exc)) from None
        return value


class ScheduleEntry(BaseModel):
    """Record on these weekdays (0 = Monday) between start and end, local time."""

    model_config = ConfigDict(extra="forbid")

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1, max_length=7)
    start: str = "00:00"
    end: str = "24:00"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("time must be HH:MM (00:00-24:00)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleEntry:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def covers(self, local: datetime) -> bool:
        if local.weekday() not in self.days:
            return False
        now = local.strftime("%H:%M")
        return self.start <= now < self.end


class RecordingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["continuous", "scheduled", "off"] = "continuous"
    stream: StreamName = "main"
    schedule: list[ScheduleEntry] = Field(default_factory=list, max_length=64)
    timezone: str = Field(default="UTC", max_length=64)
    segment_seconds: float | None = Field(default=None, ge=2, le=600)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value[:64]!r}") from None
        return value

    def scheduled_at(self, utc: datetime) -> bool:
        local = utc.astimezone(ZoneInfo(self.timezone))
        return any(entry.covers(local) for entry in self.schedule)


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_age_days: float | None = Field(default=None, gt=0, le=36500)
    max_bytes: int | None = Field(default=None, gt=0)


_DEVICE_SCHEMES = ("onvif", "http", "https")


class DeviceSettings(BaseModel):
    """The camera as a controllable device (PTZ, relays ...): its ONVIF address.

    ``onvif://host:port`` (TS-API's form) or ``http(s)://host:port``; the
    device signs in with the main stream's username and password, so the URL
    carries no credentials.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=300, description="onvif://host:port")
    name: str | None = Field(default=None, max_length=128)

    @field_validator("url")
    @classmethod
    def _valid_device_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in _DEVICE_SCHEMES:
            raise ValueError("device url must be onvif://host:port")
        try:
            spec = parse_source("http://" + rest)
            port = urlsplit(spec.url).port
        except (SourceError, ValueError):
            raise ValueError("device url must be onvif://host:port") from None
        if spec.username or spec.password:
            raise ValueError("device url must not carry credentials; use uid and password")
        host = urlsplit(spec.url).hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        return f"{scheme.lower()}://{netloc}:{port or 80}"

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.url.split("://", 1)[1].rpartition(":")
        return host.strip("[]"), int(port)


MOTION_GRID = 32  # the motion mask is MOTION_GRID x MOTION_GRID cells


class MotionSettings(BaseModel):
    """Motion detection on the sub stream (the main one if there is none).

    ``mask`` holds 32 rows of 32 characters, '1' for a watched cell and '0'
    for an ignored one (row 0 is the top); an empty mask watches the whole
    picture. ``schedule`` lists when detection runs, in the server's local
    time; empty means always. With ``record``, motion keeps footage from
    ``pre_s`` before it starts to ``post_s`` after it ends as alarm footage,
    whatever the recording mode.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    sensitivity: int = Field(default=5, ge=0, le=10, description="0 never triggers; 10 most")
    mask: list[str] = Field(default_factory=list, max_length=MOTION_GRID)
    schedule: list[ScheduleEntry] = Field(default_factory=list, max_length=64)
    record: bool = True
    pre_s: float = Field(default=5.0, ge=0, le=30)
    post_s: float = Field(default=10.0, ge=0, le=600)

    @field_validator("mask")
    @classmethod
    def _grid(cls, rows: list[str]) -> list[str]:
        if not rows:
            return rows
        if len(rows) != MOTION_GRID:
            raise ValueError(f"mask must have {MOTION_GRID} rows (or none: whole picture)")
        for number, row in enumerate(rows):
            if len(row) != MOTION_GRID or set(row) - {"0", "1"}:
                raise ValueError(f"mask row {number} must be {MOTION_GRID} characters '0' or '1'")
        return rows

    def watched(self) -> list[list[bool]]:
        """The mask as rows of booleans, True where motion counts."""
        if not self.mask:
            return [[True] * MOTION_GRID for _ in range(MOTION_GRID)]
        return [[c == "1" for c in row] for row in self.mask]

    def scheduled_at(self, local: datetime) -> bool:
        """Whether detection runs at ``local`` (the server's local time)."""
        return not self.schedule or any(entry.covers(local) for entry in self.schedule)


class ChannelSettings(BaseModel):
    """A channel as a client creates or replaces it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    enabled: bool = True
    main: StreamSettings
    sub: StreamSettings | None = None
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    device: DeviceSettings | None = None
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    motion: MotionSettings = Field(default_factory=MotionSettings)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("name must be printable text")
        return value

    @model_validator(mode="after")
    def _stream_exists(self) -> ChannelSettings:
        if self.recording.stream == "sub" and self.sub is None:
            raise ValueError("recording.stream is 'sub' but the channel has no sub stream")
        return self


class StreamView(BaseModel):
    url: str
    has_credentials: bool
    transport: str
    demuxer: str
    source: str


class ChannelStatusView(BaseModel):
    code: int
    message: str
    detail: str = ""
    since: str | None = None
    recording: bool = False
    streaming: bool = False
    reconnects: int = 0
    last_error_code: int | None = None
    readers: int = Field(default=0, description="readers of the main stream: outputs, recorder")
    dropped_packets: int = Field(default=0, description="packets dropped for slow readers")
    dropped_readers: int = Field(default=0, description="readers disconnected for being slow")


class MotionStatusView(BaseModel):
    """Motion analysis of one channel, now and counted since it started."""

    enabled: bool = Field(description="motion detection is switched on for the channel")
    running: bool = Field(description="analysing now (enabled, channel live, in schedule)")
    stream: str | None = Field(default=None, description="the stream analysed: sub, else main")
    motion: bool = Field(default=False, description="motion in the last second")
    since: str | None = Field(default=None, description="when this analysis started")
    last_motion: str | None = None
    events: int = 0
    frames_analysed: int = 0
    frames_decoded: int = Field(default=0, description="access units decoded")
    frames_skipped: int = Field(default=0, description="access units never decoded")
    dropped_packets: int = Field(default=0, description="packets the hub dropped: too slow")
    overflows: int = 0
    lighting_changes: int = Field(default=0, description="frames rejected as lighting changes")
    analytics_frames: int = Field(default=0, description="moving frames handed to object analytics")
    analytics_skipped: int = Field(
        default=0, description="moving frames not handed: object analytics still busy or too soon"
    )


class ChannelView(BaseModel):
    """A channel as every output shows it: no credentials, ever."""

    id: int
    name: str
    enabled: bool
    main: StreamView
    sub: StreamView | None
    recording: RecordingSettings
    retention: RetentionSettings
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    motion: MotionSettings = Field(default_factory=MotionSettings)
    manual_recording: bool = False
    status: ChannelStatusView | None = None
    device: DeviceSettings | None = None
