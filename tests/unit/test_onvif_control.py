"""The ONVIF device mechanism against a loopback ONVIF camera (real HTTP + SOAP).

The library's real requests reach the camera: WS-Security digest sign-in,
GetServices discovery, the PTZ, DeviceIO, Imaging and device operations; the
camera's faults come back as the right device errors, and the password
never shows in an error or a log line.
"""

from __future__ import annotations

import logging

import pytest

from tests.support.onvif_camera import OnvifCamera
from vidicon.media.control import BadParameter, DeviceFault, NotReady, Preset, Unsupported
from vidicon.media.control.onvif import OnvifDevice

USER, PASSWORD = "admin", "pa55-w0rd-secret"


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
