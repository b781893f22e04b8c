"""Server configuration: a TOML file, overridden by command-line options.

Example (every key optional)::

    [server]
    host = "0.0.0.0"
    http_port = 8080

    [storage]
    data_dir = "/var/lib/vidicon"
    media_dir = "/srv/clips"        # where media: sources may read files
    segment_seconds = 60
    min_free_bytes = 1073741824     # free-space guard
    retention_interval_s = 30

    [database]
    url = "sqlite+aiosqlite:////var/lib/vidicon/vidicon.db"  # or postgresql+asyncpg://...

    [sources]
    retry_max_s = 3
    read_timeout_s = 5

    [live]
    rtsp_port = 8554                # RTSP restream; 0 switches it off
    allow_anonymous = false         # let clients without credentials watch live video
    mjpeg_fps = 2.0
    snapshot_cache_s = 1.0
    webrtc_ice_servers = []         # STUN/TURN for WebRTC, e.g. ["stun:stun.example.net:3478",
                                    # "turn:user:password@turn.example.net:3478?transport=udp"];
                                    # none: host candidates only (same machine or LAN)

    [auth]
    failure_delay_s = 0.5           # a failed sign-in is answered after this, doubling each time
    max_failure_delay_s = 4.0
    user_failures = 5               # failed sign-ins for one user name before it is locked out
    address_failures = 20           # failed sign-ins from one client address before lockout
    lockout_s = 60.0                # how long a lockout lasts (429 with Retry-After)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vidicon.db.database import sqlite_url


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080


@dataclass(frozen=True, slots=True)
class StorageConfig:
    data_dir: Path = Path("data")
    media_dir: Path | None = None
    segment_seconds: float = 60.0
    min_free_bytes: int = 1 << 30
    retention_interval_s: float = 30.0


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    retry_initial_s: float = 0.5
    retry_max_s: float = 3.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class LiveConfig:
    rtsp_port: int = 8554  # 0: no RTSP restream server
    rtsp_host: str | None = None  # default: the HTTP host
    allow_anonymous: bool = False  # anonymous clients may watch live video (never by default)
    mjpeg_fps: float = 2.0
    snapshot_cache_s: float = 1.0
    hls_part_s: float = 0.2  # LL-HLS partial segment target duration
    hls_segments: int = 6  # full segments kept in an LL-HLS playlist
    webrtc_ice_servers: tuple[str, ...] = ()  # STUN/TURN URLs; none: host candidates only


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Sign-in throttling (vidicon.services.login_throttle)."""

    failure_delay_s: float = 0.5
    max_failure_delay_s: float = 4.0
    user_failures: int = 5
    address_failures: int = 20
    lockout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    database_url: str | None = None
    simulated_cameras: int = 0  # `vidicon demo` sets 4
    auth: AuthConfig = field(default_factory=AuthConfig)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return sqlite_url(str(self.storage.data_dir.resolve() / "vidicon.db"))


class ConfigError(ValueError):
    pass


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    return Config(
        server=_section(ServerConfig, raw.get("server", {})),
        storage=_section(StorageConfig, raw.get("storage", {})),
        sources=_section(SourcesConfig, raw.get("sources", {})),
        live=_section(LiveConfig, raw.get("live", {})),
        database_url=raw.get("database", {}).get("url"),
        auth=_section(AuthConfig, raw.get("auth", {})),
    )


def _section(cls: Any, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown keys in [{cls.__name__}]: {', '.join(sorted(unknown))}")
    converted: dict[str, Any] = {}
    for key, value in values.items():
        if key.endswith("_dir"):
            value = Path(value)
        converted[key] = value
    return cls(**converted)


def with_overrides(
    config: Config,
    *,
    data_dir: Path | None = None,
    http_port: int | None = None,
    host: str | None = None,
    simulated_cameras: int | None = None,
) -> Config:
    storage = replace(config.storage, data_dir=data_dir) if data_dir else config.storage
    server = config.server
    if http_port is not None:
        server = replace(server, http_port=http_port)
    if host is not None:
        server = replace(server, host=host)
    sims = config.simulated_cameras if simulated_cameras is None else simulated_cameras
    return replace(config, storage=storage, server=server, simulated_cameras=sims)
