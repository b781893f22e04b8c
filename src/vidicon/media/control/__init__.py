"""Device control: PTZ, presets, relay and aux outputs, reboot of a camera.

One interface (:class:`Device`), two mechanisms: ONVIF cameras over SOAP
(:mod:`.onvif`) and the simulated camera's virtual head (:mod:`.simulated`).
Commands are fire-and-forget for the caller (the TS-API answers before the
camera has moved), so every method returns once the camera accepted the
command. Failures are :class:`DeviceError` subclasses, each with the TS-API
code the dialect translates it to; nothing here knows HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class DeviceError(Exception):
    """A command the device could not carry out; ``code`` is TS-API's."""

    code = -9
    device_status = 500  # what the device answered (HTTP status), for "deviceResponseCode"


class Unsupported(DeviceError):
    """The device has no such function (pan/tilt, focus, relays ...)."""

    code = -2
    device_status = 0


class NotReady(DeviceError):
    """The device cannot be reached, or has not started yet."""

    code = -3
    device_status = 0


class Busy(DeviceError):
    """The device is still carrying out the previous command."""

    code = -4
    device_status = 0


class BadToken(DeviceError):
    """The camera has no profile (channel token) to control."""

    code = -6
    device_status = 0


class BadParameter(DeviceError):
    """A parameter the device does not accept: an unknown preset or relay token,
    an aux output number out of range."""

    code = -8
    device_status = 400


class DeviceFault(DeviceError):
    """The device answered the command with an error."""

    code = -9


@dataclass(frozen=True, slots=True)
class Caps:
    pantilt: bool = False
    zoom: bool = False
    focus: bool = False
    iris: bool = False
    home: bool = False
    max_preset: int = 0
    aux: int = 0
    digital_inputs: int = 0
    relay_outputs: int = 0
    reboot: bool = False


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    kind: str  # "onvif", "simulated"
    caps: Caps
    details: dict[str, Any] = field(default_factory=dict)  # e.g. ONVIF basic/product


@dataclass(frozen=True, slots=True)
class Preset:
    token: str
    name: str


@dataclass(frozen=True, slots=True)
class Relay:
    token: str
    name: str


class Device(Protocol):
    """A controllable camera. Speeds are -1..1 (direction and velocity)."""

    kind: str

    async def info(self, reload: bool = False) -> DeviceInfo: ...

    async def move(self, pan: float, tilt: float) -> None: ...

    async def zoom(self, speed: float) -> None: ...

    async def focus(self, speed: float) -> None: ...

    async def iris(self, speed: float) -> None: ...

    async def stop(self) -> None: ...

    async def home(self) -> None: ...

    async def presets(self) -> list[Preset]: ...

    async def set_preset(self, token: str | None, name: str | None) -> Preset:
        """Store the current position as ``token`` (None: the camera picks one)."""
        ...

    async def remove_preset(self, token: str) -> None: ...

    async def goto_preset(self, token: str) -> None: ...

    async def relays(self) -> list[Relay]: ...

    async def set_relay(self, token: str, active: bool) -> None: ...

    async def set_aux(self, index: int, on: bool) -> None: ...

    async def reboot(self) -> None: ...

    async def close(self) -> None: ...
