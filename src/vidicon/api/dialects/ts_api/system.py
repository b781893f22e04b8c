"""TS-API ``/api/system``: hardware (``info``), load (``health``), disk health
(``hddsmart``), and restarting the server (``restart``) or the machine
(``reboot``).

One action per request; ``/api/system`` alone is ``info``. Items are asked
as ``info=os,cpu``, ``info=all`` or ``info=supported`` (the list of items);
``storage`` and ``network`` are the spec's other names of ``disk`` and
``networkAdapter``. Every action needs a signed-in user; restart and reboot
need an administrator (403), and reboot also needs the configuration to
allow it (403 with code -1 otherwise); with the session cookie both are
refused (403) when another site's page sent them (CSRF). Field names are
the services' snake_case turned into the spec's camelCase; what a machine
does not tell is left out.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.info import answer
from vidicon.api.dialects.ts_api.lang import ENGLISH, language, text
from vidicon.api.native.security import AppDep, CurrentUser, require_same_origin
from vidicon.base.errors import InvalidInput
from vidicon.core.zone import server_zone
from vidicon.services.system import (
    HostInfo,
    RebootDisabled,
    RecordingStorage,
    SmartCode,
    SmartReport,
    SystemService,
)

router = APIRouter(tags=["ts-api"])
ACTIONS = ("info", "health", "hddsmart", "restart", "reboot")
COMMON = {"auth", "lang", "indent"}
# item -> the keys of the answer it fills
INFO_ITEMS: dict[str, tuple[str, ...]] = {
    "os": ("os",),
    "cpu": ("cpu",),
    "mainboard": ("mainboard",),
    "memory": ("physicalMemory", "memoryAmount"),
    "graphicAdapter": ("graphicAdapter",),
    "disk": ("disk", "storageAmount"),
    "cdrom": ("cdrom",),
    "networkAdapter": ("networkAdapter",),
}
INFO_ALIASES = {"storage": "disk", "network": "networkAdapter"}
# "process" (Vidicon's own: pid, start time, memory) is an addition to the spec's list.
HEALTH_ITEMS = ("cpu", "memory", "disk", "recording", "network", "process")

TEXTS: dict[str, dict[str, str]] = {
    ENGLISH: {
        "restart": "The server restarts in a few seconds.",
        "reboot": "The system will shut down in less than a minute and then restart.",
        "reboot_disabled": "Rebooting the system is switched off in the server's configuration.",
        "smart_1": "Supported", "smart_0": "Not supported", "smart_-1": "Not tested yet",
        "usage_-1": "Not used", "usage_0": "Read-only", "usage_1": "Write once",
        "usage_2": "Overwrite",
    },
    "ko-KR": {
        "restart": "서버가 몇 초 후에 다시 시작됩니다.",
        "reboot": "시스템이 1분 이내에 종료된 후 다시 시작됩니다.",
        "reboot_disabled": "서버 설정에서 시스템 재부팅이 꺼져 있습니다.",
        "smart_1": "지원함", "smart_0": "지원 안 함", "smart_-1": "아직 검사 안 함",
        "usage_-1": "사용 안 함", "usage_0": "읽기 전용", "usage_1": "한 번 쓰기",
        "usage_2": "덮어쓰기",
    },
    "es-ES": {
        "restart": "El servidor se reiniciará en unos segundos.",
        "reboot": "El sistema se apagará en menos de un minuto y luego se reiniciará.",
        "reboot_disabled": "El reinicio del sistema está desactivado en la configuración del "
        "servidor.",
        "smart_1": "Compatible", "smart_0": "No compatible", "smart_-1": "Aún sin comprobar",
        "usage_-1": "Sin usar", "usage_0": "Solo lectura", "usage_1": "Una sola escritura",
        "usage_2": "Sobrescribir",
    },
}  # fmt: skip


def plain(value: Any) -> Any:
    """Dataclasses as JSON objects with camelCase keys; None fields left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _camel(f.name): plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _items(value: str, known: tuple[str, ...], aliases: dict[str, str], name: str) -> list[str]:
    """``all`` or nothing: every item; else the listed ones (400 for others)."""
    asked = [v.strip() for v in value.split(",") if v.strip()]
    if not asked or "all" in asked:
        return list(known)
    out = []
    for item in asked:
        item = aliases.get(item, item)
        if item not in known:
            raise InvalidInput(f"{name}={item} is not an item (see {name}=supported)", name)
        if item not in out:
            out.append(item)
    return out


@router.get("/api/system", response_class=Response)
async def system(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    info: Annotated[str | None, Query(description="items, all or supported")] = None,
    health: Annotated[str | None, Query(description="items, all or supported")] = None,
    hddsmart: Annotated[str | None, Query(description="disk numbers 1,2 (all if empty)")] = None,
    restart: Annotated[str | None, Query(description="restart the server (admin)")] = None,
    reboot: Annotated[str | None, Query(description="reboot the machine (admin)")] = None,
) -> Response:
    """System information, health, S.M.A.R.T., restart or reboot."""
    query = request.query_params
    unknown = sorted(set(query) - set(ACTIONS) - COMMON)
    actions = [a for a in ACTIONS if a in query]
    words = language(query.get("lang"))
    try:
        if unknown:
            raise InvalidInput(f"unknown parameters: {', '.join(unknown)}")
        if len(actions) > 1:
            raise InvalidInput("ask one of info, health, hddsmart, restart, reboot at a time")
        action = actions[0] if actions else "info"
        value = query.get(action, "")
        if action == "info":
            return await _info(request, app.system, value)
        if action == "health":
            return await _health(request, app.system, value, words)
        if action == "hddsmart":
            numbers = None
            if value.strip():
                numbers = [tr.parse_int(v, "hddsmart", 1, 64) or 0 for v in value.split(",")]
            reports = await app.system.smart(numbers)
            return answer(request, [_smart(r, words) for r in reports])
        require_same_origin(request)  # restart, reboot: they change something
        if action == "restart":
            app.system.restart(user)
            return answer(request, {"code": 0, "message": text(TEXTS, "restart", words)})
        try:
            app.system.reboot(user)
        except RebootDisabled:
            body = {"code": -1, "message": text(TEXTS, "reboot_disabled", words)}
            return answer(request, body, 403)
        return answer(request, {"code": 0, "message": text(TEXTS, "reboot", words)})
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


async def _info(request: Request, system: SystemService, value: str) -> Response:
    if value.strip() == "supported":
        return answer(request, [*INFO_ITEMS, "all"])
    items = _items(value, tuple(INFO_ITEMS), INFO_ALIASES, "info")
    host = await system.info()
    everything = _host(host)
    out: dict[str, Any] = {"lastUpdate": tr.format_time(host.measured_us, server_zone())}
    for item in items:
        for key in INFO_ITEMS[item]:
            out[key] = everything[key]
    return answer(request, out)


def _host(host: HostInfo) -> dict[str, Any]:
    disks = []
    for disk in host.disk:
        entry = plain(disk)
        entry["smartCaps"] = host.smart_caps.get(disk.device_id, False)
        disks.append(entry)
    return {
        "os": plain(host.os),
        "cpu": plain(host.cpu),
        "mainboard": plain(host.mainboard),
        "graphicAdapter": plain(host.graphic_adapter),
        "physicalMemory": [],  # memory modules need root (SMBIOS); the amount is known
        "memoryAmount": host.memory_amount,
        "disk": disks,
        "storageAmount": host.storage_amount,
        "cdrom": plain(host.cdrom),
        "networkAdapter": plain(host.network_adapter),
    }


async def _health(request: Request, system: SystemService, value: str, words: str) -> Response:
    if value.strip() == "supported":
        return answer(request, [*HEALTH_ITEMS, "all"])
    items = _items(value, HEALTH_ITEMS, {}, "health")
    health = await system.health(set(items))
    zone = server_zone()
    out: dict[str, Any] = {"lastUpdate": tr.format_time(health.measured_us, zone)}
    for item in items:
        if item == "cpu" and health.load is not None:
            out["cpu"] = [
                {
                    **({"temperatureKelvin": plain(c.temperature_kelvin)}
                       if c.temperature_kelvin else {}),
                    "usage": {"threads": c.threads, "total": c.total},
                }
                for c in health.load.cpu
            ]  # fmt: skip
        elif item == "memory":
            out["memory"] = plain(health.memory)
        elif item == "disk" and health.load is not None:
            out["disk"] = plain(health.load.disk)
        elif item == "recording" and health.recording is not None:
            out["recording"] = _recording(health.recording, words, zone)
        elif item == "network" and health.load is not None:
            out["network"] = plain(health.load.network)
        elif item == "process" and health.process is not None:
            p = health.process
            out["process"] = {
                "pid": p.pid,
                "startTime": tr.format_time(p.started_us, zone),
                "uptimeSeconds": p.uptime_s,
                "memoryBytes": p.memory_bytes,
                "threads": p.threads,
            }
    return answer(request, out)


def _recording(storage: RecordingStorage, words: str, zone: Any) -> dict[str, Any]:
    """The spec's ``current`` and ``storage`` list, with Vidicon's figures added
    to the storage entry: space, footage held, the free-space floor, retention."""
    recorded = storage.recorded
    entry: dict[str, Any] = {
        "comment": text(TEXTS, f"usage_{int(storage.usage)}", words),
        "path": storage.path,
        "usage": int(storage.usage),
        "totalSpace": storage.total_space,
        "freeSpace": storage.free_space,
        "minFreeSpace": storage.min_free_bytes,
        "recordedBytes": recorded.bytes,
        "lockedBytes": recorded.locked_bytes,
        "files": recorded.segments,
        "retention": {
            "deletedFiles": storage.deleted_segments,
            "deletedBytes": storage.deleted_bytes,
            "passes": storage.retention_passes,
        },
    }
    if recorded.oldest_us is not None and recorded.newest_us is not None:
        entry["timeRange"] = [
            tr.format_time(recorded.oldest_us, zone),
            tr.format_time(recorded.newest_us, zone),
        ]
    return {"current": storage.path, "storage": [entry]}


def _smart(report: SmartReport, words: str) -> dict[str, Any]:
    """The spec's entry. Its example gives ``value`` as the counter a person
    reads (hours, sectors) and ``raw`` as the normalised value; ``rawHex``
    carries the attribute's six raw bytes."""
    out: dict[str, Any] = {
        "code": int(report.code),
        "message": text(TEXTS, f"smart_{int(report.code)}", words),
        "model": report.model,
        "name": report.device,
    }
    if report.code == SmartCode.SUPPORTED:
        if report.passed is not None:
            out["passed"] = report.passed
        out["smart"] = [
            {
                "attribute": a.name,
                "critical": a.critical,
                "id": a.id,
                "raw": a.current,
                "rawHex": f"{a.raw:012X}",
                "threshold": a.threshold,
                "value": a.reading,
                "worst": a.worst,
            }
            for a in report.attributes
        ]
    else:
        out["reason"] = report.reason
    return out
