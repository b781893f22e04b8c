"""How the machine is doing: CPU use and temperature, memory, disk and
network throughput.

Use and throughput are differences of the kernel's counters between two
readings. :class:`LoadMeter` keeps the last reading, so a client polling
every few seconds gets figures over its own polling interval; a reading
older than ``MAX_AGE_S`` (or none) is refreshed over ``WINDOW_S`` first.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from vidicon.host.hardware import cpus

WINDOW_S = 0.25
MAX_AGE_S = 10.0
KELVIN = 273.15


@dataclass(frozen=True, slots=True)
class Counters:
    at: float  # time.monotonic()
    cpu: list[Any]  # psutil's per-CPU times (named tuples)
    disks: dict[str, Any]  # psutil's per-disk I/O counters
    nics: dict[str, Any]  # psutil's per-interface counters


def read_counters() -> Counters:
    return Counters(
        at=time.monotonic(),
        cpu=psutil.cpu_times(percpu=True),
        disks=psutil.disk_io_counters(perdisk=True, nowrap=True) or {},
        nics=psutil.net_io_counters(pernic=True, nowrap=True) or {},
    )


@dataclass(frozen=True, slots=True)
class Temperature:
    current: float
    critical: float | None


@dataclass(frozen=True, slots=True)
class CpuLoad:
    threads: list[int]  # percent per logical processor
    total: int
    temperature_kelvin: Temperature | None = None


@dataclass(frozen=True, slots=True)
class MemoryLoad:
    total_physical: int
    free_physical: int  # available without swapping
    total_virtual: int  # physical + swap
    free_virtual: int


@dataclass(frozen=True, slots=True)
class VolumeLoad:
    name: str  # the mount point
    file_system: str
    volume_name: str
    total_space: int
    free_space: int
    total_time_percent: int = 0
    read_time_percent: int = 0
    write_time_percent: int = 0
    total_bytes_per_sec: int = 0
    read_bytes_per_sec: int = 0
    write_bytes_per_sec: int = 0


@dataclass(frozen=True, slots=True)
class NicLoad:
    name: str
    cur_bandwidth: int  # bits per second, 0 when unknown
    total_bytes_per_sec: int = 0
    recv_bytes_per_sec: int = 0
    send_bytes_per_sec: int = 0


@dataclass(frozen=True, slots=True)
class Load:
    cpu: list[CpuLoad]
    disk: list[VolumeLoad] = field(default_factory=list)
    network: list[NicLoad] = field(default_factory=list)


class LoadMeter:
    def __init__(self) -> None:
        self._last: Counters | None = None
        self._lock = asyncio.Lock()

    async def measure(self) -> Load:
        async with self._lock:
            now = await asyncio.to_thread(read_counters)
            last = self._last
            if last is None or now.at - last.at > MAX_AGE_S:
                last = now
            if now.at - last.at < WINDOW_S:
                await asyncio.sleep(WINDOW_S - (now.at - last.at))
                now = await asyncio.to_thread(read_counters)
            self._last = now
            return await asyncio.to_thread(compute_load, last, now)


def _percent(part: float, whole: float) -> int:
    return max(0, min(100, round(100 * part / whole))) if whole > 0 else 0


def _busy(before: tuple[float, ...], after: tuple[float, ...], fields: tuple[str, ...]) -> int:
    spent = [b - a for a, b in zip(before, after, strict=True)]
    idle = sum(d for d, f in zip(spent, fields, strict=True) if f in {"idle", "iowait"})
    return _percent(sum(spent) - idle, sum(spent))


def _temperatures() -> list[Temperature]:
    """Per processor package where the sensors say so (coretemp, k10temp...)."""
    reader = getattr(psutil, "sensors_temperatures", None)  # Linux and FreeBSD only
    sensors: dict[str, list[Any]] = reader() if reader is not None else {}
    for driver in ("coretemp", "k10temp", "zenpower", "cpu_thermal", "soc_thermal"):
        readings = sensors.get(driver, [])
        packages = [r for r in readings if r.label.startswith(("Package", "Tctl", "Tdie"))]
        chosen = packages or readings[:1]
        if chosen:
            return [
                Temperature(
                    round(r.current + KELVIN, 1),
                    round(r.critical + KELVIN, 1) if r.critical else None,
                )
                for r in chosen
            ]
    return []


def compute_load(before: Counters, after: Counters) -> Load:
    seconds = max(after.at - before.at, 1e-3)
    fields: tuple[str, ...] = getattr(after.cpu[0], "_fields", ()) if after.cpu else ()
    pairs = zip(before.cpu, after.cpu, strict=False)
    threads = [_busy(tuple(a), tuple(b), fields) for a, b in pairs]
    packages = cpus()
    per = max(1, len(threads) // max(1, len(packages)))
    temps = _temperatures()
    cpu = []
    for i in range(max(1, len(packages))):
        mine = threads[i * per : (i + 1) * per] or threads
        total = round(sum(mine) / len(mine)) if mine else 0
        cpu.append(CpuLoad(mine, total, temps[i] if i < len(temps) else None))
    return Load(cpu, _volumes(before, after, seconds), _nics(before, after, seconds))


def memory_load() -> MemoryLoad:
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    return MemoryLoad(
        total_physical=int(vm.total),
        free_physical=int(vm.available),
        total_virtual=int(vm.total + swap.total),
        free_virtual=int(vm.available + swap.free),
    )


def _labels() -> dict[str, str]:
    root = Path("/dev/disk/by-label")
    if not root.is_dir():
        return {}
    return {os.path.realpath(p): p.name.replace("\\x20", " ") for p in root.iterdir()}


def _volumes(before: Counters, after: Counters, seconds: float) -> list[VolumeLoad]:
    labels = _labels()
    out: list[VolumeLoad] = []
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        real = os.path.realpath(part.device)
        if not part.device.startswith("/dev/") or real in seen:
            continue
        seen.add(real)
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        key = os.path.basename(real)
        a, b = before.disks.get(key), after.disks.get(key)
        rates: dict[str, int] = {}
        if a is not None and b is not None:
            ms = seconds * 1000
            read, write = b.read_bytes - a.read_bytes, b.write_bytes - a.write_bytes
            busy = getattr(b, "busy_time", 0) - getattr(a, "busy_time", 0)
            rates = {
                "total_time_percent": _percent(busy, ms),
                "read_time_percent": _percent(b.read_time - a.read_time, ms),
                "write_time_percent": _percent(b.write_time - a.write_time, ms),
                "read_bytes_per_sec": round(read / seconds),
                "write_bytes_per_sec": round(write / seconds),
                "total_bytes_per_sec": round((read + write) / seconds),
            }
        out.append(
            VolumeLoad(
                name=part.mountpoint,
                file_system=part.fstype,
                volume_name=labels.get(real, ""),
                total_space=int(usage.total),
                free_space=int(usage.free),
                **rates,
            )
        )
    return out


def _nics(before: Counters, after: Counters, seconds: float) -> list[NicLoad]:
    stats = psutil.net_if_stats()
    out: list[NicLoad] = []
    for nic in sorted(after.nics):
        st = stats.get(nic)
        if nic == "lo" or (st is not None and "loopback" in st.flags):
            continue
        a, b = before.nics.get(nic), after.nics.get(nic)
        recv = round((b.bytes_recv - a.bytes_recv) / seconds) if a and b else 0
        sent = round((b.bytes_sent - a.bytes_sent) / seconds) if a and b else 0
        speed = st.speed * 1_000_000 if st is not None and st.speed > 0 else 0
        out.append(NicLoad(nic, speed, recv + sent, recv, sent))
    return out
