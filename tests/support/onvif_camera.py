"""A small ONVIF camera on loopback: real HTTP and SOAP 1.2, the operations
device control uses, and state a test can check.

It answers what the ONVIF client library really sends (parsed with lxml,
WS-Security UsernameToken digest checked against the password), with SOAP
faults as a camera gives them: ``ter:NotAuthorized`` for a wrong password,
``ter:InvalidArgVal``/``ter:NoToken`` for an unknown preset or relay. Every
operation is recorded in ``calls`` (name and arguments as text). With
``html=True`` it is instead a camera's web page on the ONVIF port: every
request gets an HTML login page (status 200), what a wrongly configured
device address finds.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NAMESPACES = {
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tmd": "http://www.onvif.org/ver10/deviceIO/wsdl",
    "timg": "http://www.onvif.org/ver20/imaging/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
}
PATHS = {
    "tds": "/onvif/device_service",
    "trt": "/onvif/media",
    "tptz": "/onvif/ptz",
    "tmd": "/onvif/deviceio",
    "timg": "/onvif/imaging",
}
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Network Camera</title></head><body>"
    "<form action=/login method=post><input name=user><input type=password name=pw>"
    "<br></form></body></html>"
)
AUX_COMMANDS = ("tt:Wiper|On", "tt:Wiper|Off", "tt:IRLamp|On", "tt:IRLamp|Off")


class SoapFault(Exception):
    def __init__(self, code: str, subcode: str, text: str) -> None:
        super().__init__(text)
        self.code, self.subcode, self.text = code, subcode, text


@dataclass
class CameraState:
    velocity: dict[str, float] = field(default_factory=dict)
    at_home: bool = False
    at_preset: str | None = None
    presets: dict[str, str] = field(default_factory=lambda: {"1": "Front Door", "2": "Garage"})
    relays: dict[str, str] = field(default_factory=lambda: {"relay-a": "inactive",
                                                            "relay-b": "inactive"})  # fmt: skip
    aux: list[str] = field(default_factory=list)
    focus: float = 0.0
    reboots: int = 0


def _digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    ).decode()


class OnvifCamera:
    """``async with OnvifCamera(user, password) as cam``: ``cam.port`` serves ONVIF."""

    def __init__(
        self, username: str, password: str, *, with_ptz: bool = True, html: bool = False
    ) -> None:
        self.username = username
        self.password = password
        self.with_ptz = with_ptz
        self.html = html
        self.state = CameraState()
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._next_preset = 3

    async def __aenter__(self) -> OnvifCamera:
        app = web.Application()
        for prefix, path in PATHS.items():
            app.router.add_post(path, self._handler(prefix))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # --- HTTP + SOAP ------------------------------------------------------

    def _handler(self, prefix: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            if self.html:
                self.calls.append(("html", {}))
                return web.Response(text=HTML_PAGE, content_type="text/html")
            envelope = etree.fromstring(await request.read())
            body = envelope.find(f"{{{SOAP}}}Body")
            assert body is not None and len(body), "no SOAP body"
            operation = body[0]
            name = etree.QName(operation).localname
            args = {etree.QName(e).localname: (e.text or "").strip() for e in operation.iter()}
            args.pop(name, None)
            for element in operation.iter():  # attributes such as x="0.5" of Velocity/PanTilt
                for key, value in element.attrib.items():
                    args[f"{etree.QName(element).localname}.{key}"] = value
            try:
                self._check_auth(envelope)
                self.calls.append((name, args))
                inner = self._answer(prefix, name, args, request)
            except SoapFault as fault:
                return self._fault(fault)
            return web.Response(
                body=self._envelope(f"<{prefix}:{name}Response>{inner}</{prefix}:{name}Response>"),
                content_type="application/soap+xml",
                charset="utf-8",
            )

        return handle

    def _check_auth(self, envelope: Any) -> None:
        token = envelope.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            raise SoapFault("Sender", "NotAuthorized", "Sender not authorized")
        user = token.findtext(f"{{{WSSE}}}Username")
        digest = token.findtext(f"{{{WSSE}}}Password") or ""
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = token.findtext(f"{{{WSU}}}Created") or ""
        if user != self.username or digest != _digest(nonce, created, self.password):
            raise SoapFault("Sender", "NotAuthorized", "Sender not authorized")

    @staticmethod
    def _envelope(body: str) -> bytes:
        ns = " ".join(f'xmlns:{p}="{u}"' for p, u in NAMESPACES.items())
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP}" {ns}>'
            f"<s:Body>{body}</s:Body></s:Envelope>"
        ).encode()

    def _fault(self, fault: SoapFault) -> web.Response:
        body = (
            f"<s:Fault><s:Code><s:Value>s:{fault.code}</s:Value><s:Subcode>"
            f"<s:Value>ter:{fault.subcode}</s:Value></s:Subcode></s:Code>"
            f'<s:Reason><s:Text xml:lang="en">{escape(fault.text)}</s:Text></s:Reason></s:Fault>'
        )
        status = 400 if fault.code == "Sender" else 500
        return web.Response(
            body=self._envelope(body), status=status, content_type="application/soap+xml"
        )

    # --- operations -------------------------------------------------------

    def _answer(self, prefix: str, name: str, args: dict[str, str], request: web.Request) -> str:
        method = getattr(self, f"_{prefix}_{name}", None)
        if method is None:
            raise SoapFault("Receiver", "ActionNotSupported", f"{name} is not supported")
        return str(method(args, request))

    def _tds_GetServices(self, args: dict[str, str], request: web.Request) -> str:
        base = f"http://127.0.0.1:{self.port}"
        prefixes = ["tds", "trt", "tmd", "timg"] + (["tptz"] if self.with_ptz else [])
        return "".join(
            f"<tds:Service><tds:Namespace>{NAMESPACES[p]}</tds:Namespace>"
            f"<tds:XAddr>{base}{PATHS[p]}</tds:XAddr>"
            f"<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for p in prefixes
        )

    def _tds_GetDeviceInformation(self, args: dict[str, str], request: web.Request) -> str:
        return (
            "<tds:Manufacturer>Samsung Techwin</tds:Manufacturer><tds:Model>SNP-3120</tds:Model>"
            "<tds:FirmwareVersion>3.01_140915</tds:FirmwareVersion>"
            "<tds:SerialNumber>C5FS6V3D401101R</tds:SerialNumber>"
            "<tds:HardwareId>SNP-3120</tds:HardwareId>"
        )

    def _tds_GetScopes(self, args: dict[str, str], request: web.Request) -> str:
        items = ["type/NVT", "name/SNP-3120", "location/city/seoul", "location/country/korea"]
        return "".join(
            f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef>"
            f"<tt:ScopeItem>onvif://www.onvif.org/{item}</tt:ScopeItem></tds:Scopes>"
            for item in items
        )

    def _tds_SystemReboot(self, args: dict[str, str], request: web.Request) -> str:
        self.state.reboots += 1
        return "<tds:Message>Rebooting in 5 seconds</tds:Message>"

    def _trt_GetProfiles(self, args: dict[str, str], request: web.Request) -> str:
        ptz = (
            '<tt:PTZConfiguration token="ptz-1"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount>'
            "<tt:NodeToken>node-1</tt:NodeToken></tt:PTZConfiguration>"
        )
        return (
            '<trt:Profiles token="profile-1" fixed="true"><tt:Name>main</tt:Name>'
            '<tt:VideoSourceConfiguration token="vsc-1"><tt:Name>vsc</tt:Name>'
            "<tt:UseCount>1</tt:UseCount><tt:SourceToken>video-1</tt:SourceToken>"
            '<tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>'
            f"{ptz if self.with_ptz else ''}</trt:Profiles>"
        )

    def _profile(self, args: dict[str, str]) -> None:
        if args.get("ProfileToken") != "profile-1":
            raise SoapFault("Sender", "NoProfile", "no such profile")

    def _tptz_GetNodes(self, args: dict[str, str], request: web.Request) -> str:
        generic = "http://www.onvif.org/ver10/tptz/{}Spaces/VelocityGenericSpace"
        one = "<tt:Min>-1</tt:Min><tt:Max>1</tt:Max>"
        aux = "".join(f"<tt:AuxiliaryCommands>{c}</tt:AuxiliaryCommands>" for c in AUX_COMMANDS)
        return (
            '<tptz:PTZNode token="node-1"><tt:Name>node</tt:Name><tt:SupportedPTZSpaces>'
            f"<tt:ContinuousPanTiltVelocitySpace><tt:URI>{generic.format('PanTilt')}</tt:URI>"
            f"<tt:XRange>{one}</tt:XRange><tt:YRange>{one}</tt:YRange>"
            "</tt:ContinuousPanTiltVelocitySpace>"
            f"<tt:ContinuousZoomVelocitySpace><tt:URI>{generic.format('Zoom')}</tt:URI>"
            f"<tt:XRange>{one}</tt:XRange></tt:ContinuousZoomVelocitySpace>"
            "</tt:SupportedPTZSpaces><tt:MaximumNumberOfPresets>255</tt:MaximumNumberOfPresets>"
            f"<tt:HomeSupported>true</tt:HomeSupported>{aux}</tptz:PTZNode>"
        )

    def _tptz_ContinuousMove(self, args: dict[str, str], request: web.Request) -> str:
        self._profile(args)
        for key in ("PanTilt.x", "PanTilt.y", "Zoom.x"):
            if key in args:
                self.state.velocity[key] = float(args[key])
        return ""

    def _tptz_Stop(self, args: dict[str, str], request: web.Request) -> str:
        self._profile(args)
        self.state.velocity = {}
        return ""

    def _tptz_GotoHomePosition(self, args: dict[str, str], request: web.Request) -> str:
        self._profile(args)
        self.state.at_home, self.state.at_preset = True, None
        return ""

    def _tptz_GetPresets(self, args: dict[str, str], request: web.Request) -> str:
        self._profile(args)
        return "".join(
            f'<tptz:Preset token="{escape(t)}"><tt:Name>{escape(n)}</tt:Name></tptz:Preset>'
            for t, n in self.state.presets.items()
        )

    def _tptz_SetPreset(self, args: dict[str, str], request: web.Request) -> str:
        self._profile(args)
        token = args.get("PresetToken")
        if not token:
            token = str(self._next_preset)
            self._next_preset += 1
        self.state.presets[token] = args.get("PresetName") or token
        return f"<tptz:PresetToken>{escape(token)}</tptz:PresetToken>"

    def _preset(self, args: dict[str, str]) -> str:
        self._profile(args)
        token = args.get("PresetToken", "")
        if token not in self.state.presets:
            raise SoapFault("Sender", "NoToken", f"no preset {token}")
        return token

    def _tptz_RemovePreset(self, args: dict[str, str], request: web.Request) -> str:
        del self.state.presets[self._preset(args)]
        return ""

    def _tptz_GotoPreset(self, args: dict[str, str], request: web.Request) -> str:
        self.state.at_preset, self.state.at_home = self._preset(args), False
        return ""

    def _tptz_SendAuxiliaryCommand(self, args: dict[str, str], request: web.Request) -> str:
        self._profile(args)
        data = args.get("AuxiliaryData", "")
        if data not in AUX_COMMANDS:
            raise SoapFault("Sender", "InvalidArgVal", f"unknown command {data}")
        self.state.aux.append(data)
        return "<tptz:AuxiliaryResponse>OK</tptz:AuxiliaryResponse>"

    def _tmd_GetRelayOutputs(self, args: dict[str, str], request: web.Request) -> str:
        return "".join(
            f'<tmd:RelayOutputs token="{t}"><tt:Properties><tt:Mode>Bistable</tt:Mode>'
            "<tt:DelayTime>PT1S</tt:DelayTime><tt:IdleState>open</tt:IdleState>"
            "</tt:Properties></tmd:RelayOutputs>"
            for t in self.state.relays
        )

    def _tmd_GetDigitalInputs(self, args: dict[str, str], request: web.Request) -> str:
        return '<tmd:DigitalInputs token="di-1"/><tmd:DigitalInputs token="di-2"/>'

    def _tmd_SetRelayOutputState(self, args: dict[str, str], request: web.Request) -> str:
        token = args.get("RelayOutputToken", "")
        if token not in self.state.relays:
            raise SoapFault("Sender", "InvalidArgVal", f"no relay {token}")
        self.state.relays[token] = args.get("LogicalState", "")
        return ""

    def _timg_Move(self, args: dict[str, str], request: web.Request) -> str:
        if args.get("VideoSourceToken") != "video-1":
            raise SoapFault("Sender", "NoSource", "no such video source")
        self.state.focus = float(args.get("Speed", "0"))
        return ""

    def _timg_Stop(self, args: dict[str, str], request: web.Request) -> str:
        self.state.focus = 0.0
        return ""
