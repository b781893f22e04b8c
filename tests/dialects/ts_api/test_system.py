"""TS-API ``/api/system``: hardware, health with the machine's real figures,
S.M.A.R.T. through smartctl, restart and reboot with their permissions."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_client
from tests.dialects.ts_api.conftest import MINUTE, T0, add_files
from vidicon.app import Vidicon
from vidicon.services import system as system_service

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
INFO_KEYS = ["lastUpdate", "os", "cpu", "mainboard", "physicalMemory", "memoryAmount",
             "graphicAdapter", "disk", "storageAmount", "cdrom", "networkAdapter"]  # fmt: skip


async def get(client: httpx.AsyncClient, query: str, code: int = 200) -> Any:
    response = await client.get(f"/api/system{query}")
    assert response.status_code == code, response.text
    return response.json()


def interfaces() -> set[str]:
    return {name for _, name in socket.if_nameindex() if name != "lo"}


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def mount_of(path: Path) -> str:
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return str(path)


async def test_info_lists_the_machine(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    assert (await client.get("/api/system")).status_code == 401
    everything = await get(admin_client, "")
    assert list(await get(admin_client, "?info")) == INFO_KEYS
    assert list(everything) == INFO_KEYS
    assert TIME.fullmatch(everything["lastUpdate"])
    assert everything["os"]["version"] == platform.release()
    assert everything["os"]["arch"] == "64-bit"
    assert everything["os"]["name"] == platform.freedesktop_os_release()["PRETTY_NAME"]
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    if model:
        assert everything["cpu"][0]["name"] == model.group(1).strip()
    assert sum(c["cores"] for c in everything["cpu"]) >= 1
    assert everything["memoryAmount"] == physical_memory()
    assert everything["storageAmount"] == sum(d["capacity"] for d in everything["disk"])
    for disk in everything["disk"]:
        name = disk["deviceId"].removeprefix("/dev/")
        assert disk["capacity"] == int(Path(f"/sys/block/{name}/size").read_text()) * 512
        assert isinstance(disk["smartCaps"], bool)
        for part in disk["partition"]:
            assert "mount" not in part or os.path.ismount(part["mount"])
    nics = {n["connectionId"]: n for n in everything["networkAdapter"]}
    assert set(nics) == interfaces()
    for name, nic in nics.items():
        assert nic["mac"] == Path(f"/sys/class/net/{name}/address").read_text().strip().upper()
    # Items alone, the spec's other names, the supported list.
    assert list(await get(admin_client, "?info=os")) == ["lastUpdate", "os"]
    assert list(await get(admin_client, "?info=storage,network")) == [
        "lastUpdate", "disk", "storageAmount", "networkAdapter"
    ]  # fmt: skip
    assert list(await get(admin_client, "?info=memory,cpu")) == [
        "lastUpdate", "physicalMemory", "memoryAmount", "cpu"
    ]  # fmt: skip
    assert list(await get(admin_client, "?info=all")) == INFO_KEYS
    assert await get(admin_client, "?info=supported") == [
        "os", "cpu", "mainboard", "memory", "graphicAdapter", "disk", "cdrom",
        "networkAdapter", "all",
    ]  # fmt: skip
    pretty = await admin_client.get("/api/system?info=os&indent=4")
    assert pretty.text.startswith('{\n    "lastUpdate": ')
    for bad in ("?info=gpu", "?info&health", "?infos", "?info=os&indent=-1"):
        assert (await admin_client.get(f"/api/system{bad}")).status_code == 400, bad


async def test_health_has_real_figures(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert await get(admin_client, "?health=supported") == [
        "cpu", "memory", "disk", "recording", "network", "process", "all"
    ]  # fmt: skip
    every = await get(admin_client, "?health")
    assert list(every) == ["lastUpdate", "cpu", "memory", "disk", "recording", "network",
                           "process"]  # fmt: skip
    memory = every["memory"]
    assert memory["totalPhysical"] == physical_memory()
    assert 0 < memory["freePhysical"] <= memory["totalPhysical"] <= memory["totalVirtual"]
    assert {n["name"] for n in every["network"]} == interfaces()
    assert every["process"]["pid"] == os.getpid()
    assert TIME.fullmatch(every["process"]["startTime"])
    # CPU: a busy process shows up in the figures of some logical processor.
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        await asyncio.sleep(0.5)
        cpu = (await get(admin_client, "?health=cpu"))["cpu"]
    finally:
        spinner.kill()
        spinner.wait()
    threads = [t for c in cpu for t in c["usage"]["threads"]]
    assert len(threads) == os.cpu_count()
    assert all(0 <= t <= 100 for t in threads)
    assert max(threads) >= 50
    # Disk: bytes written between two readings are counted on the data directory's volume.
    mount = mount_of(vidicon_app.data_dir)
    volumes = {v["name"]: v for v in (await get(admin_client, "?health=disk"))["disk"]}
    if mount in volumes:
        assert volumes[mount]["totalSpace"] == shutil.disk_usage(mount).total
        with open(vidicon_app.data_dir / "ballast", "wb") as f:
            f.write(os.urandom(8 << 20))
            f.flush()
            os.fsync(f.fileno())
        await asyncio.sleep(0.3)
        after = {v["name"]: v for v in (await get(admin_client, "?health=disk"))["disk"]}
        assert after[mount]["writeBytesPerSec"] > 0


async def test_recording_storage(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    empty = (await get(admin_client, "?health=recording"))["recording"]
    assert empty["current"] == str(vidicon_app.data_dir)
    assert empty["storage"][0]["recordedBytes"] == 0
    assert "timeRange" not in empty["storage"][0]
    await add_files(vidicon_app, 1, [(T0, T0 + MINUTE), (T0 + MINUTE, T0 + 2 * MINUTE)])
    await add_files(vidicon_app, 2, [(T0 + 5 * MINUTE, T0 + 6 * MINUTE)])
    recording = (await get(admin_client, "?health=recording&lang=ko-KR"))["recording"]
    storage = recording["storage"][0]
    free = shutil.disk_usage(vidicon_app.data_dir)
    assert storage["path"] == str(vidicon_app.data_dir)
    assert (storage["usage"], storage["comment"]) == (2, "덮어쓰기")
    assert storage["totalSpace"] == free.total
    assert abs(storage["freeSpace"] - free.free) < 64 << 20
    # Each indexed file: an 800-byte init segment and one 1000-byte fragment.
    assert (storage["recordedBytes"], storage["files"], storage["lockedBytes"]) == (5400, 3, 0)
    assert storage["timeRange"] == ["2018-01-08T09:30:00.000-05:00",
                                    "2018-01-08T09:36:00.000-05:00"]  # fmt: skip
    assert storage["retention"]["passes"] >= 1
    assert storage["minFreeSpace"] == 0


async def test_hddsmart(admin_client: httpx.AsyncClient) -> None:
    disks = (await get(admin_client, "?info=disk"))["disk"]
    reports = await get(admin_client, "?hddsmart")
    assert [r["name"] for r in reports] == [d["deviceId"] for d in disks]
    installed = shutil.which("smartctl") is not None
    for report, disk in zip(reports, disks, strict=True):
        assert report["code"] in (0, 1)
        assert disk["smartCaps"] == (report["code"] == 1)
        if report["code"] == 0:
            assert report["message"] == "Not supported"
            assert report["reason"]
            if not installed:
                assert report["reason"] == "smartctl is not installed"
        else:
            assert report["message"] == "Supported"
            assert all(re.fullmatch(r"[0-9A-F]{12}", a["rawHex"]) for a in report["smart"])
    if disks:
        assert await get(admin_client, "?hddsmart=1") == reports[:1]
    for bad in (f"?hddsmart={len(disks) + 1}", "?hddsmart=x", "?hddsmart=0"):
        assert (await admin_client.get(f"/api/system{bad}")).status_code == 400, bad


async def test_hddsmart_without_smartctl(
    admin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nowhere to find smartctl
    for report in await get(admin_client, "?hddsmart&lang=es-ES"):
        assert report["code"] == 0
        assert report["message"] == "No compatible"
        assert report["reason"] == "smartctl is not installed"


async def test_restart_permissions_and_hook(
    vidicon_app: Vidicon, client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    assert (await client.get("/api/system?restart")).status_code == 401
    await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        assert (await guard.get("/api/system?restart")).status_code == 403
        assert (await guard.get("/api/system?reboot")).status_code == 403
        assert (await guard.get("/api/system?health=memory")).status_code == 200
    # Embedded (no process to re-execute): a conflict, not a pretence.
    assert (await admin_client.get("/api/system?restart")).status_code == 409
    calls: list[float] = []
    vidicon_app.system.restart_hook = lambda: calls.append(1.0)
    answer = await get(admin_client, "?restart&lang=es-ES")
    assert answer == {"code": 0, "message": "El servidor se reiniciará en unos segundos."}
    assert calls == []  # the answer leaves first
    await asyncio.sleep(system_service.RESTART_DELAY_S + 0.3)
    assert calls == [1.0]


async def test_reboot_only_when_configured(
    vidicon_app: Vidicon,
    admin_client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = await get(admin_client, "?reboot", 403)
    assert refused == {
        "code": -1,
        "message": "Rebooting the system is switched off in the server's configuration.",
    }
    # Switched on, the configured command runs (here one that leaves a mark, not a reboot).
    mark = tmp_path / "rebooted"
    command = (sys.executable, "-c", f"open({str(mark)!r}, 'w').write('yes')")
    config = vidicon_app.system.config
    server = replace(config.server, allow_reboot=True, reboot_command=command)
    vidicon_app.system.config = replace(config, server=server)
    monkeypatch.setattr(system_service, "REBOOT_DELAY_S", 0.05)
    answer = await get(admin_client, "?reboot")
    assert answer == {
        "code": 0,
        "message": "The system will shut down in less than a minute and then restart.",
    }
    for _ in range(100):
        if mark.exists():
            break
        await asyncio.sleep(0.05)
    assert mark.read_text() == "yes"
    missing = replace(server, reboot_command=("no-such-reboot-command",))
    vidicon_app.system.config = replace(config, server=missing)
    assert (await admin_client.get("/api/system?reboot")).status_code == 409
