"""The ONVIF device mechanism against a loopback ONVIF camera (real HTTP + SOAP).

The library's real requests reach the camera: WS-Security digest sign-in,
GetServices discovery, the PTZ, DeviceIO, Imaging and device operations; the
camera's faults come back as the right device errors, and the password
never shows in an error or a log line.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from tests.support.onvif_camera import OnvifCamera
from vidicon.app import Vidicon
from vidicon.core.channel import ChannelSettings, DeviceSettings, StreamSettings
from vidicon.media.control import BadParameter, DeviceFault, NotReady, Preset, Unsupported
from vidicon.media.control.onvif import OnvifDevice
from vidicon.services import device_control
from vidicon.services.auth import User

USER, PASSWORD = "admin", "pa55-w0rd-secret"
DEAD_RTSP = "rtsp://127.0.0.1:9/stream1"
ADMIN = User(1, "admin", True)


async def test_commands_reach_the_camera(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with OnvifCamera(USER, PASSWORD) as camera:
        device = OnvifDevice("127.0.0.1", camera.port, USER, PASSWORD)
        try:
            info = await device.info()
            assert info.kind == "onvif"
            caps = info.caps
            assert (caps.pantilt, caps.zoom, caps.home, caps.focus, caps.iris) == (
                True,
                True,
                True,
                True,
                False,
            )
            assert (caps.max_preset, caps.aux, caps.relay_outputs, caps.digital_inputs) == (
                255,
                2,
                2,
                2,
            )
            assert info.details["basic"]["name"] == "SNP-3120"
            assert info.details["basic"]["city"] == "seoul"
            assert info.details["product"]["serialNumber"] == "C5FS6V3D401101R"

            await device.move(0.5, -0.25)
            assert camera.state.velocity == {"PanTilt.x": 0.5, "PanTilt.y": -0.25}
            await device.zoom(-1.0)
            assert camera.state.velocity["Zoom.x"] == -1.0
            await device.stop()
            assert camera.state.velocity == {}
            await device.home()
            assert camera.state.at_home

            assert await device.presets() == [Preset("1", "Front Door"), Preset("2", "Garage")]
            assert await device.set_preset(None, "door") == Preset("3", "door")
            await device.set_preset("2", "Back yard")
            assert camera.state.presets["2"] == "Back yard"
            await device.goto_preset("3")
            assert camera.state.at_preset == "3"
            await device.remove_preset("1")
            assert "1" not in camera.state.presets
            with pytest.raises(BadParameter):
                await device.goto_preset("no-such")

            assert [r.token for r in await device.relays()] == ["relay-a", "relay-b"]
            await device.set_relay("relay-b", True)
            assert camera.state.relays == {"relay-a": "inactive", "relay-b": "active"}
            with pytest.raises(BadParameter):
                await device.set_relay("relay-z", True)
            # Aux outputs: the camera's command names, in its order, On/Off.
            await device.set_aux(1, True)
            await device.set_aux(0, False)
            assert camera.state.aux == ["tt:IRLamp|On", "tt:Wiper|Off"]
            with pytest.raises(BadParameter):
                await device.set_aux(2, True)
            await device.focus(0.25)
            assert camera.state.focus == 0.25
            with pytest.raises(Unsupported):
                await device.iris(0.5)
            await device.reboot()
            assert camera.state.reboots == 1
            # After a reboot the next command connects again.
            await device.home()
            assert camera.names().count("GetServices") == 2
        finally:
            await device.close()
    assert PASSWORD not in caplog.text


async def test_failures_are_device_errors_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with OnvifCamera(USER, PASSWORD, with_ptz=False) as camera:
        wrong = OnvifDevice("127.0.0.1", camera.port, USER, "not-the-password")
        with pytest.raises(DeviceFault) as refused:
            await wrong.info()
        assert "NotAuthorized" in str(refused.value) and refused.value.code == -9
        assert "not-the-password" not in str(refused.value)
        await wrong.close()

        no_ptz = OnvifDevice("127.0.0.1", camera.port, USER, PASSWORD)
        try:
            caps = (await no_ptz.info()).caps
            assert not caps.pantilt and caps.max_preset == 0 and caps.relay_outputs == 2
            with pytest.raises(Unsupported):
                await no_ptz.move(1, 0)
            with pytest.raises(Unsupported):
                await no_ptz.goto_preset("1")
        finally:
            await no_ptz.close()
        port = camera.port
    gone = OnvifDevice("127.0.0.1", port, USER, PASSWORD)  # the camera is off now
    with pytest.raises(NotReady) as down:
        await gone.home()
    assert down.value.code == -3
    await gone.close()
    assert "not-the-password" not in caplog.text and PASSWORD not in caplog.text
    assert "pa55" not in repr(gone)


async def test_a_web_page_on_the_onvif_port_is_a_device_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera's web UI where ONVIF was expected (zeep's XMLSyntaxError): -9, not a 500."""
    caplog.set_level(logging.DEBUG)
    async with OnvifCamera(USER, PASSWORD, html=True) as camera:
        device = OnvifDevice("127.0.0.1", camera.port, USER, PASSWORD)
        try:
            with pytest.raises(DeviceFault) as info:
                await device.info()
            assert info.value.code == -9 and "not ONVIF" in str(info.value)
            with pytest.raises(DeviceFault):
                await device.move(0.5, 0)
            with pytest.raises(DeviceFault):
                await device.goto_preset("1")
        finally:
            await device.close()
        assert camera.names().count("html") == 3  # each command really asked
    assert PASSWORD not in caplog.text and PASSWORD not in str(info.value)


class SilentDevice:
    """A TCP port that accepts and never answers (a hung camera); counts how many
    connections are open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.accepted = 0
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentDevice:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.accepted += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while await reader.read(4096):
                pass
        finally:
            self.open -= 1
            writer.close()


def onvif_channel(name: str, port: int, enabled: bool = False) -> ChannelSettings:
    return ChannelSettings(
        name=name,
        enabled=enabled,
        main=StreamSettings(url=DEAD_RTSP, username=USER, password=PASSWORD),
        device=DeviceSettings(url=f"onvif://127.0.0.1:{port}"),
    )


async def test_info_asks_devices_at_once_and_remembers_failures(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = vidicon_app
    monkeypatch.setattr(device_control, "INFO_TIMEOUT_S", 1.0)
    async with (
        OnvifCamera(USER, PASSWORD) as good,
        OnvifCamera(USER, PASSWORD, html=True) as web_page,
        SilentDevice() as silent,
    ):
        ids = [
            (await app.channels.create(onvif_channel(name, port))).id
            for name, port in (
                ("good", good.port),
                ("web", web_page.port),
                ("hung-1", silent.port),
                ("hung-2", silent.port),
            )
        ]
        info = await admin_client.get("/api/channel/info")
        assert info.status_code == 200, info.text
        codes = {item["chid"]: item.get("code", 0) for item in info.json()}
        assert codes == dict(zip(ids, [0, -9, -3, -3], strict=True))
        assert silent.most_open == 2  # both hung cameras were asked at the same time
        enum = await admin_client.get("/api/enum?what=channel&caps")
        assert enum.status_code == 200, enum.text

        # The failures are remembered: nobody waits on those cameras again ...
        asked, accepted = web_page.names().count("html"), silent.accepted
        again = await app.device_control.info(ADMIN, None)
        assert [item.error.code if item.error else 0 for item in again] == [0, -9, -3, -3]
        assert (web_page.names().count("html"), silent.accepted) == (asked, accepted)
        # ... until they expire, or reload asks.
        await app.device_control.info(ADMIN, [ids[1]], reload=True)
        assert web_page.names().count("html") == asked + 1
        monkeypatch.setattr(device_control, "FAILURE_TTL_S", 0.0)
        await app.device_control.info(ADMIN, [ids[1]])  # stored with a 30 s life: cached
        assert web_page.names().count("html") == asked + 1
        await app.device_control.info(ADMIN, [ids[1]], reload=True)  # stored with 0 s
        await app.device_control.info(ADMIN, [ids[1]])
        assert web_page.names().count("html") == asked + 3
        assert PASSWORD not in info.text


async def test_changed_or_removed_device_closes_the_old_connection(
    vidicon_app: Vidicon,
) -> None:
    app, control = vidicon_app, vidicon_app.device_control
    async with OnvifCamera(USER, PASSWORD) as first, OnvifCamera(USER, PASSWORD) as second:
        second.state.presets = {"9": "Other"}
        settings = onvif_channel("cam", first.port)
        ch = (await app.channels.create(settings)).id
        assert [p.token for p in await control.presets(ADMIN, ch)] == ["1", "2"]
        old = control._onvif[ch][1]
        assert old._camera is not None  # connected

        # Another address: the old connection is closed, its presets forgotten.
        await app.channels.replace(ch, onvif_channel("cam", second.port))
        assert [p.token for p in await control.presets(ADMIN, ch)] == ["9"]
        assert old._camera is None
        old = control._onvif[ch][1]

        # The device setting removed: closed too, and nothing to control.
        await app.channels.replace(ch, settings.model_copy(update={"device": None}))
        with pytest.raises(Unsupported):
            await control.home(ADMIN, ch)
        assert old._camera is None and ch not in control._onvif

        # A deleted channel: forget() closes its connection.
        await app.channels.replace(ch, settings)
        await control.home(ADMIN, ch)
        assert first.state.at_home
        old = control._onvif[ch][1]
        await control.forget(ch)
        assert old._camera is None and ch not in control._onvif
