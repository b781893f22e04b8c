"""Channel status codes (the TS-API list, which every dialect maps from)."""

from __future__ import annotations

from enum import IntEnum


class ChannelStatus(IntEnum):
    REBOOTING = -5
    RECONNECTING = -4
    CONNECTING = -3
    LOADING = -2
    NOT_USED = -1
    NO_RESPONSE = 0
    USED = 1
    HAS_VIDEO = 2
    CONNECTED = 200
    LOGIN_FAILED = 401
    BLOCKED = 403
    NO_NETWORK = 404
    TIMEOUT = 408
    NO_VIDEO = 410
    SERVICE_FAILURE = 503
    PLAYBACK_COMPLETE = 1000
    NO_FILE = 1404

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    ChannelStatus.REBOOTING: "On rebooting",
    ChannelStatus.RECONNECTING: "On reconnecting",
    ChannelStatus.CONNECTING: "On connecting",
    ChannelStatus.LOADING: "Loading",
    ChannelStatus.NOT_USED: "Not used",
    ChannelStatus.NO_RESPONSE: "No response",
    ChannelStatus.USED: "Used",
    ChannelStatus.HAS_VIDEO: "Has video",
    ChannelStatus.CONNECTED: "Connected",
    ChannelStatus.LOGIN_FAILED: "Camera login failed",
    ChannelStatus.BLOCKED: "Camera blocked",
    ChannelStatus.NO_NETWORK: "No network connection",
    ChannelStatus.TIMEOUT: "Camera response timeout",
    ChannelStatus.NO_VIDEO: "No video input",
    ChannelStatus.SERVICE_FAILURE: "Camera service failure",
    ChannelStatus.PLAYBACK_COMPLETE: "Playback complete",
    ChannelStatus.NO_FILE: "No file found",
}
