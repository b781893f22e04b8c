"""The server and the machine under it: identity, hardware, load, recording
storage, disk health, and restarting the server or the machine.

Hardware facts and S.M.A.R.T. readings change rarely and cost a walk of sysfs
or a run of smartctl per disk, so they are cached (``INFO_TTL_S``); load is
measured per request (``host/load.py``). Restarting the server is done by the
process that runs it (``vidicon.process``), through ``restart_hook``;
rebooting the machine runs the configured command, and only when the
configuration allows it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta, tzinfo
from enum import IntEnum
from pathlib import Path

import psutil

from vidicon import __version__
from vidicon.base.errors import Conflict, Forbidden, InvalidInput
from vidicon.config import Config
from vidicon.core.clock import Clock, us_to_datetime
from vidicon.core.zone import server_zone
from vidicon.db.usage import RecordedUsage, UsageQueries
from vidicon.host import hardware
from vidicon.host.load import Load, LoadMeter, MemoryLoad, memory_load
from vidicon.host.smart import SmartCode as SmartCode
from vidicon.host.smart import SmartReport as SmartReport
from vidicon.host.smart import read_smart
from vidicon.services.auth import User
from vidicon.services.channels import MAX_CHANNELS
from vidicon.storage.retention import Retention

log = logging.getLogger(__name__)

INFO_TTL_S = 60.0
RESTART_DELAY_S = 0.3  # lets the answer leave before the server stops
REBOOT_DELAY_S = 2.0
PRODUCT = "Vidicon"
LICENSE = "Apache-2.0"


class RebootDisabled(Forbidden):
    """The configuration does not let clients reboot the machine."""


class StorageUsage(IntEnum):
    """How a recording storage is used (TS-API's numbering)."""

    NOT_USED = -1
    READ_ONLY = 0
    WRITE_ONCE = 1
    OVERWRITE = 2


@dataclass(frozen=True, slots=True)
class Identity:
    site_name: str
    zone: tzinfo
    zone_name: str
    utc_offset: timedelta
    product: str
    version: str
    bits: int
    max_channels: int
    license: str


@dataclass(frozen=True, slots=True)
class HostInfo:
    measured_us: int
    os: hardware.OsInfo
    cpu: list[hardware.Cpu]
    mainboard: hardware.Board
    graphic_adapter: list[hardware.GraphicAdapter]
    memory_amount: int
    disk: list[hardware.Disk]
    smart_caps: dict[str, bool]  # by device
    cdrom: list[hardware.Cdrom]
    network_adapter: list[hardware.NetworkAdapter]

    @property
    def storage_amount(self) -> int:
        return sum(d.capacity for d in self.disk)


@dataclass(frozen=True, slots=True)
class RecordingStorage:
    path: str
    usage: StorageUsage
    total_space: int
    free_space: int
    min_free_bytes: int  # the free-space guard deletes the oldest footage below this
    recorded: RecordedUsage
    deleted_segments: int  # by retention since the server started
    deleted_bytes: int
    retention_passes: int


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    started_us: int
    uptime_s: float
    memory_bytes: int
    threads: int


@dataclass(frozen=True, slots=True)
class Health:
    measured_us: int
    load: Load | None = None
    memory: MemoryLoad | None = None
    recording: RecordingStorage | None = None
    process: ProcessInfo | None = None


@dataclass(slots=True)
class _Cached:
    at: float = -1e9
    info: HostInfo | None = None
    smart: dict[str, tuple[float, SmartReport]] = field(default_factory=dict)


class SystemService:
    def __init__(
        self,
        config: Config,
        data_dir: Path,
        usage: UsageQueries,
        retention: Retention,
        clock: Clock,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.usage = usage
        self.retention = retention
        self.clock = clock
        self.started_us = clock.now_us()
        self._started_mono = time.monotonic()
        # Set by the process that runs the server (vidicon.process): stops it
        # gracefully and starts it again. None when embedded (tests, ASGI hosts).
        self.restart_hook: Callable[[], None] | None = None
        self.meter = LoadMeter()
        self._cache = _Cached()
        self._tasks: set[asyncio.Future[object]] = set()

    # --- who we are --------------------------------------------------------

    def identity(self) -> Identity:
        zone = server_zone()
        offset = us_to_datetime(self.clock.now_us()).astimezone(zone).utcoffset() or timedelta(0)
        return Identity(
            site_name=self.config.server.site_name or socket.gethostname(),
            zone=zone,
            zone_name=str(getattr(zone, "key", None) or "UTC"),
            utc_offset=offset,
            product=PRODUCT,
            version=__version__,
            bits=64 if sys.maxsize > 2**32 else 32,
            max_channels=MAX_CHANNELS,
            license=LICENSE,
        )

    # --- hardware ----------------------------------------------------------

    async def info(self) -> HostInfo:
        if self._cache.info is None or time.monotonic() - self._cache.at > INFO_TTL_S:
            info = await asyncio.to_thread(self._read_info)
            models = {d.device_id: d.name for d in info.disk}
            reports = await self._smart_reports(list(models), models)
            caps = {r.device: r.code == SmartCode.SUPPORTED for r in reports}
            self._cache.info = replace(info, smart_caps=caps)
            self._cache.at = time.monotonic()
        return self._cache.info

    def _read_info(self) -> HostInfo:
        pci = hardware.PciNames()
        return HostInfo(
            measured_us=self.clock.now_us(),
            os=hardware.os_info(),
            cpu=hardware.cpus(),
            mainboard=hardware.mainboard(),
            graphic_adapter=hardware.graphic_adapters(pci),
            memory_amount=hardware.memory_amount(),
            disk=hardware.disks(),
            smart_caps={},
            cdrom=hardware.cdroms(),
            network_adapter=hardware.network_adapters(pci),
        )

    # --- load and storage --------------------------------------------------

    async def health(self, parts: set[str]) -> Health:
        """``parts``: any of cpu, memory, disk, network, recording, process."""
        measured = None
        if parts & {"cpu", "disk", "network"}:
            measured = await self.meter.measure()
        return Health(
            measured_us=self.clock.now_us(),
            load=measured,
            memory=memory_load() if "memory" in parts else None,
            recording=await self.recording_storage() if "recording" in parts else None,
            process=self.process_info() if "process" in parts else None,
        )

    async def recording_storage(self) -> RecordingStorage:
        disk = await asyncio.to_thread(shutil.disk_usage, self.data_dir)
        writable = os.access(self.data_dir, os.W_OK)
        stats = self.retention.stats
        return RecordingStorage(
            path=str(self.data_dir),
            usage=StorageUsage.OVERWRITE if writable else StorageUsage.READ_ONLY,
            total_space=disk.total,
            free_space=disk.free,
            min_free_bytes=self.retention.min_free_bytes,
            recorded=await self.usage.summary(),
            deleted_segments=stats.deleted_segments,
            deleted_bytes=stats.deleted_bytes,
            retention_passes=stats.passes,
        )

    def process_info(self) -> ProcessInfo:
        me = psutil.Process()
        return ProcessInfo(
            pid=os.getpid(),
            started_us=self.started_us,
            uptime_s=round(time.monotonic() - self._started_mono, 3),
            memory_bytes=int(me.memory_info().rss),
            threads=me.num_threads(),
        )

    # --- disk health -------------------------------------------------------

    async def smart(self, numbers: list[int] | None) -> list[SmartReport]:
        """S.M.A.R.T. of the machine's disks, numbered from 1 as ``info`` lists them."""
        blocks = await asyncio.to_thread(hardware.physical_disks)
        models = {f"/dev/{b.name}": hardware.disk_model(b) or b.name for b in blocks}
        devices = list(models)
        if numbers is not None:
            for n in numbers:
                if not 1 <= n <= len(devices):
                    raise InvalidInput(f"there is no disk {n} (disks: {len(devices)})", "hddsmart")
            devices = [devices[n - 1] for n in numbers]
        return await self._smart_reports(devices, models)

    async def _smart_reports(
        self, devices: list[str], models: dict[str, str] | None = None
    ) -> list[SmartReport]:
        now = time.monotonic()
        cache = self._cache.smart
        stale = [d for d in devices if d not in cache or now - cache[d][0] > INFO_TTL_S]
        models = models or {}
        for report in await asyncio.gather(*(read_smart(d, models.get(d, "")) for d in stale)):
            cache[report.device] = (now, report)
        return [cache[d][1] for d in devices]

    # --- restart and reboot ------------------------------------------------

    def restart(self, user: User) -> None:
        """Restart the server software (administrators): answered first, then done."""
        user.require_admin()
        hook = self.restart_hook
        if hook is None:
            raise Conflict("this server was not started by the vidicon command: it cannot restart")
        log.warning("restart requested by %s", user.username)
        asyncio.get_running_loop().call_later(RESTART_DELAY_S, hook)

    def reboot(self, user: User) -> None:
        """Reboot the machine (administrators, and only if the configuration allows it)."""
        user.require_admin()
        server = self.config.server
        if not server.allow_reboot:
            raise RebootDisabled("rebooting the machine is switched off (server.allow_reboot)")
        command = [str(part) for part in server.reboot_command]
        if not command or shutil.which(command[0]) is None:
            raise Conflict(f"the reboot command {command[:1]} is not available")
        log.warning("machine reboot requested by %s: %s", user.username, command)
        task = asyncio.ensure_future(self._run_later(command, REBOOT_DELAY_S))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_later(self, command: list[str], delay_s: float) -> object:
        await asyncio.sleep(delay_s)
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
        )
        code = await proc.wait()
        if code:
            log.error("reboot command %s exited with %d", command, code)
        return code
