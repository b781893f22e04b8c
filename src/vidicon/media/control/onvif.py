"""ONVIF cameras: PTZ, presets, relays, aux commands and reboot over SOAP.

Built on ``onvif-zeep-async`` (zeep + aiohttp, the client Home Assistant
uses): WS-Security digest authentication, service discovery by
``GetServices``, and the WSDLs bundled with it. A device connects lazily on
its first command and learns what the camera offers:

* Media ``GetProfiles``: the first profile with a PTZ configuration (the
  "channel token") and its video source.
* PTZ ``GetNodes``: continuous pan/tilt and zoom spaces, home support, the
  number of presets and the auxiliary commands (``tt:Wiper|On`` ...). An aux
  output is one command name with ``On``/``Off`` variants, numbered from 0 in
  the order the camera lists them.
* DeviceIO (or the device service) ``GetRelayOutputs``, ``GetDigitalInputs``.
* Imaging ``Move``/``Stop`` for continuous focus. ONVIF has no continuous
  iris command, so iris is not supported.

Commands run one at a time per camera. Credentials go only into the
WS-Security header; errors are reported without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import zeep.exceptions

from vidicon.core.sources import redact
from vidicon.media.control import (
    BadParameter,
    BadToken,
    Busy,
    Caps,
    DeviceError,
    DeviceFault,
    DeviceInfo,
    NotReady,
    Preset,
    Relay,
    Unsupported,
)

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
NS_PTZ = "http://www.onvif.org/ver20/ptz/wsdl"
NS_MEDIA = "http://www.onvif.org/ver10/media/wsdl"
NS_DEVICEIO = "http://www.onvif.org/ver10/deviceIO/wsdl"
NS_IMAGING = "http://www.onvif.org/ver20/imaging/wsdl"
_BAD_ARGUMENT = ("InvalidArgVal", "NoToken", "NoProfile", "InvalidArgs", "TooManyPresets")


def _onvif() -> Any:
    """The ``onvif`` package, imported without letting it configure the root logger
    (it calls ``logging.basicConfig`` at import)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import onvif

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return onvif


def _fault_name(fault: zeep.exceptions.Fault) -> str:
    parts = [str(fault.code or ""), str(fault.message or "")]
    subcodes = getattr(fault, "subcodes", None) or []
    parts += [str(getattr(code, "localname", code)) for code in subcodes]
    return " ".join(parts)


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    """Library and network errors as :class:`DeviceError` (no credentials in them)."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            yield
    except DeviceError:
        raise
    except zeep.exceptions.Fault as fault:
        detail = redact(_fault_name(fault))
        if any(name in detail for name in _BAD_ARGUMENT):
            raise BadParameter(f"{what}: the camera refused the argument ({detail})") from None
        error = DeviceFault(f"{what}: the camera answered with a fault ({detail})")
        error.device_status = 400 if "Sender" in detail else 500
        raise error from None
    except zeep.exceptions.TransportError as exc:
        error = DeviceFault(f"{what}: the camera answered HTTP {exc.status_code}")
        error.device_status = exc.status_code
        raise error from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise NotReady(f"{what}: the camera does not answer ({type(exc).__name__})") from None
    except Exception as exc:
        # Anything else the library raises (onvif.ONVIFError, zeep's XMLSyntaxError
        # for a web page on the ONVIF port, a lookup or parse error on an odd
        # answer) is the device answering wrongly: -9, never a 500. Only the
        # ONVIF errors' own text is kept (redacted); others give their type.
        if type(exc).__name__.startswith("ONVIF"):  # onvif.ONVIFError and its kinds
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientError | OSError | TimeoutError):
                raise NotReady(f"{what}: the camera does not answer") from None
            raise DeviceFault(f"{what}: {redact(str(exc))[:200]}") from None
        if isinstance(exc, zeep.exceptions.XMLSyntaxError):
            raise DeviceFault(f"{what}: the device's answer is not ONVIF (not SOAP XML)") from None
        log.debug("%s: unexpected %s from the ONVIF library", what, type(exc).__name__)
        raise DeviceFault(f"{what}: the device answered wrongly ({type(exc).__name__})") from None


class OnvifDevice:
    """:class:`~vidicon.media.control.Device` of one ONVIF camera."""

    kind = "onvif"

    def __init__(self, host: str, port: int, username: str | None, password: str | None) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._camera: Any = None
        self._lock = asyncio.Lock()
        self._profile: str | None = None
        self._source: str | None = None
        self._caps = Caps()
        self._aux: list[str] = []
        self._details: dict[str, Any] = {}
        self._relay_service: Any = None

    def __repr__(self) -> str:  # never the password
        return f"OnvifDevice({self.host}:{self.port})"

    # --- connection -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _session(self, what: str) -> AsyncIterator[Any]:
        """The connected camera, one command at a time."""
        try:
            async with asyncio.timeout(TIMEOUT_S * 2):
                await self._lock.acquire()
        except TimeoutError:
            raise Busy("the camera is still busy with the previous command") from None
        try:
            if self._camera is None:
                async with _translated("connect"):
                    await self._connect()
            async with _translated(what):
                yield self._camera
        finally:
            self._lock.release()

    async def _connect(self) -> None:
        onvif = _onvif()
        camera = onvif.ONVIFCamera(
            self.host, self.port, self._username, self._password, no_cache=True
        )
        try:
            await camera.update_xaddrs()
            await self._discover(camera)
        except BaseException:
            await camera.close()
            raise
        self._camera = camera
        log.info("ONVIF camera %s:%d connected: %s", self.host, self.port, self._caps)

    async def _discover(self, camera: Any) -> None:
        device = await camera.create_devicemgmt_service()
        product = await device.GetDeviceInformation()
        scopes = await device.GetScopes()
        self._details = {
            "basic": _basic(scopes, f"{self.host}:{self.port}"),
            "product": {
                "firmwareVersion": product.FirmwareVersion or "",
                "hardwareId": product.HardwareId or "",
                "manufacturer": product.Manufacturer or "",
                "model": product.Model or "",
                "serialNumber": product.SerialNumber or "",
            },
        }
        caps: dict[str, Any] = {"reboot": True}
        if NS_MEDIA in camera.xaddrs:
            media = await camera.create_media_service()
            profiles = await media.GetProfiles() or []
            chosen = next((p for p in profiles if p.PTZConfiguration is not None), None)
            chosen = chosen or (profiles[0] if profiles else None)
            if chosen is not None:
                self._profile = chosen.token
                video = chosen.VideoSourceConfiguration
                self._source = video.SourceToken if video is not None else None
                if chosen.PTZConfiguration is not None and NS_PTZ in camera.xaddrs:
                    caps.update(await self._ptz_caps(camera, chosen.PTZConfiguration.NodeToken))
        if NS_DEVICEIO in camera.xaddrs:
            self._relay_service = await camera.create_deviceio_service()
            with contextlib.suppress(zeep.exceptions.Fault):
                caps["digital_inputs"] = len(await self._relay_service.GetDigitalInputs() or [])
        else:
            self._relay_service = device
        with contextlib.suppress(zeep.exceptions.Fault):
            caps["relay_outputs"] = len(await self._relay_service.GetRelayOutputs() or [])
        caps["focus"] = NS_IMAGING in camera.xaddrs and self._source is not None
        self._caps = Caps(**caps)

    async def _ptz_caps(self, camera: Any, node_token: str | None) -> dict[str, Any]:
        ptz = await camera.create_ptz_service()
        nodes = await ptz.GetNodes() or []
        node = next((n for n in nodes if n.token == node_token), nodes[0] if nodes else None)
        if node is None:
            return {}
        spaces = node.SupportedPTZSpaces
        names: list[str] = []
        for command in node.AuxiliaryCommands or []:
            name = str(command).rsplit("|", 1)[0]
            if name not in names:
                names.append(name)
        self._aux = names
        return {
            "pantilt": bool(spaces is not None and spaces.ContinuousPanTiltVelocitySpace),
            "zoom": bool(spaces is not None and spaces.ContinuousZoomVelocitySpace),
            "home": bool(node.HomeSupported),
            "max_preset": int(node.MaximumNumberOfPresets or 0),
            "aux": len(names),
        }

    async def close(self) -> None:
        async with self._lock:
            if self._camera is not None:
                with contextlib.suppress(Exception):
                    await self._camera.close()
                self._camera = None

    # --- the interface ----------------------------------------------------

    async def info(self, reload: bool = False) -> DeviceInfo:
        if reload:
            await self.close()
        async with self._session("info"):
            return DeviceInfo(self.kind, self._caps, self._details)

    def _need(self, supported: bool, what: str) -> str:
        if not supported:
            raise Unsupported(f"the camera does not support {what}")
        if self._profile is None:
            raise BadToken("the camera has no media profile")
        return self._profile

    async def move(self, pan: float, tilt: float) -> None:
        async with self._session("move") as camera:
            profile = self._need(self._caps.pantilt, "pan and tilt")
            ptz = await camera.create_ptz_service()
            velocity = {"PanTilt": {"x": pan, "y": tilt}}
            await ptz.ContinuousMove({"ProfileToken": profile, "Velocity": velocity})

    async def zoom(self, speed: float) -> None:
        async with self._session("zoom") as camera:
            profile = self._need(self._caps.zoom, "zoom")
            ptz = await camera.create_ptz_service()
            velocity = {"Zoom": {"x": speed}}
            await ptz.ContinuousMove({"ProfileToken": profile, "Velocity": velocity})

    async def focus(self, speed: float) -> None:
        async with self._session("focus") as camera:
            self._need(self._caps.focus, "focus")
            imaging = await camera.create_imaging_service()
            if speed == 0:
                await imaging.Stop({"VideoSourceToken": self._source})
                return
            focus = {"Continuous": {"Speed": speed}}
            await imaging.Move({"VideoSourceToken": self._source, "Focus": focus})

    async def iris(self, speed: float) -> None:
        raise Unsupported("ONVIF has no continuous iris control")

    async def stop(self) -> None:
        async with self._session("stop") as camera:
            profile = self._need(self._caps.pantilt or self._caps.zoom, "pan, tilt or zoom")
            ptz = await camera.create_ptz_service()
            await ptz.Stop({"ProfileToken": profile, "PanTilt": True, "Zoom": True})
            if self._caps.focus:
                imaging = await camera.create_imaging_service()
                await imaging.Stop({"VideoSourceToken": self._source})

    async def home(self) -> None:
        async with self._session("home") as camera:
            profile = self._need(self._caps.home, "a home position")
            ptz = await camera.create_ptz_service()
            await ptz.GotoHomePosition({"ProfileToken": profile})

    async def presets(self) -> list[Preset]:
        async with self._session("presets") as camera:
            profile = self._need(self._caps.max_preset > 0, "presets")
            ptz = await camera.create_ptz_service()
            found = await ptz.GetPresets({"ProfileToken": profile}) or []
            return [Preset(str(p.token), str(p.Name or p.token)) for p in found]

    async def set_preset(self, token: str | None, name: str | None) -> Preset:
        async with self._session("set preset") as camera:
            profile = self._need(self._caps.max_preset > 0, "presets")
            ptz = await camera.create_ptz_service()
            request: dict[str, Any] = {"ProfileToken": profile}
            if token is not None:
                request["PresetToken"] = token
            if name is not None:
                request["PresetName"] = name
            answer = await ptz.SetPreset(request)
            made = str(getattr(answer, "PresetToken", answer) or token or "")
            return Preset(made, name or made)

    async def remove_preset(self, token: str) -> None:
        async with self._session("remove preset") as camera:
            profile = self._need(self._caps.max_preset > 0, "presets")
            ptz = await camera.create_ptz_service()
            await ptz.RemovePreset({"ProfileToken": profile, "PresetToken": token})

    async def goto_preset(self, token: str) -> None:
        async with self._session("go to preset") as camera:
            profile = self._need(self._caps.max_preset > 0, "presets")
            ptz = await camera.create_ptz_service()
            await ptz.GotoPreset({"ProfileToken": profile, "PresetToken": token})

    async def relays(self) -> list[Relay]:
        async with self._session("relays"):
            if not self._caps.relay_outputs:
                raise Unsupported("the camera has no relay outputs")
            found = await self._relay_service.GetRelayOutputs() or []
            return [Relay(str(r.token), str(r.token)) for r in found]

    async def set_relay(self, token: str, active: bool) -> None:
        async with self._session("relay"):
            if not self._caps.relay_outputs:
                raise Unsupported("the camera has no relay outputs")
            state = "active" if active else "inactive"
            request = {"RelayOutputToken": token, "LogicalState": state}
            await self._relay_service.SetRelayOutputState(request)

    async def set_aux(self, index: int, on: bool) -> None:
        async with self._session("aux") as camera:
            profile = self._need(bool(self._aux), "aux outputs")
            if not 0 <= index < len(self._aux):
                raise BadParameter(f"aux outputs are 0-{len(self._aux) - 1}")
            ptz = await camera.create_ptz_service()
            data = f"{self._aux[index]}|{'On' if on else 'Off'}"
            await ptz.SendAuxiliaryCommand({"ProfileToken": profile, "AuxiliaryData": data})

    async def reboot(self) -> None:
        async with self._session("reboot") as camera:
            device = await camera.create_devicemgmt_service()
            message = await device.SystemReboot()
            log.info("ONVIF camera %s:%d reboots: %s", self.host, self.port, message)
        await self.close()  # it comes back as a new session


def _basic(scopes: Any, host: str) -> dict[str, str]:
    """The ``onvif://www.onvif.org/...`` scopes as TS-API's ``basic`` item."""
    found: dict[str, str] = {}
    for scope in scopes or []:
        item = getattr(scope, "ScopeItem", scope)
        path = str(item).removeprefix("onvif://www.onvif.org/")
        key, _, value = path.partition("/")
        if key == "location":
            sub, _, value = value.partition("/")
            key = sub if sub in {"city", "country"} else "location"
        if key in {"name", "city", "country", "location", "type"} and key not in found:
            found[key] = value
    return {
        "city": found.get("city", ""),
        "country": found.get("country", ""),
        "deviceType": found.get("type", ""),
        "host": host,
        "location": found.get("location", ""),
        "name": found.get("name", ""),
    }
