"""TS-API's event log types and codes for Vidicon's event kinds and codes.

The spec names type 0 (System log), 1 (Privacy) and 6 (User-defined event),
and shows code numbers that are unique across types (System startup 1,
System shutdown 2, Abnormal shutdown 3, Sign in 4, Storage ready 25,
License applied 27, Storage path changed 30). Types 2-5 and the other
numbers are Vidicon's, chosen in that style (docs/design/0022-event-search.md):

====  ==================  =============================================
type  name                Vidicon kinds
====  ==================  =============================================
0     System log          system
1     Privacy             audit (sign-in, settings, users, exports)
2     Channel             cameraStatus
3     Recording           recordingStatus
4     Detection           motion, object, lineCrossing, intrusion,
                          loitering, peopleGathering, driving
5     Linked device       lpr, emergencyCall
6     User-defined event  user (its code is the user's own name)
====  ==================  =============================================

A code Vidicon does not know yet keeps its type and gets the type's
"other" number (19, 39, 59, 69), with the Vidicon code as its name. The
numbers never change once given; new codes take free numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.lang import ENGLISH, text
from vidicon.core.events import Event, EventKind

K = EventKind
USER_DEFINED_CODE = 120


@dataclass(frozen=True, slots=True)
class LogType:
    id: int
    kinds: frozenset[EventKind]
    names: tuple[str, str, str]  # en-US, ko-KR, es-ES
    listed_codes: bool = True  # enum lists its codes (not the user-defined type)


@dataclass(frozen=True, slots=True)
class LogCode:
    id: int
    kind: EventKind
    code: str | None  # None: every code of the kind; "*": codes not listed
    names: tuple[str, str, str]


DETECTION = frozenset({K.MOTION, K.OBJECT, K.LINE_CROSSING, K.INTRUSION, K.LOITERING,
                       K.PEOPLE_GATHERING, K.DRIVING})  # fmt: skip

TYPES: tuple[LogType, ...] = (
    LogType(0, frozenset({K.SYSTEM}), ("System log", "시스템 로그", "Registro del sistema")),
    LogType(1, frozenset({K.AUDIT}), ("Privacy", "개인 정보", "Privacidad")),
    LogType(2, frozenset({K.CAMERA_STATUS}), ("Channel", "채널", "Canal")),
    LogType(3, frozenset({K.RECORDING_STATUS}), ("Recording", "녹화", "Grabación")),
    LogType(4, DETECTION, ("Detection", "감지", "Detección")),
    LogType(5, frozenset({K.LPR, K.EMERGENCY_CALL}),
            ("Linked device", "연동 장치", "Dispositivo vinculado")),
    LogType(6, frozenset({K.USER}),
            ("User-defined event", "사용자 정의 이벤트", "Evento definido por el usuario"),
            listed_codes=False),
)  # fmt: skip

CODES: tuple[LogCode, ...] = (
    # 0 System log
    LogCode(1, K.SYSTEM, "startup", ("System startup", "시스템 시작", "Inicio del sistema")),
    LogCode(2, K.SYSTEM, "shutdown", ("System shutdown", "시스템 종료", "Apagado del sistema")),
    LogCode(3, K.SYSTEM, "abnormalShutdown",
            ("Abnormal shutdown", "비정상 종료", "Apagado anormal")),
    LogCode(25, K.SYSTEM, "storageReady",
            ("Storage ready", "저장소 준비됨", "Almacenamiento listo")),
    LogCode(26, K.SYSTEM, "storageFull",
            ("Storage full", "저장 공간 부족", "Almacenamiento lleno")),
    LogCode(28, K.SYSTEM, "storageError",
            ("Storage error", "저장소 오류", "Error de almacenamiento")),
    LogCode(29, K.SYSTEM, "footageDeleted",
            ("Old recordings deleted", "오래된 녹화 삭제", "Grabaciones antiguas eliminadas")),
    LogCode(30, K.SYSTEM, "storagePathChanged",
            ("Storage path changed", "저장 경로 변경", "Ruta de almacenamiento cambiada")),
    LogCode(39, K.SYSTEM, "*",
            ("Other system event", "기타 시스템 이벤트", "Otro evento del sistema")),
    # 1 Privacy
    LogCode(4, K.AUDIT, "signIn", ("Sign in", "로그인", "Inicio de sesión")),
    LogCode(5, K.AUDIT, "signOut", ("Sign out", "로그아웃", "Cierre de sesión")),
    LogCode(6, K.AUDIT, "signInFailed",
            ("Sign-in failed", "로그인 실패", "Error de inicio de sesión")),
    LogCode(7, K.AUDIT, "passwordChanged",
            ("Password changed", "비밀번호 변경", "Contraseña cambiada")),
    LogCode(8, K.AUDIT, "settingsChanged",
            ("Settings changed", "설정 변경", "Configuración cambiada")),
    LogCode(9, K.AUDIT, "userCreated", ("User added", "사용자 추가", "Usuario añadido")),
    LogCode(10, K.AUDIT, "userDeleted", ("User deleted", "사용자 삭제", "Usuario eliminado")),
    LogCode(11, K.AUDIT, "userChanged", ("User changed", "사용자 변경", "Usuario modificado")),
    LogCode(12, K.AUDIT, "exportStarted",
            ("Export started", "내보내기 시작", "Exportación iniciada")),
    LogCode(13, K.AUDIT, "exportFinished",
            ("Export finished", "내보내기 완료", "Exportación finalizada")),
    LogCode(14, K.AUDIT, "export", ("Data exported", "데이터 내보내기", "Datos exportados")),
    LogCode(15, K.AUDIT, "lockedOut", ("Account locked", "계정 잠김", "Cuenta bloqueada")),
    LogCode(19, K.AUDIT, "*", ("Other privacy event", "기타 개인 정보 이벤트",
                               "Otro evento de privacidad")),
    # 2 Channel
    LogCode(40, K.CAMERA_STATUS, "connected",
            ("Camera connected", "카메라 연결됨", "Cámara conectada")),
    LogCode(41, K.CAMERA_STATUS, "disconnected",
            ("Camera disconnected", "카메라 연결 끊김", "Cámara desconectada")),
    LogCode(42, K.CAMERA_STATUS, "noResponse", ("No response", "응답 없음", "Sin respuesta")),
    LogCode(43, K.CAMERA_STATUS, "loginFailed",
            ("Camera login failed", "카메라 로그인 실패",
             "Error de inicio de sesión de la cámara")),
    LogCode(44, K.CAMERA_STATUS, "noNetwork",
            ("No network connection", "네트워크 연결 없음", "Sin conexión de red")),
    LogCode(45, K.CAMERA_STATUS, "timeout",
            ("Camera response timeout", "카메라 응답 시간 초과",
             "Tiempo de respuesta de la cámara agotado")),
    LogCode(46, K.CAMERA_STATUS, "noVideo",
            ("No video input", "영상 입력 없음", "Sin entrada de vídeo")),
    LogCode(47, K.CAMERA_STATUS, "serviceFailure",
            ("Camera service failure", "카메라 서비스 장애", "Fallo del servicio de la cámara")),
    LogCode(48, K.CAMERA_STATUS, "reconnecting", ("Reconnecting", "재연결 중", "Reconectando")),
    LogCode(49, K.CAMERA_STATUS, "added", ("Channel added", "채널 추가", "Canal añadido")),
    LogCode(50, K.CAMERA_STATUS, "removed", ("Channel removed", "채널 삭제", "Canal eliminado")),
    LogCode(51, K.CAMERA_STATUS, "renamed",
            ("Channel renamed", "채널 이름 변경", "Canal renombrado")),
    LogCode(52, K.CAMERA_STATUS, "sourceChanged",
            ("Camera address changed", "카메라 주소 변경", "Dirección de la cámara cambiada")),
    LogCode(53, K.CAMERA_STATUS, "blocked",
            ("Camera blocked", "카메라 차단됨", "Cámara bloqueada")),
    LogCode(54, K.CAMERA_STATUS, "rebooting",
            ("Camera rebooting", "카메라 재부팅 중", "Cámara reiniciándose")),
    LogCode(55, K.CAMERA_STATUS, "noFile", ("No file found", "파일 없음", "Archivo no encontrado")),
    LogCode(59, K.CAMERA_STATUS, "*",
            ("Other channel event", "기타 채널 이벤트", "Otro evento de canal")),
    # 3 Recording
    LogCode(60, K.RECORDING_STATUS, "started",
            ("Recording started", "녹화 시작", "Grabación iniciada")),
    LogCode(61, K.RECORDING_STATUS, "stopped",
            ("Recording stopped", "녹화 중지", "Grabación detenida")),
    LogCode(62, K.RECORDING_STATUS, "failed",
            ("Recording failed", "녹화 실패", "Error de grabación")),
    LogCode(69, K.RECORDING_STATUS, "*",
            ("Other recording event", "기타 녹화 이벤트", "Otro evento de grabación")),
    # 4 Detection (one code per kind)
    LogCode(80, K.MOTION, None, ("Motion detected", "움직임 감지", "Movimiento detectado")),
    LogCode(81, K.OBJECT, None, ("Object detected", "객체 감지", "Objeto detectado")),
    LogCode(82, K.LINE_CROSSING, None, ("Line crossing", "선 통과", "Cruce de línea")),
    LogCode(83, K.INTRUSION, None, ("Intrusion", "침입", "Intrusión")),
    LogCode(84, K.LOITERING, None, ("Loitering", "배회", "Merodeo")),
    LogCode(85, K.PEOPLE_GATHERING, None,
            ("People gathering", "사람 모임", "Aglomeración de personas")),
    LogCode(86, K.DRIVING, None, ("Driving event", "주행 이벤트", "Evento de conducción")),
    # 5 Linked device
    LogCode(100, K.LPR, None, ("Car number recognized", "차량 번호 인식", "Matrícula reconocida")),
    LogCode(101, K.EMERGENCY_CALL, None, ("Emergency call", "비상 호출", "Llamada de emergencia")),
)  # fmt: skip

_LANGS = (ENGLISH, "ko-KR", "es-ES")
_TYPE_OF = {kind: t for t in TYPES for kind in t.kinds}
_TYPE_BY_ID = {t.id: t for t in TYPES}
_CODE_OF = {(c.kind, c.code): c for c in CODES}
_OTHER = frozenset(c.id for c in CODES if c.code == "*")
TYPE_NAMES: dict[str, dict[int, str]] = {
    lang: {t.id: t.names[i] for t in TYPES} for i, lang in enumerate(_LANGS)
}
CODE_NAMES: dict[str, dict[int, str]] = {
    lang: {c.id: c.names[i] for c in CODES} for i, lang in enumerate(_LANGS)
}
# What the log entry calls an event's label, by kind.
_LABEL_PARAM = {K.LPR: "plateNo", K.OBJECT: "objectType", K.EMERGENCY_CALL: "caller"}


def type_ids() -> list[int]:
    return [t.id for t in TYPES]


def kinds_of(type_id: int) -> frozenset[EventKind]:
    """The Vidicon kinds of a log type (empty for an unknown type)."""
    found = _TYPE_BY_ID.get(type_id)
    return found.kinds if found else frozenset()


def log_type(event: Event) -> int:
    return _TYPE_OF[event.kind].id


def log_code(event: Event) -> int | None:
    """The code number of an event; None for a user-defined one (named by its code)."""
    if event.kind is K.USER:
        return None
    found = _CODE_OF.get((event.kind, None)) or _CODE_OF.get((event.kind, event.code))
    return (found or _CODE_OF[(event.kind, "*")]).id


def entry(event: Event, lang: str, zone: tzinfo) -> dict[str, Any]:
    """One ``/api/find?what=eventLog`` item (and ``systemEvent`` message body)."""
    type_id = log_type(event)
    code = log_code(event)
    out: dict[str, Any] = {
        "id": event.id,
        "type": type_id,
        "typeName": text(TYPE_NAMES, type_id, lang),
        "code": USER_DEFINED_CODE if code is None else code,
        "codeName": event.code if code is None or code in _OTHER else text(CODE_NAMES, code, lang),
        "timeRange": time_range(event, zone),
    }
    param = {k: v for k, v in event.public_attributes().items() if k != "comment"}
    if event.channel_id is not None:
        param.setdefault("chid", event.channel_id)
    if event.label is not None:
        param.setdefault(_LABEL_PARAM.get(event.kind, "label"), event.label)
    if param:
        out["param"] = param
    comment = event.attributes.get("comment")
    if isinstance(comment, str) and comment:
        out["comment"] = comment
    return out


def time_range(event: Event, zone: tzinfo) -> list[str]:
    """``[begin]`` for a moment or an event still lasting, ``[begin, end]`` otherwise."""
    span = [tr.format_time(event.begin_us, zone)]
    if event.end_us is not None and event.end_us != event.begin_us:
        span.append(tr.format_time(event.end_us, zone))
    return span


def enum(lang: str) -> list[dict[str, Any]]:
    """``/api/enum?what=eventType``: every type with its codes, in ``lang``."""
    out = []
    for log in TYPES:
        item: dict[str, Any] = {"id": log.id, "name": text(TYPE_NAMES, log.id, lang)}
        if log.listed_codes:
            item["code"] = [
                {"id": c.id, "name": text(CODE_NAMES, c.id, lang)}
                for c in sorted(CODES, key=lambda c: c.id)
                if c.kind in log.kinds
            ]
        out.append(item)
    return out
