"""TS-API device control: ``/api/channel/info|ptz|preset|relay|aux|reboot``.

Commands are query flags (``?ch=1&home``, ``?ch=1&move=0.5,-0.5``); each
answer carries TS-API's response code and its message in ``lang``:
0 success, -1 no user rights (HTTP 403: the Control right and access to the
channel are needed), -2 not supported by the device, -3 device not ready,
-4 busy, -5 invalid channel, -6 invalid channel token, -7 invalid request,
-8 invalid parameters, -9 device response error. Everything but -1 comes
with HTTP 200, as the spec has it. ``info`` needs no Control right: it only
reads. Commands that change something are GET requests, so with the session
cookie they are refused (-1, 403) when another site's page sent them
(:func:`require_same_origin`). Translation only: :class:`DeviceControlService`
decides.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from vidicon.api.dialects.ts_api.lang import json_response, request_language, text
from vidicon.api.native.security import AppDep, CurrentUser, require_same_origin
from vidicon.base.errors import Forbidden, InvalidInput, NotFound
from vidicon.core.rights import Right
from vidicon.services.device_control import DeviceError, DeviceInfo

router = APIRouter(tags=["ts-api"])

MESSAGES: dict[str, dict[int, str]] = {
    "en-US": {
        0: "Success", -1: "No user rights", -2: "Features not supported by the device",
        -3: "The device is not ready to execute the command",
        -4: "Device is still processing previous command", -5: "Invalid channel",
        -6: "Invalid channel token", -7: "Invalid request", -8: "Invalid parameters",
        -9: "Device response error",
    },
    "ko-KR": {
        0: "성공", -1: "사용자 권한 없음", -2: "장치에서 지원하지 않는 기능",
        -3: "장치가 명령을 실행할 준비가 되지 않았습니다",
        -4: "장치가 이전 명령을 처리하는 중입니다",
        -5: "잘못된 채널", -6: "잘못된 채널 토큰", -7: "잘못된 요청", -8: "잘못된 매개변수",
        -9: "장치 응답 오류",
    },
    "es-ES": {
        0: "Correcto", -1: "Sin derechos de usuario", -2: "Función no admitida por el dispositivo",
        -3: "El dispositivo no está listo para ejecutar el comando",
        -4: "El dispositivo aún está procesando el comando anterior", -5: "Canal no válido",
        -6: "Token de canal no válido", -7: "Solicitud no válida", -8: "Parámetros no válidos",
        -9: "Error de respuesta del dispositivo",
    },
    "zh-CN": {
        0: "成功", -1: "没有用户权限", -2: "设备不支持该功能", -3: "设备尚未准备好执行命令",
        -4: "设备仍在处理上一个命令", -5: "无效的通道", -6: "无效的通道令牌", -7: "无效的请求",
        -8: "无效的参数", -9: "设备响应错误",
    },
    "zh-TW": {
        0: "成功", -1: "沒有使用者權限", -2: "裝置不支援該功能", -3: "裝置尚未準備好執行命令",
        -4: "裝置仍在處理上一個命令", -5: "無效的通道", -6: "無效的通道權杖", -7: "無效的請求",
        -8: "無效的參數", -9: "裝置回應錯誤",
    },
}  # fmt: skip
PTZ_COMMANDS = ("home", "stop", "move", "zoom", "focus", "iris")
PRESET_COMMANDS = ("list", "reload", "add", "set", "rm", "go")
MAX_ITEMS = 64


class Refused(Exception):
    """A request refused before reaching the device, with TS-API's code."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _code_of(exc: Exception) -> int:
    if isinstance(exc, Refused | DeviceError):
        return exc.code
    if isinstance(exc, Forbidden):
        return -1
    if isinstance(exc, NotFound):
        return -5
    return -8  # InvalidInput


def status(request: Request, code: int, detail: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": code,
        "message": text(MESSAGES, code, request_language(request)),
    }
    if detail and code:
        out["detail"] = detail
    return out


def _answer(request: Request, body: Any, code: int = 0) -> Response:
    return json_response(request, body, 403 if code == -1 else 200)


def _failure(request: Request, exc: Exception, **extra: Any) -> Response:
    code = _code_of(exc)
    return _answer(request, {**extra, **status(request, code, str(exc))}, code)


CONTROL_ERRORS = (Refused, DeviceError, Forbidden, NotFound, InvalidInput)


# --- parameters ------------------------------------------------------------


def _channel(request: Request) -> int:
    raw = (request.query_params.get("ch") or "").strip()
    if not raw.isdecimal() or not 1 <= int(raw) <= 65_535:
        raise Refused(-5, "ch must be one channel number")
    return int(raw)


def _channels(request: Request) -> list[int] | None:
    raw = request.query_params.get("ch")
    if raw is None or not raw.strip():
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) > 1024 or not all(p.isdecimal() and 1 <= int(p) <= 65_535 for p in parts):
        raise Refused(-5, "ch must be channel numbers: 1 or 1,2,3")
    return sorted({int(p) for p in parts})


def _command(request: Request, names: tuple[str, ...]) -> str:
    given = [name for name in names if name in request.query_params]
    if len(given) != 1:
        raise Refused(-7, f"give exactly one of {', '.join(names)}")
    return given[0]


def _speeds(raw: str, count: int, name: str) -> list[float]:
    """``0.5,-0.5``: up to ``count`` numbers from -1 to 1; missing ones are 0."""
    parts = [p.strip() for p in raw.split(",")] if raw.strip() else []
    if len(parts) > count:
        raise Refused(-8, f"{name} takes at most {count} numbers")
    values = []
    for part in parts:
        try:
            value = float(part) if part else 0.0
        except ValueError:
            raise Refused(-8, f"{name} must be numbers from -1 to 1") from None
        if not math.isfinite(value) or not -1.0 <= value <= 1.0:
            raise Refused(-8, f"{name} must be numbers from -1 to 1")
        values.append(value)
    return values + [0.0] * (count - len(values))


def _tokens(raw: str, name: str) -> list[str]:
    tokens = [t.strip() for t in raw.split(",") if t.strip()]
    if not tokens or len(tokens) > MAX_ITEMS:
        raise Refused(-8, f"{name} needs 1-{MAX_ITEMS} tokens")
    return tokens


# --- info ------------------------------------------------------------------


def caps_json(info: DeviceInfo) -> dict[str, Any]:
    """TS-API's ``caps`` object of a device (also ``/api/enum?what=channel&caps``)."""
    c = info.caps
    return {
        "pantilt": c.pantilt, "zoom": c.zoom, "focus": c.focus, "iris": c.iris, "home": c.home,
        "maxPreset": c.max_preset, "aux": c.aux, "digitalInputs": c.digital_inputs,
        "relayOutputs": c.relay_outputs, "reboot": c.reboot,
    }  # fmt: skip


@router.get("/api/channel/info", response_class=Response)
async def channel_info(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """Each channel's device type, capabilities and (ONVIF) device information."""
    try:
        channels = _channels(request)
    except Refused as exc:
        return _failure(request, exc)
    caps_only = "caps" in request.query_params
    found = await app.device_control.info(user, channels, "reload" in request.query_params)
    out: list[dict[str, Any]] = []
    for item in found:
        if item.info is None:
            assert item.error is not None
            out.append(
                {"chid": item.channel_id, **status(request, item.error.code, str(item.error))}
            )
            continue
        entry: dict[str, Any] = {
            "chid": item.channel_id,
            "type": item.info.kind,
            "caps": caps_json(item.info),
        }
        if not caps_only and item.info.details:
            entry[item.info.kind] = item.info.details
        out.append(entry)
    return json_response(request, out)


# --- pan, tilt, zoom -------------------------------------------------------


@router.get("/api/channel/ptz", response_class=Response)
async def channel_ptz(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """``home``, ``stop``, ``move=x[,y]``, ``zoom=v``, ``focus=v``, ``iris=v`` (-1..1)."""
    control = app.device_control
    try:
        channel_id = _channel(request)
        command = _command(request, PTZ_COMMANDS)
        require_same_origin(request)
        raw = request.query_params.get(command) or ""
        if command == "home":
            await control.home(user, channel_id)
        elif command == "stop":
            await control.stop(user, channel_id)
        elif command == "move":
            pan, tilt = _speeds(raw, 2, "move")
            await control.move(user, channel_id, pan, tilt)
        else:
            (speed,) = _speeds(raw, 1, command)
            action: Callable[[Any, int, float], Awaitable[None]] = getattr(control, command)
            await action(user, channel_id, speed)
    except CONTROL_ERRORS as exc:
        return _failure(request, exc)
    return _answer(request, status(request, 0))


# --- presets ---------------------------------------------------------------


def _preset_list(request: Request, channel_id: int, presets: list[Any]) -> dict[str, Any]:
    items = [{"name": p.name, "token": p.token} for p in presets]
    return {"chid": channel_id, **status(request, 0), "preset": items}


async def _preset_lists(request: Request, app: Any, user: Any, reload: bool) -> Response:
    user.require(Right.CONTROL)
    channels = _channels(request)
    if channels is None:
        channels = [c for c in await app.channels.ids() if user.can_view(c)]
    out = []
    for channel_id in channels:
        try:
            presets = await app.device_control.presets(user, channel_id, reload)
        except CONTROL_ERRORS as exc:
            if isinstance(exc, Forbidden) and not user.can_view(channel_id):
                exc = NotFound(f"channel {channel_id} not found")  # keep its existence private
            elif isinstance(exc, Forbidden):
                raise
            out.append({"chid": channel_id, **status(request, _code_of(exc), str(exc))})
            continue
        out.append(_preset_list(request, channel_id, presets))
    return json_response(request, out)


@router.get("/api/channel/preset", response_class=Response)
async def channel_preset(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """``list``/``reload`` (one or more channels), ``add[&name]``, ``set=token[&name]``,
    ``rm=t1,t2``, ``go=token`` (one channel)."""
    control = app.device_control
    params = request.query_params
    channel_id: int | None = None
    try:
        command = _command(request, PRESET_COMMANDS)
        if command in {"list", "reload"}:
            return await _preset_lists(request, app, user, command == "reload")
        channel_id = _channel(request)
        require_same_origin(request)
        if command in {"add", "set"}:
            token = None
            if command == "set":
                token = (params.get("set") or "").strip()
                if not token:
                    raise Refused(-8, "set needs a preset token")
            made = await control.set_preset(user, channel_id, token, params.get("name") or None)
            body = {"chid": channel_id, "deviceResponseCode": 200, **status(request, 0)}
            return _answer(request, {**body, "token": made.token, "name": made.name})
        if command == "rm":
            results = []
            for token in _tokens(params.get("rm") or "", "rm"):
                try:
                    await control.remove_preset(user, channel_id, token)
                    result = {"deviceResponseCode": 200, **status(request, 0)}
                except DeviceError as exc:
                    code = status(request, exc.code, str(exc))
                    result = {"deviceResponseCode": exc.device_status, **code}
                results.append({**result, "token": token})
            return _answer(request, {"chid": channel_id, "preset": results})
        token = (params.get("go") or "").strip()
        if not token:
            raise Refused(-8, "go needs a preset token")
        await control.goto_preset(user, channel_id, token)
    except CONTROL_ERRORS as exc:
        extra: dict[str, Any] = {} if channel_id is None else {"chid": channel_id}
        if isinstance(exc, DeviceError) and params.keys() & {"add", "set"}:
            extra["deviceResponseCode"] = exc.device_status
        return _failure(request, exc, **extra)
    return _answer(request, {"chid": channel_id, **status(request, 0)})


# --- outputs, reboot -------------------------------------------------------


def _on_off(request: Request) -> tuple[bool, str]:
    """``on=...`` wins over ``off=...`` (the spec: off is then ignored)."""
    params = request.query_params
    if "on" in params:
        return True, params.get("on") or ""
    if "off" in params:
        return False, params.get("off") or ""
    raise Refused(-7, "give on= or off=")


@router.get("/api/channel/relay", response_class=Response)
async def channel_relay(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """``ls`` lists the relay outputs; ``on=``/``off=`` tokens switch them."""
    control = app.device_control
    channel_id: int | None = None
    try:
        channel_id = _channel(request)
        if "ls" in request.query_params:
            relays = await control.relays(user, channel_id)
            items = [{"name": r.name, "token": r.token} for r in relays]
            return _answer(request, {"chid": channel_id, **status(request, 0), "relay": items})
        active, raw = _on_off(request)
        require_same_origin(request)
        for token in _tokens(raw, "on" if active else "off"):
            await control.set_relay(user, channel_id, token, active)
    except CONTROL_ERRORS as exc:
        return _failure(request, exc, **({} if channel_id is None else {"chid": channel_id}))
    return _answer(request, {"chid": channel_id, **status(request, 0)})


@router.get("/api/channel/aux", response_class=Response)
async def channel_aux(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """``on=0,1`` / ``off=1``: AUX outputs by zero-based number."""
    channel_id: int | None = None
    try:
        channel_id = _channel(request)
        on, raw = _on_off(request)
        require_same_origin(request)
        numbers = _tokens(raw, "on" if on else "off")
        if not all(n.isdecimal() and len(n) <= 4 for n in numbers):
            raise Refused(-8, "aux outputs are numbers from 0")
        for number in numbers:
            await app.device_control.set_aux(user, channel_id, int(number), on)
    except CONTROL_ERRORS as exc:
        return _failure(request, exc, **({} if channel_id is None else {"chid": channel_id}))
    return _answer(request, {"chid": channel_id, **status(request, 0)})


@router.get("/api/channel/reboot", response_class=Response)
async def channel_reboot(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """Reboot the channel's camera; the video comes back once it has restarted."""
    try:
        channel_id = _channel(request)
        require_same_origin(request)
        await app.device_control.reboot(user, channel_id)
    except CONTROL_ERRORS as exc:
        return _failure(request, exc)
    return _answer(request, status(request, 0))
