"""The simulated camera's virtual head: pan, tilt, zoom, presets, relays, aux.

A :class:`VirtualHead` belongs to one channel and is shared by the painters
of its streams (main and sub show the same scene, as a real camera's do). Its
position moves with continuous velocities, integrated over monotonic time,
and is clamped to the ONVIF generic spaces (pan and tilt -1..1, zoom 0..1).
The painter reads :meth:`VirtualHead.view` every frame from the source
thread; commands come from the event loop, so state sits behind a lock.
:class:`SimulatedDevice` is the :class:`~vidicon.media.control.Device` over it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vidicon.media.control import (
    BadParameter,
    Caps,
    DeviceInfo,
    Preset,
    Relay,
    Unsupported,
)

UNITS_PER_S = 0.5  # pan/tilt/zoom travel per second at speed 1
MAX_PRESETS = 16
RELAYS = ("relay-1", "relay-2")
AUX_OUTPUTS = 2
CAPS = Caps(
    pantilt=True,
    zoom=True,
    focus=False,
    iris=False,
    home=True,
    max_preset=MAX_PRESETS,
    aux=AUX_OUTPUTS,
    digital_inputs=0,
    relay_outputs=len(RELAYS),
    reboot=True,
)


@dataclass(frozen=True, slots=True)
class View:
    pan: float = 0.0  # -1 (left) .. 1 (right)
    tilt: float = 0.0  # -1 (down) .. 1 (up)
    zoom: float = 0.0  # 0 (wide) .. 1 (tele)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class VirtualHead:
    """Position, velocities and outputs of one simulated camera."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._at = View()
        self._since = now()
        self._velocity = (0.0, 0.0, 0.0)
        self._presets: dict[str, tuple[str, View]] = {}
        self._next_token = 1
        self.relays = dict.fromkeys(RELAYS, False)
        self.aux = [False] * AUX_OUTPUTS
        self.reboots = 0  # the source restarts its stream when this changes

    def _settle(self) -> View:
        """The position now; velocities keep going from here (lock held)."""
        now = self._now()
        dt = now - self._since
        vp, vt, vz = self._velocity
        at = self._at
        if dt > 0 and any(self._velocity):
            at = View(
                _clamp(at.pan + vp * UNITS_PER_S * dt, -1.0, 1.0),
                _clamp(at.tilt + vt * UNITS_PER_S * dt, -1.0, 1.0),
                _clamp(at.zoom + vz * UNITS_PER_S * dt, 0.0, 1.0),
            )
        self._at, self._since = at, now
        return at

    def view(self) -> View:
        with self._lock:
            return self._settle()

    @property
    def velocity(self) -> tuple[float, float, float]:
        """Pan, tilt and zoom speeds now (-1..1)."""
        return self._velocity

    def move(self, pan: float, tilt: float) -> None:
        with self._lock:
            self._settle()
            self._velocity = (pan, tilt, self._velocity[2])

    def zoom(self, speed: float) -> None:
        with self._lock:
            self._settle()
            self._velocity = (self._velocity[0], self._velocity[1], speed)

    def stop(self) -> None:
        with self._lock:
            self._settle()
            self._velocity = (0.0, 0.0, 0.0)

    def go(self, view: View) -> None:
        with self._lock:
            self._settle()
            self._velocity = (0.0, 0.0, 0.0)
            self._at = View(
                _clamp(view.pan, -1, 1), _clamp(view.tilt, -1, 1), _clamp(view.zoom, 0, 1)
            )

    def presets(self) -> list[Preset]:
        with self._lock:
            return [Preset(token, name) for token, (name, _) in self._presets.items()]

    def set_preset(self, token: str | None, name: str | None) -> Preset:
        with self._lock:
            here = self._settle()
            if token is None:
                while str(self._next_token) in self._presets:
                    self._next_token += 1
                token = str(self._next_token)
            if token not in self._presets and len(self._presets) >= MAX_PRESETS:
                raise BadParameter(f"at most {MAX_PRESETS} presets")
            self._presets[token] = (name or token, here)
            return Preset(token, name or token)

    def remove_preset(self, token: str) -> None:
        with self._lock:
            if self._presets.pop(token, None) is None:
                raise BadParameter(f"no preset {token!r}")

    def preset_view(self, token: str) -> View:
        with self._lock:
            found = self._presets.get(token)
        if found is None:
            raise BadParameter(f"no preset {token!r}")
        return found[1]

    def reboot(self) -> None:
        """What a power cycle does: the head goes home, outputs drop, the stream restarts.
        Presets survive (they are in the camera's flash)."""
        with self._lock:
            self._velocity = (0.0, 0.0, 0.0)
            self._at, self._since = View(), self._now()
            self.relays = dict.fromkeys(RELAYS, False)
            self.aux = [False] * AUX_OUTPUTS
            self.reboots += 1


class SimulatedDevice:
    """:class:`~vidicon.media.control.Device` of a simulated camera."""

    kind = "simulated"

    def __init__(self, head: VirtualHead) -> None:
        self.head = head

    async def info(self, reload: bool = False) -> DeviceInfo:
        return DeviceInfo(self.kind, CAPS)

    async def move(self, pan: float, tilt: float) -> None:
        self.head.move(pan, tilt)

    async def zoom(self, speed: float) -> None:
        self.head.zoom(speed)

    async def focus(self, speed: float) -> None:
        raise Unsupported("the simulated camera has a fixed focus")

    async def iris(self, speed: float) -> None:
        raise Unsupported("the simulated camera has no iris")

    async def stop(self) -> None:
        self.head.stop()

    async def home(self) -> None:
        self.head.go(View())

    async def presets(self) -> list[Preset]:
        return self.head.presets()

    async def set_preset(self, token: str | None, name: str | None) -> Preset:
        return self.head.set_preset(token, name)

    async def remove_preset(self, token: str) -> None:
        self.head.remove_preset(token)

    async def goto_preset(self, token: str) -> None:
        self.head.go(self.head.preset_view(token))

    async def relays(self) -> list[Relay]:
        return [Relay(token, f"Relay {n}") for n, token in enumerate(RELAYS, start=1)]

    async def set_relay(self, token: str, active: bool) -> None:
        if token not in self.head.relays:
            raise BadParameter(f"no relay output {token!r}")
        self.head.relays[token] = active

    async def set_aux(self, index: int, on: bool) -> None:
        if not 0 <= index < AUX_OUTPUTS:
            raise BadParameter(f"aux outputs are 0-{AUX_OUTPUTS - 1}")
        self.head.aux[index] = on

    async def reboot(self) -> None:
        self.head.reboot()

    async def close(self) -> None:
        return None
