"""Notifications: every configured notifier follows the event bus on its own.

Each notifier (MQTT, each webhook, e-mail, FTP) is one bus subscriber with
its own bounded queue and task. The bus never waits for it: a notifier that
falls behind (a dead broker, a slow mail server) loses its oldest events,
counted in ``dropped``, while the others and the producers carry on. Retries,
backoff and giving up are :class:`vidicon.notify.delivery.Delivery`'s, the
same for all.

The service turns a bus event into a :class:`Notice`: the channel's name, the
phase (a lasting event notifies when it begins and when it ends; e-mail and
FTP only when it begins), and for e-mail and FTP a JPEG: the event's own first
picture if it has one, else the channel's live snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vidicon.base.errors import VidiconError
from vidicon.config import Config, NotificationsConfig
from vidicon.core.events import Event, EventKind
from vidicon.notify.delivery import Backoff, Delivery, Sender
from vidicon.notify.ftp import FtpSender
from vidicon.notify.message import Notice, build_notice, phase_of
from vidicon.notify.mqtt import MqttSender
from vidicon.notify.smtp import SmtpSender
from vidicon.notify.webhook import WebhookSender
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.services.events import EventService, Subscription
from vidicon.services.snapshots import SnapshotService

log = logging.getLogger(__name__)

_SYSTEM = User(0, "notifications", is_admin=True)
SNAPSHOT_WIDTH = 1280  # live snapshots for mail and FTP; smaller sources stay as they are
REMEMBERED = 4096  # lasting events whose beginning a notifier remembers


class _Filters(Protocol):
    @property
    def kinds(self) -> tuple[EventKind, ...] | None: ...

    @property
    def channels(self) -> tuple[int, ...] | None: ...


@dataclass(slots=True)
class Notifier:
    """One sender following the bus."""

    delivery: Delivery
    subscription: Subscription
    wants_snapshot: bool  # e-mail and FTP: a picture, and only beginnings and moments
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.delivery.sender.name

    def stats(self) -> dict[str, int | str]:
        d = self.delivery
        return {
            "name": self.name,
            "sent": d.sent,
            "retries": d.retries,
            "failed": d.failed,
            "dropped": self.subscription.dropped,
        }


class NotificationService:
    def __init__(
        self,
        config: Config,
        events: EventService,
        channels: ChannelService,
        snapshots: SnapshotService,
        image_dir: Path,
    ) -> None:
        self.config: NotificationsConfig = config.notifications
        self.events = events
        self.channels = channels
        self.snapshots = snapshots
        self.image_dir = image_dir
        server = config.server
        self.public_url = self.config.public_url or f"http://{server.host}:{server.http_port}"
        self.notifiers: list[Notifier] = []

    def senders(self) -> list[tuple[Sender, _Filters]]:
        """Every configured sender with the filters of its section."""
        c = self.config
        found: list[tuple[Sender, _Filters]] = []
        if c.mqtt is not None:
            found.append((MqttSender(c.mqtt), c.mqtt))
        for number, hook in enumerate(c.webhooks, 1):
            found.append((WebhookSender(hook, number), hook))
        if c.email is not None:
            found.append((SmtpSender(c.email), c.email))
        if c.ftp is not None:
            found.append((FtpSender(c.ftp), c.ftp))
        return found

    async def start(self) -> None:
        c = self.config
        backoff = Backoff(c.retry_initial_s, c.retry_max_s, c.attempts)
        for sender, filters in self.senders():
            subscription = self.events.subscribe(
                kinds=filters.kinds, channels=filters.channels, maxsize=c.queue
            )
            wants_snapshot = isinstance(sender, SmtpSender | FtpSender)
            notifier = Notifier(Delivery(sender, backoff), subscription, wants_snapshot)
            notifier.task = asyncio.create_task(self._run(notifier), name=f"notify {sender.name}")
            self.notifiers.append(notifier)
            log.info("notifications: %s", sender.name)

    async def stop(self) -> None:
        """Stop every notifier now (queued events are not waited for) and say
        goodbye where the protocol has one (MQTT's retained ``offline``)."""
        for notifier in self.notifiers:
            notifier.subscription.close()
            if notifier.task is not None:
                notifier.task.cancel()
        for notifier in self.notifiers:
            if notifier.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await notifier.task
        await asyncio.gather(*(n.delivery.close() for n in self.notifiers))
        self.notifiers.clear()

    def stats(self) -> list[dict[str, int | str]]:
        """Counters per notifier (no secrets: names are host and port)."""
        return [notifier.stats() for notifier in self.notifiers]

    # --- internals ---------------------------------------------------------

    async def _run(self, notifier: Notifier) -> None:
        began: OrderedDict[int, None] = OrderedDict()
        await notifier.delivery.open()
        async for item in notifier.subscription:
            if not isinstance(item, Event):
                continue
            try:
                notice = await self._notice(item, began, notifier.wants_snapshot)
            except Exception:  # a bad event must not stop the notifier
                log.exception("%s: cannot prepare event %s", notifier.name, item.id)
                continue
            if notice is not None:
                await notifier.delivery.deliver(notice)

    async def _notice(
        self, event: Event, began: OrderedDict[int, None], wants_snapshot: bool
    ) -> Notice | None:
        known = event.id is not None and event.id in began
        phase = phase_of(event, known)
        if event.id is not None:
            if phase == "begin":
                began[event.id] = None
                while len(began) > REMEMBERED:
                    began.popitem(last=False)
            else:
                began.pop(event.id, None)
        if wants_snapshot and phase == "end":
            return None
        snapshot = await self._snapshot(event) if wants_snapshot else None
        return build_notice(
            event, phase, await self._channel_name(event), self.public_url, snapshot
        )

    async def _channel_name(self, event: Event) -> str | None:
        if event.channel_id is None:
            return None
        try:
            return (await self.channels.get(event.channel_id)).name
        except VidiconError:
            return None  # deleted since

    async def _snapshot(self, event: Event) -> bytes | None:
        """The event's first picture, else the channel's live snapshot, else None."""
        for image in event.images[:1]:
            path = _inside(self.image_dir, image)
            if path is not None:
                try:
                    return await asyncio.to_thread(path.read_bytes)
                except OSError as exc:
                    log.warning("event %s picture unreadable: %s", event.id, exc)
        if event.channel_id is None:
            return None
        try:
            picture = await self.snapshots.snapshot(
                _SYSTEM, event.channel_id, "main", SNAPSHOT_WIDTH
            )
        except VidiconError:
            return None  # channel gone, disabled or without a picture yet
        return picture.data


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it stays inside ``root`` (symbolic links resolved)."""
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, path]) != base:
        return None
    return Path(path)
