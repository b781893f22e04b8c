"""smartctl's JSON (``smartctl -j -a``, smartmontools 7) read by host/smart.py:
ATA attribute tables, NVMe health logs, and the answers of disks it cannot read."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from vidicon.host.smart import SmartCode, parse_smartctl, read_smart


def meta(exit_status: int, *messages: str) -> dict[str, Any]:
    return {
        "version": [7, 3],
        "svn_revision": "5338",
        "platform_info": "x86_64-linux-6.1.0",
        "build_info": "(local build)",
        "argv": ["smartctl", "-j", "-a", "/dev/sda"],
        "messages": [{"string": m, "severity": "error"} for m in messages],
        "exit_status": exit_status,
    }


def attribute(id_: int, name: str, value: int, worst: int, thresh: int, raw: int,
              raw_text: str, prefailure: bool) -> dict[str, Any]:  # fmt: skip
    return {
        "id": id_,
        "name": name,
        "value": value,
        "worst": worst,
        "thresh": thresh,
        "when_failed": "",
        "flags": {"value": 51 if prefailure else 50, "string": "PO--CK ",
                  "prefailure": prefailure, "updated_online": True, "performance": False,
                  "error_rate": False, "event_count": not prefailure, "auto_keep": True},
        "raw": {"value": raw, "string": raw_text},
    }  # fmt: skip


ATA = {
    "json_format_version": [1, 0],
    "smartctl": meta(0),
    "device": {"name": "/dev/sda", "info_name": "/dev/sda [SAT]", "type": "sat",
               "protocol": "ATA"},
    "model_family": "Western Digital Purple",
    "model_name": "WDC WD40PURZ-85TTDY0",
    "serial_number": "WD-WCC7K1234567",
    "user_capacity": {"blocks": 7814037168, "bytes": 4000787030016},
    "smart_support": {"available": True, "enabled": True},
    "smart_status": {"passed": True},
    "ata_smart_attributes": {"revision": 16, "table": [
        attribute(5, "Reallocated_Sector_Ct", 200, 200, 140, 0, "0", True),
        attribute(9, "Power_On_Hours", 76, 76, 0, 17642, "17642", False),
        attribute(194, "Temperature_Celsius", 112, 101, 0, 0x1E00140024, "36 (Min/Max 20/30)",
                  False),
    ]},
    "temperature": {"current": 36},
}  # fmt: skip

NVME = {
    "json_format_version": [1, 0],
    "smartctl": meta(0),
    "device": {"name": "/dev/nvme0n1", "info_name": "/dev/nvme0n1", "type": "nvme",
               "protocol": "NVMe"},
    "model_name": "Samsung SSD 980 PRO 1TB",
    "serial_number": "S5GXNX0T123456",
    "smart_support": {"available": True, "enabled": True},
    "smart_status": {"passed": True, "nvme": {"value": 0}},
    "nvme_smart_health_information_log": {
        "critical_warning": 0, "temperature": 41, "available_spare": 100,
        "available_spare_threshold": 10, "percentage_used": 2, "data_units_read": 1234567,
        "data_units_written": 2345678, "power_on_hours": 5120, "unsafe_shutdowns": 14,
        "media_errors": 0, "temperature_sensors": [41, 45],
    },
}  # fmt: skip


def test_ata_attributes() -> None:
    report = parse_smartctl(json.dumps(ATA), "/dev/sda")
    assert report.code == SmartCode.SUPPORTED
    assert (report.model, report.serial, report.passed) == (
        "WDC WD40PURZ-85TTDY0", "WD-WCC7K1234567", True
    )  # fmt: skip
    realloc, hours, temp = report.attributes
    assert (realloc.id, realloc.name, realloc.critical) == (5, "Reallocated Sector Ct", True)
    assert (realloc.current, realloc.worst, realloc.threshold) == (200, 200, 140)
    assert realloc.reading == 0
    assert (hours.name, hours.critical, hours.current, hours.reading) == (
        "Power On Hours", False, 76, 17642
    )  # fmt: skip
    # The raw bytes pack current, min and max; smartctl's text gives the reading.
    assert (temp.reading, temp.raw) == (36, 0x1E00140024)


def test_nvme_health_log() -> None:
    report = parse_smartctl(json.dumps(NVME).encode(), "/dev/nvme0n1")
    assert report.code == SmartCode.SUPPORTED
    by_name = {a.name: a for a in report.attributes}
    assert "Temperature sensors" not in by_name  # a list, not a figure
    assert by_name["Available spare"].threshold == 10
    assert by_name["Available spare"].critical
    assert by_name["Power on hours"].reading == 5120
    assert not by_name["Power on hours"].critical
    assert [a.id for a in report.attributes] == sorted(a.id for a in report.attributes)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"smartctl": meta(2, "Smartctl open device: /dev/sdz failed: No such device")},
         "Smartctl open device: /dev/sdz failed: No such device"),
        ({"smartctl": meta(1, "/dev/vda: Unable to detect device type")},
         "/dev/vda: Unable to detect device type"),
        ({"smartctl": meta(4), "model_name": "USB bridge",
          "smart_support": {"available": False}}, "SMART is not available on this device"),
    ],
)  # fmt: skip
def test_disks_it_cannot_read_are_not_supported(document: dict[str, Any], reason: str) -> None:
    report = parse_smartctl(json.dumps(document), "/dev/sdz", "sysfs model")
    assert report.code == SmartCode.NOT_SUPPORTED
    assert report.reason == reason
    assert report.attributes == []


def test_failing_disk_is_still_read() -> None:
    """Exit bits 3 and up report the disk's health, not a failure to read it."""
    failing = {**ATA, "smartctl": meta(8 | 16), "smart_status": {"passed": False}}
    report = parse_smartctl(json.dumps(failing), "/dev/sda")
    assert report.code == SmartCode.SUPPORTED
    assert report.passed is False


def test_not_json() -> None:
    report = parse_smartctl(b"smartctl: command not found", "/dev/sda", "Model")
    assert (report.code, report.model) == (SmartCode.NOT_SUPPORTED, "Model")


@pytest.mark.skipif(shutil.which("smartctl") is None, reason="smartmontools not installed")
async def test_real_smartctl_on_a_missing_device() -> None:
    report = await read_smart("/dev/vidicon-no-such-disk", "Nothing")
    assert report.code == SmartCode.NOT_SUPPORTED
    assert "/dev/vidicon-no-such-disk" in report.reason
    assert report.model == "Nothing"
