"""S.M.A.R.T. disk health through ``smartctl -j`` (smartmontools 7+).

smartctl is run with an argument list (never a shell), one disk at a time,
with a timeout. Its JSON is parsed here: ATA attribute tables as they are,
NVMe health logs as a list of figures. A disk whose health cannot be read
(smartctl missing, no permission, a virtual disk, no SMART support) is
reported as not supported with the reason, never as healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

TIMEOUT_S = 15.0
# smartctl's exit status is a bit mask; these two mean nothing was read.
_BAD_COMMAND_LINE = 1 << 0
_DEVICE_OPEN_FAILED = 1 << 1
# NVMe health figures that say the drive is wearing out or failing.
_NVME_CRITICAL = {"critical_warning", "available_spare", "media_errors", "percentage_used"}
_RAW_MASK = (1 << 48) - 1  # an ATA raw value is six bytes
_LEADING_NUMBER = re.compile(r"\s*\d+")


class SmartCode(IntEnum):
    NOT_TESTED = -1
    NOT_SUPPORTED = 0
    SUPPORTED = 1


@dataclass(frozen=True, slots=True)
class SmartAttribute:
    id: int
    name: str
    critical: bool  # pre-failure attribute: a value at its threshold predicts failure
    current: int  # normalised value (ATA: 1-253, higher is better)
    worst: int
    threshold: int
    raw: int  # the six raw bytes as one number (vendor-specific packing)
    reading: int  # what the raw bytes say, decoded by smartctl (hours, sectors, degrees...)


@dataclass(frozen=True, slots=True)
class SmartReport:
    device: str  # /dev/sda
    code: SmartCode
    model: str = ""
    serial: str = ""
    passed: bool | None = None  # the drive's overall self-assessment
    attributes: list[SmartAttribute] = field(default_factory=list)
    reason: str = ""  # why it is not supported


def smartctl_path() -> str | None:
    return shutil.which("smartctl")


async def read_smart(device: str, model: str = "", timeout_s: float = TIMEOUT_S) -> SmartReport:
    """Run ``smartctl -j -a device`` and parse what it says."""
    program = smartctl_path()
    if program is None:
        reason = "smartctl is not installed"
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, reason=reason)
    try:
        proc = await asyncio.create_subprocess_exec(
            program, "-j", "-a", device,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as exc:
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, reason=f"smartctl: {exc}")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, reason="smartctl timed out")
    return parse_smartctl(out, device, model)


def parse_smartctl(output: bytes | str, device: str, model: str = "") -> SmartReport:
    """A report from smartctl's JSON output (``-j -a``)."""
    try:
        data = json.loads(output)
    except ValueError:
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, reason="smartctl gave no JSON")
    if not isinstance(data, dict):
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, reason="smartctl gave no JSON")
    meta = data.get("smartctl", {})
    status = int(meta.get("exit_status", 0))
    model = str(data.get("model_name") or data.get("scsi_model_name") or model)
    serial = str(data.get("serial_number", ""))
    support = data.get("smart_support", {})
    if status & (_BAD_COMMAND_LINE | _DEVICE_OPEN_FAILED) or (
        "smart_support" in data and not support.get("available", False)
    ):
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, serial, reason=_reason(meta))
    attributes = _ata(data) or _nvme(data)
    passed = data.get("smart_status", {}).get("passed")
    if not attributes and passed is None:
        return SmartReport(device, SmartCode.NOT_SUPPORTED, model, serial, reason=_reason(meta))
    return SmartReport(
        device,
        SmartCode.SUPPORTED,
        model,
        serial,
        passed=None if passed is None else bool(passed),
        attributes=attributes,
    )


def _reason(meta: dict[str, Any]) -> str:
    messages = [str(m.get("string", "")) for m in meta.get("messages", []) if isinstance(m, dict)]
    return "; ".join(m for m in messages if m) or "SMART is not available on this device"


def _ata(data: dict[str, Any]) -> list[SmartAttribute]:
    table = data.get("ata_smart_attributes", {}).get("table", [])
    return [
        SmartAttribute(
            id=int(row["id"]),
            name=str(row.get("name", "")).replace("_", " "),
            critical=bool(row.get("flags", {}).get("prefailure", False)),
            current=int(row.get("value", 0)),
            worst=int(row.get("worst", 0)),
            threshold=int(row.get("thresh", 0)),
            raw=int(row.get("raw", {}).get("value", 0)) & _RAW_MASK,
            reading=_reading(row.get("raw", {})),
        )
        for row in table
        if isinstance(row, dict) and "id" in row
    ]


def _reading(raw: dict[str, Any]) -> int:
    """The leading number of smartctl's decoded text (``36 (Min/Max 30/48)`` is 36
    degrees, ``1234h+05m`` is 1234 hours), else the raw number."""
    match = _LEADING_NUMBER.match(str(raw.get("string", "")))
    return int(match.group()) if match else int(raw.get("value", 0))


def _nvme(data: dict[str, Any]) -> list[SmartAttribute]:
    """NVMe has no attribute table: its health log's figures, numbered in log order."""
    log = data.get("nvme_smart_health_information_log", {})
    out: list[SmartAttribute] = []
    for number, (key, value) in enumerate(log.items(), start=1):
        if not isinstance(value, int) or isinstance(value, bool):
            continue  # lists (temperature sensors) and flags
        threshold = int(log.get("available_spare_threshold", 0)) if key == "available_spare" else 0
        out.append(
            SmartAttribute(
                id=number,
                name=key.replace("_", " ").capitalize(),
                critical=key in _NVME_CRITICAL,
                current=value,
                worst=value,
                threshold=threshold,
                raw=value & _RAW_MASK,
                reading=value,
            )
        )
    return out
