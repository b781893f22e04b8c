"""Device control use cases: who may move which camera, and through what.

Every command needs the Control right and access to the channel; reading a
channel's device information needs only access to it. The mechanism is
chosen per channel: a channel with a ``device`` (an ONVIF address) is an
ONVIF camera, signed in with the main stream's credentials; a simulated
camera (``sim:``) has a virtual head; anything else has no controllable
device (code -2). ONVIF connections are kept per channel and replaced when
the address or credentials change.

Preset lists are cached per channel (TS-API's ``list`` answers from the
cache, ``reload`` asks the camera). Preset names given here are kept by the
server and shown over the camera's own, as the spec has it (cameras accept
few characters); they live as long as the process. When a channel's device
setting is removed or changed, its old connection is closed and its cached
presets dropped.

``info`` asks all the channels' devices at once under one deadline, and
remembers a device's failure for ``FAILURE_TTL_S``: one dead or wrongly
addressed camera then costs its callers (``/api/channel/info``, the enum's
caps, every verbose status subscription) nothing until it is retried, or
until ``reload`` asks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from vidicon.base.errors import NotFound
from vidicon.core.channel import ChannelSettings
from vidicon.core.rights import Right
from vidicon.core.sources import parse_source
from vidicon.media.control import (
    BadParameter,
    Caps,
    Device,
    DeviceError,
    DeviceInfo,
    NotReady,
    Preset,
    Relay,
    Unsupported,
)
from vidicon.media.control.onvif import OnvifDevice
from vidicon.media.control.simulated import SimulatedDevice
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.services.runtime import Runtime

__all__ = [
    "ChannelDevice",
    "DeviceControlService",
    "DeviceError",
    "DeviceInfo",
    "Preset",
    "Relay",
]

log = logging.getLogger(__name__)
MAX_TOKEN = 64
MAX_NAME = 128
INFO_TIMEOUT_S = 15.0  # all of one info call's devices together
FAILURE_TTL_S = 30.0  # how long a device's failed info is answered from memory


@dataclass(frozen=True, slots=True)
class ChannelDevice:
    """One channel's answer to ``info``: the device, or why there is none."""

    channel_id: int
    info: DeviceInfo | None
    error: DeviceError | None = None


def _check_token(token: str, what: str = "preset token") -> str:
    if not token or len(token) > MAX_TOKEN or any(ord(c) < 32 for c in token):
        raise BadParameter(f"{what} must be 1-{MAX_TOKEN} printable characters")
    return token


def _speed(value: float, what: str) -> float:
    if not -1.0 <= value <= 1.0:  # NaN fails too
        raise BadParameter(f"{what} must be from -1 to 1")
    return value


async def _close(device: OnvifDevice | None) -> None:
    if device is not None:
        await device.close()


class DeviceControlService:
    def __init__(self, channels: ChannelService, runtime: Runtime) -> None:
        self.channels = channels
        self.runtime = runtime
        self._onvif: dict[int, tuple[tuple[object, ...], OnvifDevice]] = {}
        self._presets: dict[int, list[Preset]] = {}
        self._names: dict[int, dict[str, str]] = {}
        self._identity: dict[int, object] = {}  # what the caches above belong to
        # channel -> (monotonic expiry, the device that failed, its error)
        self._failed: dict[int, tuple[float, Device, DeviceError]] = {}
        self._lock = asyncio.Lock()

    async def forget(self, channel_id: int) -> None:
        """Drop what is kept for a channel (it was deleted), closing its connection."""
        async with self._lock:
            old = self._drop(channel_id)
        await _close(old)

    def _drop(self, channel_id: int) -> OnvifDevice | None:
        """Forget the channel's ONVIF connection and caches (lock held); the caller
        closes the connection returned once the lock is released (closing waits
        for the camera's command in flight, which must not hold up other channels)."""
        known = self._onvif.pop(channel_id, None)
        for cache in (self._presets, self._names, self._identity, self._failed):
            cache.pop(channel_id, None)
        return None if known is None else known[1]

    def _same_device(self, channel_id: int, identity: object) -> None:
        """Forget cached presets when a channel's camera is another one now."""
        if self._identity.get(channel_id) is not identity:
            self._presets.pop(channel_id, None)
            self._names.pop(channel_id, None)
            self._identity[channel_id] = identity

    async def close(self) -> None:
        for _, device in self._onvif.values():
            await device.close()
        self._onvif.clear()
        self._failed.clear()

    # --- choosing the device ----------------------------------------------

    async def _settings(self, channel_id: int) -> ChannelSettings:
        return await self.channels.settings(channel_id)  # NotFound: invalid channel

    async def _device(self, channel_id: int, settings: ChannelSettings) -> Device:
        if settings.device is None and channel_id in self._onvif:
            async with self._lock:  # the device setting was removed
                old = self._drop(channel_id)
            await _close(old)
        if settings.device is not None:
            main = parse_source(settings.main.url, settings.main.username, settings.main.password)
            host, port = settings.device.address
            key = (host, port, main.username, main.password)
            async with self._lock:
                known = self._onvif.get(channel_id)
                if known is not None and known[0] == key:
                    return known[1]
                old = self._drop(channel_id)  # another address or other credentials now
                device = OnvifDevice(host, port, main.username, main.password)
                self._onvif[channel_id] = (key, device)
                self._same_device(channel_id, device)
            await _close(old)
            return device
        if parse_source(settings.main.url).kind == "simulated":
            head = self.runtime.head(channel_id)
            if head is None:
                raise NotReady(f"channel {channel_id} is not running")
            self._same_device(channel_id, head)
            return SimulatedDevice(head)
        raise Unsupported(f"channel {channel_id} has no controllable device")

    async def _control(self, user: User, channel_id: int) -> Device:
        """The device of a channel the user may control (Forbidden, NotFound, DeviceError)."""
        user.require(Right.CONTROL)
        user.require_channel(channel_id)
        return await self._device(channel_id, await self._settings(channel_id))

    # --- information --------------------------------------------------------

    async def info(
        self, user: User, channel_ids: list[int] | None, reload: bool = False
    ) -> list[ChannelDevice]:
        """Device information of the channels the user may see (all when None)."""
        wanted = channel_ids if channel_ids is not None else await self.channels.ids()
        visible = [c for c in wanted if user.can_view(c)]
        found = await asyncio.gather(*(self._info_of(c, reload) for c in visible))
        return [item for item in found if item is not None]

    async def _info_of(self, channel_id: int, reload: bool) -> ChannelDevice | None:
        """One channel's answer to ``info``; None for a channel that does not exist."""
        try:
            settings = await self._settings(channel_id)
        except NotFound:
            return None
        try:
            device = await self._device(channel_id, settings)
        except Unsupported:
            kind = parse_source(settings.main.url).kind
            return ChannelDevice(channel_id, DeviceInfo(kind, Caps()))
        except DeviceError as exc:
            return ChannelDevice(channel_id, None, exc)
        failed = self._failed.get(channel_id)
        fresh = failed is not None and failed[1] is device and failed[0] > time.monotonic()
        if fresh and not reload:
            assert failed is not None
            return ChannelDevice(channel_id, None, failed[2])
        try:
            async with asyncio.timeout(INFO_TIMEOUT_S):
                info = await device.info(reload)
        except TimeoutError:
            error: DeviceError = NotReady(f"channel {channel_id}: the device does not answer")
        except DeviceError as exc:
            error = exc
        else:
            self._failed.pop(channel_id, None)
            return ChannelDevice(channel_id, info)
        log.warning("channel %d: device information: %s", channel_id, error)
        self._failed[channel_id] = (time.monotonic() + FAILURE_TTL_S, device, error)
        return ChannelDevice(channel_id, None, error)

    # --- pan, tilt, zoom, lens ----------------------------------------------

    async def move(self, user: User, channel_id: int, pan: float, tilt: float) -> None:
        device = await self._control(user, channel_id)
        pan, tilt = _speed(pan, "pan"), _speed(tilt, "tilt")
        await (device.stop() if pan == tilt == 0 else device.move(pan, tilt))

    async def zoom(self, user: User, channel_id: int, speed: float) -> None:
        device = await self._control(user, channel_id)
        await device.zoom(_speed(speed, "zoom"))

    async def focus(self, user: User, channel_id: int, speed: float) -> None:
        device = await self._control(user, channel_id)
        await device.focus(_speed(speed, "focus"))

    async def iris(self, user: User, channel_id: int, speed: float) -> None:
        device = await self._control(user, channel_id)
        await device.iris(_speed(speed, "iris"))

    async def stop(self, user: User, channel_id: int) -> None:
        await (await self._control(user, channel_id)).stop()

    async def home(self, user: User, channel_id: int) -> None:
        await (await self._control(user, channel_id)).home()

    # --- presets --------------------------------------------------------------

    def _named(self, channel_id: int, presets: list[Preset]) -> list[Preset]:
        names = self._names.get(channel_id, {})
        return [Preset(p.token, names.get(p.token, p.name)) for p in presets]

    async def presets(self, user: User, channel_id: int, reload: bool = False) -> list[Preset]:
        """The cached preset list (read from the camera the first time, or on ``reload``)."""
        device = await self._control(user, channel_id)
        if reload or channel_id not in self._presets:
            self._presets[channel_id] = await device.presets()
        return self._named(channel_id, self._presets[channel_id])

    async def set_preset(
        self, user: User, channel_id: int, token: str | None, name: str | None
    ) -> Preset:
        """The current position as preset ``token`` (None: a new one the camera names)."""
        device = await self._control(user, channel_id)
        if token is not None:
            _check_token(token)
        if name is not None and (not name.strip() or len(name) > MAX_NAME):
            raise BadParameter(f"name must be 1-{MAX_NAME} characters")
        # The camera gets a name it can store; the server keeps the one asked for.
        camera_name = name if name is None or (name.isascii() and name.isprintable()) else None
        made = await device.set_preset(token, camera_name)
        shown = name or made.name
        if name is not None:
            self._names.setdefault(channel_id, {})[made.token] = name
        cached = [p for p in self._presets.get(channel_id, []) if p.token != made.token]
        self._presets[channel_id] = [*cached, Preset(made.token, shown)]
        return Preset(made.token, shown)

    async def remove_preset(self, user: User, channel_id: int, token: str) -> None:
        device = await self._control(user, channel_id)
        await device.remove_preset(_check_token(token))
        self._names.get(channel_id, {}).pop(token, None)
        if channel_id in self._presets:
            self._presets[channel_id] = [p for p in self._presets[channel_id] if p.token != token]

    async def goto_preset(self, user: User, channel_id: int, token: str) -> None:
        device = await self._control(user, channel_id)
        await device.goto_preset(_check_token(token))

    # --- outputs, reboot ------------------------------------------------------

    async def relays(self, user: User, channel_id: int) -> list[Relay]:
        return await (await self._control(user, channel_id)).relays()

    async def set_relay(self, user: User, channel_id: int, token: str, active: bool) -> None:
        device = await self._control(user, channel_id)
        await device.set_relay(_check_token(token, "relay token"), active)

    async def set_aux(self, user: User, channel_id: int, index: int, on: bool) -> None:
        await (await self._control(user, channel_id)).set_aux(index, on)

    async def reboot(self, user: User, channel_id: int) -> None:
        await (await self._control(user, channel_id)).reboot()
        log.info("channel %d: camera reboot asked by %s", channel_id, user.username)
