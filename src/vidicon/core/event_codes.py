"""The codes inside the event kinds the server itself produces.

``Event.code`` is free text so that detectors and integrators can add their
own; the codes below are the ones Vidicon's own feeds use, named once here so
that every dialect maps the same names (TS-API's system log numbers, its
channel status messages, ...).
"""

from __future__ import annotations

from enum import StrEnum

from vidicon.core.status import ChannelStatus


class SystemCode(StrEnum):
    """``EventKind.SYSTEM``: the server's own log."""

    STARTUP = "startup"
    SHUTDOWN = "shutdown"
    ABNORMAL_SHUTDOWN = "abnormalShutdown"  # found at start-up: the last run never shut down
    STORAGE_READY = "storageReady"  # attributes: storagePath, freeBytes
    STORAGE_FULL = "storageFull"  # free space fell under the guard; attributes: freeBytes
    STORAGE_ERROR = "storageError"  # the storage could not be read; attributes: error
    FOOTAGE_DELETED = "footageDeleted"  # retention; attributes: segments, bytes


class CameraCode(StrEnum):
    """``EventKind.CAMERA_STATUS`` beside the status names of :func:`status_code`."""

    ADDED = "added"
    REMOVED = "removed"
    RENAMED = "renamed"  # attributes: name, previous
    SOURCE_CHANGED = "sourceChanged"


class RecordingCode(StrEnum):
    """``EventKind.RECORDING_STATUS``."""

    STARTED = "started"
    STOPPED = "stopped"
    FAILED = "failed"


def status_code(status: int) -> str:
    """The event code of a camera status: ``connected``, ``noNetwork``, ``status7``..."""
    try:
        name = ChannelStatus(status).name
    except ValueError:
        return f"status{status}"
    first, *rest = name.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)
