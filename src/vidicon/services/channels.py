"""Channel use cases: create, read, update, delete, enable, manual recording.

Validation happens before anything is stored, and the row is written in one
transaction, so a bad request leaves nothing half-stored. Credentials are
kept in their own column and are write-only: a request that omits the
password keeps the stored one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from vidicon.base.errors import Conflict, InvalidInput, NotFound
from vidicon.core.channel import ChannelSettings, ChannelView, StreamSettings, StreamView
from vidicon.core.clock import Clock
from vidicon.core.sources import parse_source
from vidicon.db import schema
from vidicon.db.database import Database
from vidicon.services.auth import User
from vidicon.services.runtime import Runtime

C = schema.channels
MAX_CHANNELS = 1024


class ChannelService:
    def __init__(self, db: Database, runtime: Runtime, clock: Clock) -> None:
        self.db = db
        self.runtime = runtime
        self.clock = clock
        # The ids of the channels known to exist, kept by create/delete: a
        # request on recorded footage checks its channel without a query.
        self._ids: set[int] | None = None

    # --- start-up ----------------------------------------------------------

    async def start_all(self) -> None:
        for channel_id, settings, manual in await self._load_all():
            await self.runtime.apply(channel_id, settings, manual)

    # --- queries -----------------------------------------------------------

    async def all(self) -> list[ChannelView]:
        return [self._view(cid, s, manual) for cid, s, manual in await self._load_all()]

    async def get(self, channel_id: int) -> ChannelView:
        settings, manual = await self._load(channel_id)
        return self._view(channel_id, settings, manual)

    async def visible(self, user: User) -> list[ChannelView]:
        """The channels ``user`` may see."""
        return [v for v in await self.all() if user.can_view(v.id)]

    async def get_for(self, user: User, channel_id: int) -> ChannelView:
        """One channel, if ``user`` may see it (Forbidden, or NotFound for anonymous)."""
        user.require_channel(channel_id)
        return await self.get(channel_id)

    async def settings(self, channel_id: int) -> ChannelSettings:
        """The stored settings, credentials included: for mechanisms, never for output."""
        return (await self._load(channel_id))[0]

    async def ids(self) -> list[int]:
        async with self.db.read() as conn:
            return [
                int(i) for i in (await conn.execute(sa.select(C.c.id).order_by(C.c.id))).scalars()
            ]

    async def require(self, channel_id: int) -> None:
        """NotFound unless the channel exists. Known channels are remembered
        (create and delete keep the memory right); an unknown id is looked up
        again, so a channel added by other means is found too."""
        if self._ids is not None and channel_id in self._ids:
            return
        self._ids = set(await self.ids())
        if channel_id not in self._ids:
            raise NotFound(f"channel {channel_id} not found")

    # --- changes -----------------------------------------------------------

    async def create(self, settings: ChannelSettings, channel_id: int | None = None) -> ChannelView:
        self._check_sources(settings)
        config, credentials = _split(settings)
        now = self.clock.now_us()
        async with self.db.write() as conn:
            used = {int(i) for i in (await conn.execute(sa.select(C.c.id))).scalars()}
            if len(used) >= MAX_CHANNELS:
                raise Conflict(f"at most {MAX_CHANNELS} channels")
            if channel_id is None:
                # A new camera never inherits a deleted one's footage.
                with_footage = {
                    int(i)
                    for i in (
                        await conn.execute(sa.select(schema.segments.c.channel_id).distinct())
                    ).scalars()
                }
                taken = used | with_footage
                free = (i for i in range(1, MAX_CHANNELS + 1) if i not in taken)
                channel_id = next(free, None)
                if channel_id is None:
                    raise Conflict("no free channel id; delete old footage first")
            elif channel_id in used:
                raise Conflict(f"channel {channel_id} exists")
            elif not 1 <= channel_id <= MAX_CHANNELS:
                raise InvalidInput(f"channel id must be 1-{MAX_CHANNELS}", "id")
            await conn.execute(
                C.insert().values(
                    id=channel_id,
                    name=settings.name,
                    enabled=settings.enabled,
                    config=config,
                    credentials=credentials,
                    created_us=now,
                    updated_us=now,
                )
            )
        await self.runtime.apply(channel_id, settings, False)
        return self._view(channel_id, settings, False)

    async def replace(
        self, channel_id: int, settings: ChannelSettings, *, check_sources: bool = True
    ) -> ChannelView:
        old, manual = await self._load(channel_id)
        settings = _keep_passwords(settings, old)
        if check_sources:
            self._check_sources(settings)
        config, credentials = _split(settings, manual)
        async with self.db.write() as conn:
            await conn.execute(
                C.update()
                .where(C.c.id == channel_id)
                .values(
                    name=settings.name,
                    enabled=settings.enabled,
                    config=config,
                    credentials=credentials,
                    updated_us=self.clock.now_us(),
                )
            )
        await self.runtime.apply(channel_id, settings, manual)
        return self._view(channel_id, settings, manual)

    async def set_enabled(self, channel_id: int, enabled: bool) -> ChannelView:
        settings, _ = await self._load(channel_id)
        # A toggle changes no source: a camera that is down (or a media file
        # that is gone) must still be disabled and enabled; its status tells why.
        toggled = settings.model_copy(update={"enabled": enabled})
        return await self.replace(channel_id, toggled, check_sources=False)

    async def set_manual(self, channel_id: int, manual: bool) -> ChannelView:
        settings, _ = await self._load(channel_id)
        config, _ = _split(settings, manual)
        async with self.db.write() as conn:
            await conn.execute(C.update().where(C.c.id == channel_id).values(config=config))
        await self.runtime.set_manual(channel_id, manual)
        return self._view(channel_id, settings, manual)

    async def delete(self, channel_id: int) -> None:
        """Remove the channel. Its recordings stay until retention removes them."""
        await self._load(channel_id)
        async with self.db.write() as conn:
            await conn.execute(C.delete().where(C.c.id == channel_id))
        if self._ids is not None:
            self._ids.discard(channel_id)
        await self.runtime.remove(channel_id)

    # --- helpers -----------------------------------------------------------

    def _check_sources(self, settings: ChannelSettings) -> None:
        for stream in (settings.main, settings.sub):
            if stream is None:
                continue
            spec = parse_source(stream.url)
            if spec.kind == "file":
                try:
                    path = self.runtime.media_path(spec.url.removeprefix("media:").split("?")[0])
                except ValueError as exc:
                    raise InvalidInput(str(exc), "url") from None
                if not path.is_file():
                    raise InvalidInput("media file not found", "url")

    async def _load(self, channel_id: int) -> tuple[ChannelSettings, bool]:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(C).where(C.c.id == channel_id))).first()
        if row is None:
            raise NotFound(f"channel {channel_id} not found")
        return _merge(row)

    async def _load_all(self) -> list[tuple[int, ChannelSettings, bool]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(C).order_by(C.c.id))).all()
        return [(int(row.id), *_merge(row)) for row in rows]

    def _view(self, channel_id: int, settings: ChannelSettings, manual: bool) -> ChannelView:
        return ChannelView(
            id=channel_id,
            name=settings.name,
            enabled=settings.enabled,
            main=_stream_view(settings.main),
            sub=_stream_view(settings.sub) if settings.sub else None,
            recording=settings.recording,
            retention=settings.retention,
            analytics=settings.analytics,
            motion=settings.motion,
            manual_recording=manual,
            status=self.runtime.status(channel_id),
            device=settings.device,
        )


def _stream_view(stream: StreamSettings) -> StreamView:
    spec = parse_source(stream.url, stream.username, stream.password)
    return StreamView(
        url=spec.url,
        has_credentials=bool(spec.username or spec.password),
        transport=stream.transport,
        demuxer=stream.demuxer,
        source=spec.kind,
    )


def _split(
    settings: ChannelSettings, manual: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings without credentials (and with clean URLs), and the credentials."""
    config = settings.model_dump(mode="json")
    credentials: dict[str, Any] = {}
    for name in ("main", "sub"):
        stream = getattr(settings, name)
        if stream is None:
            continue
        spec = parse_source(stream.url, stream.username, stream.password)
        config[name]["url"] = spec.url
        config[name].pop("username", None)
        config[name].pop("password", None)
        credentials[name] = {"username": spec.username, "password": spec.password}
    config["manual_recording"] = manual
    return config, credentials


def _merge(row: Any) -> tuple[ChannelSettings, bool]:
    config = dict(row.config)
    manual = bool(config.pop("manual_recording", False))
    for name, creds in dict(row.credentials).items():
        if config.get(name):
            config[name] = {**config[name], **{k: v for k, v in creds.items() if v is not None}}
    config["name"] = row.name
    config["enabled"] = bool(row.enabled)
    return ChannelSettings.model_validate(config), manual


def _keep_passwords(new: ChannelSettings, old: ChannelSettings) -> ChannelSettings:
    """An omitted password keeps the stored one for the same camera. The ONVIF
    device signs in with the main stream's credentials, so a changed device
    address never inherits them (they would be sent to the new address)."""
    if (new.device.url if new.device else None) != (old.device.url if old.device else None):
        return new
    updates: dict[str, StreamSettings] = {}
    for name in ("main", "sub"):
        stream: StreamSettings | None = getattr(new, name)
        previous: StreamSettings | None = getattr(old, name)
        if stream is None or previous is None or stream.password is not None:
            continue
        new_spec = parse_source(stream.url, stream.username)
        old_spec = parse_source(previous.url, previous.username, previous.password)
        same_camera = new_spec.url.split("/")[2:3] == old_spec.url.split("/")[2:3]
        if same_camera and new_spec.username in (None, old_spec.username) and not new_spec.password:
            updates[name] = stream.model_copy(
                update={"username": old_spec.username, "password": old_spec.password}
            )
    return new.model_copy(update=updates) if updates else new
