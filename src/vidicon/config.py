"""Server configuration: a TOML file, overridden by command-line options.

Example (every key optional)::

    [server]
    host = "0.0.0.0"
    http_port = 8080
    site_name = "Warehouse"         # default: the host name
    allow_reboot = false            # TS-API /api/system?reboot reboots the machine when true
    reboot_command = ["systemctl", "reboot"]

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
    [notifications]                 # every notifier: own queue, retries with backoff, never blocks
    public_url = "https://nvr.example.net"  # base of image links (default: the server address)
    retry_initial_s = 1.0           # first retry delay; doubles up to retry_max_s, with jitter
    retry_max_s = 60.0
    attempts = 8                    # tries per message before it is given up (counted, logged)
    queue = 256                     # events a notifier may lag behind; beyond, the oldest are lost

    [notifications.mqtt]            # topics <prefix>/<channel id or "system">/<kind>;
    host = "broker.example.net"     # <prefix>/status is a retained "online"/"offline" (last will)
    port = 1883
    username = "vidicon"
    password = "..."                # secrets are never logged or returned by any API
    tls = false
    ca_file = "/etc/ssl/certs/broker-ca.pem"  # optional; default: the system's trust store
    topic_prefix = "vidicon"
    qos = 1
    kinds = ["motion", "lpr"]       # optional filters on every notifier: event kinds ...
    channels = [1, 2]               # ... and channel ids (events of no channel always pass)

    [[notifications.webhooks]]      # POST of the JSON message; several allowed
    url = "https://hooks.example.net/vidicon"
    secret = "..."                  # signs: X-Vidicon-Signature: t=<unix s>,v1=<hex HMAC-SHA256
    timeout_s = 10.0                #   of "<t>.<body>">; see docs/design/0018-notifications.md

    [notifications.email]           # one mail per event, the snapshot JPEG attached
    host = "smtp.example.net"
    port = 587
    starttls = true                 # or ssl = true (implicit TLS, port 465)
    username = "nvr@example.net"
    password = "..."
    from = "nvr@example.net"
    to = ["guard@example.net"]
    attach_snapshot = true

    [notifications.ftp]             # uploads each event's snapshot JPEG
    host = "ftp.example.net"
    port = 21
    username = "nvr"
    password = "..."
    directory = "/incoming/vidicon"
    passive = true
    tls = false                     # explicit FTPS (AUTH TLS, protected data channel)

    [auth]
    failure_delay_s = 0.5           # a failed sign-in is answered after this, doubling each time
    max_failure_delay_s = 4.0
    user_failures = 5               # failed sign-ins for one user name before it is locked out
    address_failures = 20           # failed sign-ins from one client address before lockout
    lockout_s = 60.0                # how long a lockout lasts (429 with Retry-After)
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vidicon.core.events import EventKind
from vidicon.db.database import sqlite_url


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    site_name: str = ""  # the name clients show for this server; empty: the host name
    allow_reboot: bool = False  # let administrators reboot the machine through the API
    reboot_command: tuple[str, ...] = ("systemctl", "reboot")  # argument list, no shell


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
class MqttConfig:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    topic_prefix: str = "vidicon"
    qos: int = 1
    kinds: tuple[EventKind, ...] | None = None
    channels: tuple[int, ...] | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _check_port(self.port)
        if self.qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        prefix = self.topic_prefix
        if not prefix or prefix.startswith("/") or prefix.endswith("/") or set(prefix) & {"+", "#"}:
            raise ValueError("topic_prefix: a topic without wildcards or outer slashes")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str = field(repr=False)  # may hold a token in its path or query
    secret: str | None = field(default=None, repr=False)
    kinds: tuple[EventKind, ...] | None = None
    channels: tuple[int, ...] | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// address")


@dataclass(frozen=True, slots=True)
class EmailConfig:
    host: str
    to: tuple[str, ...]
    sender: str  # the "from" key
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    attach_snapshot: bool = True
    kinds: tuple[EventKind, ...] | None = None
    channels: tuple[int, ...] | None = None
    timeout_s: float = 20.0

    def __post_init__(self) -> None:
        _check_port(self.port)
        if not self.to or not all("@" in a for a in self.to) or "@" not in self.sender:
            raise ValueError("from and to need e-mail addresses")
        if self.starttls and self.ssl:
            raise ValueError("choose starttls or ssl, not both")


@dataclass(frozen=True, slots=True)
class FtpConfig:
    host: str
    port: int = 21
    username: str = "anonymous"
    password: str = field(default="", repr=False)
    directory: str = "/"
    passive: bool = True
    tls: bool = False
    kinds: tuple[EventKind, ...] | None = None
    channels: tuple[int, ...] | None = None
    timeout_s: float = 20.0

    def __post_init__(self) -> None:
        _check_port(self.port)
        if any(part in ("..", ".") for part in self.directory.split("/")) or "\n" in self.directory:
            raise ValueError("directory: an absolute or relative path without . or ..")


@dataclass(frozen=True, slots=True)
class NotificationsConfig:
    public_url: str | None = None  # base of image links; default: the server's own address
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    attempts: int = 8  # tries per message before it is given up
    queue: int = 256  # events one notifier may lag behind (the oldest are lost beyond)
    mqtt: MqttConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    email: EmailConfig | None = None
    ftp: FtpConfig | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.queue < 1:
            raise ValueError("attempts and queue must be at least 1")
        if not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ValueError("retry delays: 0 < retry_initial_s <= retry_max_s")


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")


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
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
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
        notifications=_notifications(raw.get("notifications", {})),
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


def _notifications(values: dict[str, Any]) -> NotificationsConfig:
    values = dict(values)
    mqtt, email, ftp = values.pop("mqtt", None), values.pop("email", None), values.pop("ftp", None)
    hooks = values.pop("webhooks", [])
    if not isinstance(hooks, list):
        raise ConfigError("[[notifications.webhooks]] is a list of tables")
    try:
        base: NotificationsConfig = _section(NotificationsConfig, values)
        return replace(
            base,
            mqtt=None if mqtt is None else _notifier(MqttConfig, mqtt),
            webhooks=tuple(_notifier(WebhookConfig, hook) for hook in hooks),
            email=None if email is None else _notifier(EmailConfig, email),
            ftp=None if ftp is None else _notifier(FtpConfig, ftp),
        )
    except ValueError as exc:  # a bad value; the message names it, never its secret
        raise ConfigError(f"[notifications]: {exc}") from None


def _notifier(cls: Any, values: dict[str, Any]) -> Any:
    """One notifier table: lists become tuples, event kinds are checked."""
    if not isinstance(values, dict):
        raise ConfigError(f"[notifications] {cls.__name__} must be a table")
    values = dict(values)
    if "from" in values:
        values["sender"] = values.pop("from")
    known = {f.name for f in fields(cls)}
    missing = [
        f.name
        for f in fields(cls)
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING
    ]
    if set(values) - known or missing:
        names = sorted(set(values) - known) + [f"missing {m}" for m in missing]
        raise ConfigError(f"[notifications] {cls.__name__}: {', '.join(names)}")
    if "kinds" in values:
        values["kinds"] = tuple(EventKind(kind) for kind in values["kinds"])
    for key in ("to", "channels"):
        if key in values:
            values[key] = tuple(values[key])
    if values.get("ca_file"):
        values["ca_file"] = Path(values["ca_file"])
    return cls(**values)


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
