"""What an export is asked for and what it says: the request, the stage events,
how a task can be refused and how it can end (see :mod:`vidicon.services.export`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from vidicon.media import subtitles
from vidicon.media.subtitles import SubtitleFormat

# Subtitle formats by name, and the languages of messages and subtitles.
SUBTITLE_FORMATS: dict[str, SubtitleFormat] = {fmt: fmt for fmt in subtitles.FORMATS}
LANGUAGES: tuple[str, ...] = subtitles.LANGUAGES


class Refusal(enum.Enum):
    NO_DATA = "no_data"
    INVALID = "invalid"
    NO_SPACE = "no_space"


class ExportRefused(Exception):
    """The task cannot start; ``reason`` says why (the ``ready`` stage's status)."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Outcome(enum.Enum):
    DONE = "done"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    NO_SPACE = "no_space"
    FOOTAGE_GONE = "footage_gone"
    FAILED = "failed"
    DISCONNECTED = "disconnected"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    start_us: int
    end_us: int
    channels: tuple[int, ...] | None = None  # None: every channel the user may see
    media_size: int | None = None  # bytes a file may have at most; None: no limit
    subtitle: SubtitleFormat | None = None
    status_interval_s: float | None = None  # None: no fileWriting progress
    language: str = "en-US"
    md5: bool = False
    password: str | None = None  # files become AES-256 encrypted ZIPs
    submitter: str = ""
    recipient: str = ""
    purpose: str = ""
    client: str = ""  # the client's address, for the audit log


# --- events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    task_id: str
    channels: tuple[int, ...]
    start_us: int
    end_us: int
    media_size: int | None
    subtitle: SubtitleFormat | None
    language: str


@dataclass(frozen=True, slots=True)
class Begin:
    overall: float  # 0..1
    time_us: int  # footage time reached


@dataclass(frozen=True, slots=True)
class ChannelBegin:
    overall: float
    time_us: int
    channel_id: int
    progress: float  # 0..1 of this channel


@dataclass(frozen=True, slots=True)
class FileBegin:
    overall: float
    time_us: int
    channel_id: int
    progress: float
    fid: int
    name: str


@dataclass(frozen=True, slots=True)
class FileWriting:
    overall: float
    time_us: int
    channel_id: int
    progress: float
    fid: int


@dataclass(frozen=True, slots=True)
class Download:
    name: str
    size: int
    md5: str | None  # only when the request asked for it


@dataclass(frozen=True, slots=True)
class FileEnd:
    overall: float
    time_us: int
    channel_id: int
    progress: float
    fid: int
    ttl_ms: int
    downloads: tuple[Download, ...]


@dataclass(frozen=True, slots=True)
class TimeoutAlert:
    ttl_ms: int  # left before the task is cancelled


@dataclass(frozen=True, slots=True)
class ChannelEnd:
    overall: float
    time_us: int
    channel_id: int
    progress: float


@dataclass(frozen=True, slots=True)
class End:
    overall: float
    time_us: int
    outcome: Outcome
    detail: str


ExportEvent = (
    Ready
    | Begin
    | ChannelBegin
    | FileBegin
    | FileWriting
    | FileEnd
    | TimeoutAlert
    | ChannelEnd
    | End
)


@dataclass(frozen=True, slots=True)
class DownloadFile:
    path: Path
    name: str
    media_type: str
    size: int
