"""What the machine is: OS, CPUs, mainboard, graphics, disks, network adapters.

Read from Linux's procfs and sysfs (and psutil) without privileges; what a
machine does not expose (a container has no DMI, a VM no temperature) is
left empty, never invented. Every function is blocking: call them in a
worker thread.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

SYS = Path("/sys")
PCI_IDS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))
SECTOR = 512  # sysfs counts sizes in 512-byte sectors, whatever the disk's own


@dataclass(frozen=True, slots=True)
class OsInfo:
    name: str
    service_pack: str
    version: str
    arch: str


@dataclass(frozen=True, slots=True)
class Cpu:
    name: str
    manufacturer: str
    cores: int


@dataclass(frozen=True, slots=True)
class Board:
    name: str | None = None
    manufacturer: str | None = None


@dataclass(frozen=True, slots=True)
class GraphicAdapter:
    name: str
    manufacturer: str
    video_memory: int | None = None


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    number_of_blocks: int
    size: int
    starting_offset: int
    file_system: str | None = None
    mount: str | None = None
    volume_name: str | None = None


@dataclass(frozen=True, slots=True)
class Disk:
    device_id: str  # /dev/sda
    name: str  # the model
    manufacturer: str
    interface: str
    capacity: int
    serial_no: str
    partition: list[Partition] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Cdrom:
    name: str
    manufacturer: str
    type: str


@dataclass(frozen=True, slots=True)
class IpConfig:
    ip: list[str]
    gateway: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NetworkAdapter:
    connection_id: str  # the interface name
    name: str
    manufacturer: str
    mac: str
    net_enabled: bool
    dl_speed: int | None = None  # bits per second
    ul_speed: int | None = None
    ipv4: IpConfig | None = None
    ipv6: IpConfig | None = None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def os_info() -> OsInfo:
    try:
        release = platform.freedesktop_os_release()
        name = release.get("PRETTY_NAME") or release.get("NAME") or platform.system()
    except OSError:
        name = f"{platform.system()}"
    arch = "64-bit" if sys.maxsize > 2**32 else "32-bit"
    return OsInfo(name=name, service_pack="", version=platform.release(), arch=arch)


def cpus() -> list[Cpu]:
    """One entry per physical processor package, as /proc/cpuinfo describes it."""
    packages: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in [*_read(Path("/proc/cpuinfo")).splitlines(), ""]:
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
        elif current:
            packages.setdefault(current.get("physical id", "0"), current)
            current = {}
    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    count = max(1, len(packages))
    fallback = platform.processor() or platform.machine()
    if not packages:
        return [Cpu(fallback, "", physical)]
    return [
        Cpu(
            name=p.get("model name") or p.get("Model") or fallback,
            manufacturer=p.get("vendor_id") or p.get("CPU implementer", ""),
            cores=int(p["cpu cores"]) if p.get("cpu cores", "").isdigit() else physical // count,
        )
        for _, p in sorted(packages.items())
    ]


def mainboard() -> Board:
    dmi = SYS / "class/dmi/id"
    return Board(_read(dmi / "board_name") or None, _read(dmi / "board_vendor") or None)


class PciNames:
    """Vendor and device names from the pci.ids database, when one is installed."""

    def __init__(self) -> None:
        self.vendors: dict[str, str] = {}
        self.devices: dict[tuple[str, str], str] = {}
        path = next((p for p in PCI_IDS if p.is_file()), None)
        if path is None:
            return
        vendor = ""
        for line in _read(path).splitlines():
            if not line or line.startswith("#") or line.startswith("C "):
                if line.startswith("C "):
                    break  # device classes follow the vendors
                continue
            if not line.startswith("\t"):
                vendor, _, name = line.partition("  ")
                self.vendors[vendor.lower()] = name.strip()
            elif not line.startswith("\t\t"):
                device, _, name = line.strip().partition("  ")
                self.devices[(vendor.lower(), device.lower())] = name.strip()

    def names(self, vendor: str, device: str) -> tuple[str, str]:
        vendor, device = vendor.removeprefix("0x").lower(), device.removeprefix("0x").lower()
        maker = self.vendors.get(vendor, f"PCI vendor {vendor}")
        return self.devices.get((vendor, device), f"PCI device {vendor}:{device}"), maker


def graphic_adapters(pci: PciNames | None = None) -> list[GraphicAdapter]:
    """PCI display controllers (class 0x03)."""
    out: list[GraphicAdapter] = []
    root = SYS / "bus/pci/devices"
    if not root.is_dir():
        return out
    for device in sorted(root.iterdir()):
        if not _read(device / "class").startswith("0x03"):
            continue
        pci = pci or PciNames()
        name, maker = pci.names(_read(device / "vendor"), _read(device / "device"))
        vram = _read(device / "mem_info_vram_total")  # amdgpu tells it
        out.append(GraphicAdapter(name, maker, int(vram) if vram.isdigit() else None))
    return out


def _mounts() -> dict[str, Any]:
    """Mounted block devices by their real device path."""
    mounts: dict[str, Any] = {}
    for part in psutil.disk_partitions(all=False):
        if part.device.startswith("/dev/"):
            mounts.setdefault(os.path.realpath(part.device), part)
    return mounts


def _labels() -> dict[str, str]:
    labels: dict[str, str] = {}
    by_label = Path("/dev/disk/by-label")
    if by_label.is_dir():
        for link in by_label.iterdir():
            labels[os.path.realpath(link)] = link.name.replace("\\x20", " ")
    return labels


def _vendor(block: Path) -> str:
    """SCSI/ATA disks name their maker; virtio and NVMe give a PCI vendor id."""
    vendor = _read(block / "device/vendor")
    if vendor.startswith("0x"):
        return PciNames().names(vendor, "0")[1]
    return vendor


def _interface(block: Path) -> str:
    real = str(block.resolve())
    for marker, name in (("/usb", "USB"), ("/nvme", "NVMe"), ("/virtio", "VirtIO"),
                         ("/ata", "ATA"), ("/host", "SCSI"), ("/mmc", "MMC")):  # fmt: skip
        if marker in real:
            return name
    return "unknown"


def physical_disks() -> list[Path]:
    """sysfs entries of the machine's disks: not loop, RAM, zram, device-mapper
    or optical devices, not empty."""
    root = SYS / "block"
    if not root.is_dir():
        return []
    return [
        block
        for block in sorted(root.iterdir())
        if "/virtual/" not in str(block.resolve())
        and not block.name.startswith("sr")
        and _read(block / "size") not in {"", "0"}
    ]


def disk_model(block: Path) -> str:
    return _read(block / "device/model")


def disks() -> list[Disk]:
    mounts, labels = _mounts(), _labels()
    out: list[Disk] = []
    for block in physical_disks():
        device = f"/dev/{block.name}"
        children = [p for p in block.iterdir() if p.name.startswith(block.name)]
        children = sorted(
            (p for p in children if (p / "start").exists()),
            key=lambda p: int(_read(p / "partition") or 0),
        )
        parts = [(p.name, p, int(_read(p / "start") or 0)) for p in children]
        if not parts and os.path.realpath(device) in mounts:
            parts = [(block.name, block, 0)]  # a file system on the whole disk
        partitions = []
        for name, path, start in parts:
            sectors = int(_read(path / "size") or 0)
            mounted = mounts.get(os.path.realpath(f"/dev/{name}"))
            partitions.append(
                Partition(
                    name=name,
                    number_of_blocks=sectors,
                    size=sectors * SECTOR,
                    starting_offset=start * SECTOR,
                    file_system=mounted.fstype if mounted else None,
                    mount=mounted.mountpoint if mounted else None,
                    volume_name=labels.get(os.path.realpath(f"/dev/{name}")),
                )
            )
        out.append(
            Disk(
                device_id=device,
                name=disk_model(block) or block.name,
                manufacturer=_vendor(block),
                interface=_interface(block),
                capacity=int(_read(block / "size") or 0) * SECTOR,
                serial_no=_read(block / "device/serial") or _read(block / "serial"),
                partition=partitions,
            )
        )
    return out


def cdroms() -> list[Cdrom]:
    root = SYS / "block"
    if not root.is_dir():
        return []
    info = _read(Path("/proc/sys/dev/cdrom/info"))
    writer = any(
        line.startswith("Can write") and line.split(":")[-1].split().count("1") > 0
        for line in info.splitlines()
    )
    return [
        Cdrom(
            name=_read(block / "device/model") or block.name,
            manufacturer=_read(block / "device/vendor"),
            type="CD/DVD writer" if writer else "CD/DVD-ROM",
        )
        for block in sorted(root.iterdir())
        if block.name.startswith("sr")
    ]


def _gateways() -> dict[str, list[str]]:
    """IPv4 default gateways per interface, from /proc/net/route."""
    gateways: dict[str, list[str]] = {}
    for line in _read(Path("/proc/net/route")).splitlines()[1:]:
        cols = line.split()
        if len(cols) > 2 and cols[1] == "00000000" and cols[2] != "00000000":
            address = socket.inet_ntoa(int(cols[2], 16).to_bytes(4, "little"))
            gateways.setdefault(cols[0], []).append(address)
    return gateways


def _nameservers() -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for line in _read(Path("/etc/resolv.conf")).splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[0] == "nameserver":
            (v6 if ":" in cols[1] else v4).append(cols[1])
    return v4, v6


def _prefix(netmask: str | None) -> int | None:
    if not netmask:
        return None
    family = socket.AF_INET6 if ":" in netmask else socket.AF_INET
    try:
        return bin(int.from_bytes(socket.inet_pton(family, netmask), "big")).count("1")
    except OSError:
        return None


def network_adapters(pci: PciNames | None = None) -> list[NetworkAdapter]:
    """Every interface but loopback, with its addresses, gateway and DNS servers."""
    stats, addrs = psutil.net_if_stats(), psutil.net_if_addrs()
    gateways, (dns4, dns6) = _gateways(), _nameservers()
    out: list[NetworkAdapter] = []
    for nic in sorted(addrs):
        st = stats.get(nic)
        if nic == "lo" or (st is not None and "loopback" in st.flags):
            continue
        mac, v4, v6 = "", [], []
        for a in addrs[nic]:
            prefix = _prefix(a.netmask)
            suffix = f"/{prefix}" if prefix is not None else ""
            if a.family == psutil.AF_LINK:
                mac = a.address.upper()
            elif a.family == socket.AF_INET:
                v4.append(a.address + suffix)
            elif a.family == socket.AF_INET6:
                v6.append(a.address + suffix)
        device = SYS / "class/net" / nic / "device"
        name, maker = nic, ""
        if (device / "vendor").exists() and (device / "device").exists():
            pci = pci or PciNames()
            name, maker = pci.names(_read(device / "vendor"), _read(device / "device"))
        speed = st.speed * 1_000_000 if st is not None and st.speed > 0 else None
        out.append(
            NetworkAdapter(
                connection_id=nic,
                name=name,
                manufacturer=maker,
                mac=mac,
                net_enabled=bool(st and st.isup),
                dl_speed=speed,
                ul_speed=speed,
                ipv4=IpConfig(v4, gateways.get(nic, []), dns4) if v4 else None,
                ipv6=IpConfig(v6, [], dns6) if v6 else None,
            )
        )
    return out


def memory_amount() -> int:
    return int(psutil.virtual_memory().total)
