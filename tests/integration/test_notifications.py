"""Notifications against real servers on loopback: Mosquitto, aiosmtpd,
pyftpdlib and an HTTP receiver that checks signatures. Events are put on the
real bus of a started Vidicon; nothing on the sending side is replaced."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import av
import numpy as np
import pytest

from tests.conftest import make_config
from tests.support.notify_servers import (
    LOCALHOST,
    BlackHole,
    FtpSink,
    Mosquitto,
    SmtpSink,
    WebhookSink,
)
from tests.support.server import free_port
from vidicon.app import Vidicon
from vidicon.config import (
    EmailConfig,
    FtpConfig,
    MqttConfig,
    NotificationsConfig,
    WebhookConfig,
)
from vidicon.core.channel import ChannelSettings, StreamSettings
from vidicon.core.events import Event, EventKind
from vidicon.media.snapshot import JpegEncoder
from vidicon.services.auth import User

pytestmark = [
    pytest.mark.skipif(not Mosquitto.available(), reason="mosquitto not installed"),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

SIM = "sim://cam?width=160&height=96&fps=10&gop=10&audio=0"
T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
T0_US = int(T0.timestamp() * 1_000_000)
QUICK = NotificationsConfig(
    public_url="https://nvr.example.net", retry_initial_s=0.05, retry_max_s=0.2
)
ADMIN = User(1, "test", is_admin=True)
PLATES = (EventKind.LPR,)
USER = (EventKind.USER,)


def jpeg() -> bytes:
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, :32] = (200, 30, 30)
    return JpegEncoder().encode(av.VideoFrame.from_ndarray(pixels, format="rgb24"), 0).data


async def until(check: Callable[[], object], what: str, timeout_s: float = 15.0) -> None:
    """Wait for ``check()`` to hold; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, notifications: NotificationsConfig) -> AsyncIterator[Vidicon]:
    app = Vidicon(replace(make_config(tmp_path / "data"), notifications=notifications))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@contextlib.asynccontextmanager
async def watching(
    port: int, identifier: str | None = None, clean: bool = True
) -> AsyncIterator[list[tuple[str, bytes, bool]]]:
    """A second MQTT client (same library) collecting (topic, payload, retained)."""
    seen: list[tuple[str, bytes, bool]] = []
    async with aiomqtt.Client(LOCALHOST, port, identifier=identifier, clean_session=clean) as sub:
        await sub.subscribe("vidicon/#", qos=1)

        async def collect() -> None:
            async for message in sub.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                seen.append((str(message.topic), payload, bool(message.retain)))

        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def expected_message(event: Event, channel_name: str) -> dict[str, object]:
    return {
        "id": event.id,
        "kind": "lpr",
        "code": "lpr",
        "phase": "moment",
        "channel": {"id": event.channel_id, "name": channel_name},
        "time": "2024-05-01T12:00:00.250000Z",
        "end": "2024-05-01T12:00:00.250000Z",
        "label": "AB123CD",
        "attributes": {"confidence": 0.9, "country": "IT"},
        "images": [f"https://nvr.example.net/v1/events/{event.id}/images/0"],
    }


async def test_an_event_reaches_mqtt_a_webhook_email_and_ftp(tmp_path: Path) -> None:
    picture = jpeg()
    broker = Mosquitto(tmp_path / "mqtt")
    broker.start()
    try:
        with (
            SmtpSink("nvr", "mail-pass") as smtp,
            FtpSink(tmp_path / "ftp", "nvr", "ftp-pass") as ftp,
            WebhookSink("hook-secret") as hook,
        ):
            notifications = replace(
                QUICK,
                # Plates only: the server's own system log and camera status
                # events (start-up, channel added) are not this test's business.
                mqtt=MqttConfig(LOCALHOST, broker.port, kinds=PLATES),
                webhooks=(WebhookConfig(hook.url, secret="hook-secret", kinds=PLATES),),
                email=EmailConfig(
                    LOCALHOST,
                    ("guard@example.net",),
                    "nvr@example.net",
                    port=smtp.port,
                    username="nvr",
                    password="mail-pass",
                    kinds=PLATES,
                ),
                ftp=FtpConfig(
                    LOCALHOST,
                    port=ftp.port,
                    username="nvr",
                    password="ftp-pass",
                    directory="incoming/cam",
                    kinds=PLATES,
                ),
            )
            async with watching(broker.port) as seen, running(tmp_path, notifications) as app:
                channel = await app.channels.create(
                    ChannelSettings(name="Front door", enabled=False, main=StreamSettings(url=SIM))
                )
                image = app.data_dir / "events" / "images" / "lpr" / "1.jpg"
                image.parent.mkdir(parents=True)
                image.write_bytes(picture)
                event = await app.events.publish(
                    Event(
                        EventKind.LPR,
                        "lpr",
                        T0_US,
                        channel_id=channel.id,
                        label="AB123CD",
                        attributes={"confidence": 0.9, "country": "IT"},
                        images=("lpr/1.jpg",),
                    )
                )
                topic = f"vidicon/{channel.id}/lpr"
                folder = tmp_path / "ftp" / "incoming" / "cam"
                await until(lambda: any(t == topic for t, _, _ in seen), "MQTT message")
                await until(lambda: hook.requests, "webhook request")
                await until(lambda: smtp.messages, "e-mail")
                await until(lambda: folder.is_dir() and any(folder.glob("*.jpg")), "FTP upload")

                # The retained availability: a client that subscribes now is told at once.
                async with watching(broker.port) as late:
                    await until(lambda: late, "retained status")
                    assert late[0] == ("vidicon/status", b"online", True)

            expected = expected_message(event, "Front door")
            (payload,) = [p for t, p, _ in seen if t == topic]
            assert json.loads(payload) == expected

            ((headers, body, valid),) = hook.requests
            assert valid, headers
            assert headers["X-Vidicon-Event"] == "lpr"
            assert json.loads(body) == expected

            (mail,) = smtp.messages
            assert smtp.logins == ["nvr"]
            assert mail["To"] == "guard@example.net"
            assert "lpr (AB123CD) on Front door" in mail["Subject"]
            (attachment,) = list(mail.iter_attachments())
            assert attachment.get_content_type() == "image/jpeg"
            assert attachment.get_content() == picture
            text = mail.get_body(("plain",))
            assert text is not None
            assert '"label": "AB123CD"' in text.get_content()

            name = f"ch{channel.id}_20240501T120000Z_lpr_{event.id}.jpg"
            assert sorted(p.name for p in folder.iterdir()) == [name]  # no .part left behind
            assert (folder / name).read_bytes() == picture

        # A clean stop leaves "offline" retained for whoever asks next.
        async with watching(broker.port) as after:
            await until(lambda: after, "retained status after stop")
            assert after[0] == ("vidicon/status", b"offline", True)
    finally:
        broker.stop()


async def test_a_broker_that_comes_up_late_still_gets_the_event(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mqtt", persistence=True)
    # A persistent subscriber registers once, so the broker keeps its messages...
    broker.start()
    async with watching(broker.port, identifier="late-listener", clean=False):
        pass
    broker.stop()  # ...then the broker goes away before Vidicon starts.

    notifications = replace(
        QUICK, mqtt=MqttConfig(LOCALHOST, broker.port, timeout_s=2.0, kinds=(EventKind.MOTION,))
    )
    try:
        async with running(tmp_path, notifications) as app:
            event = await app.events.publish(Event(EventKind.MOTION, "motion", T0_US))
            (notifier,) = app.notifications.notifiers
            await until(lambda: notifier.delivery.retries >= 2, "failed connection attempts")
            assert notifier.delivery.sent == 0

            broker.start()
            await until(lambda: notifier.delivery.sent == 1, "delivery after the broker came up")
            async with watching(broker.port, identifier="late-listener", clean=False) as seen:
                await until(lambda: any(t == "vidicon/system/motion" for t, _, _ in seen), "event")
            (payload,) = [p for t, p, _ in seen if t == "vidicon/system/motion"]
            assert json.loads(payload)["id"] == event.id
            assert json.loads(payload)["channel"] is None
    finally:
        broker.stop()


async def test_a_dead_endpoint_delays_neither_the_others_nor_the_bus(tmp_path: Path) -> None:
    with BlackHole() as hole, WebhookSink("s") as hook:
        notifications = replace(
            QUICK,
            queue=4,
            mqtt=MqttConfig(LOCALHOST, free_port(), timeout_s=30.0),  # nothing listens there
            webhooks=(
                WebhookConfig(f"http://{LOCALHOST}:{hole.port}/hook", timeout_s=30.0),
                WebhookConfig(hook.url, secret="s"),
            ),
        )
        async with running(tmp_path, notifications) as app:
            published = [
                await app.events.publish(Event(EventKind.USER, f"n{i}", T0_US + i))
                for i in range(10)
            ]  # every publish returned although two notifiers are stuck
            no_broker, dead, live = app.notifications.notifiers
            last = published[-1].id
            await until(
                lambda: (
                    any(json.loads(b)["id"] == last for _, b, _ in hook.requests)
                    and live.delivery.sent == len(hook.requests)
                ),
                "the last event at the live webhook, acknowledged",
            )
            # The black hole is still on its first try of its first event.
            assert (dead.delivery.sent, dead.delivery.failed, dead.delivery.retries) == (0, 0, 0)
            assert dead.subscription.dropped >= 1  # it lost its oldest, nobody waited
            assert no_broker.delivery.sent == 0 and no_broker.subscription.dropped >= 1
            assert live.delivery.failed == 0
            ids = [json.loads(b)["id"] for _, b, _ in hook.requests]
            assert ids == sorted(ids)
            assert all(valid for _, _, valid in hook.requests)


async def test_failures_are_counted_and_logged_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vidicon")
    closed = free_port()
    with SmtpSink("nvr", "mail-pass") as smtp, FtpSink(tmp_path / "ftp", "nvr", "ftp-pass") as ftp:
        notifications = replace(
            QUICK,
            attempts=2,
            webhooks=(
                WebhookConfig(
                    f"http://{LOCALHOST}:{closed}/x?token=t0ken-in-url",
                    secret="hook-secret",
                    kinds=USER,
                ),
            ),
            email=EmailConfig(
                LOCALHOST,
                ("a@example.net",),
                "b@example.net",
                port=smtp.port,
                username="nvr",
                password="wrong-mail-pass",
                kinds=USER,
            ),
            ftp=FtpConfig(
                LOCALHOST, port=ftp.port, username="nvr", password="wrong-ftp-pass", kinds=USER
            ),
        )
        async with running(tmp_path, notifications) as app:
            image = app.data_dir / "events" / "images" / "e.jpg"
            image.parent.mkdir(parents=True)
            image.write_bytes(jpeg())
            await app.events.publish(Event(EventKind.USER, "doorbell", T0_US, images=("e.jpg",)))
            hook_n, mail_n, ftp_n = app.notifications.notifiers
            await until(
                lambda: all(n.delivery.failed == 1 for n in app.notifications.notifiers),
                "every notifier gave up",
            )
            assert hook_n.delivery.retries == 1  # refused connection: retried, then given up
            assert mail_n.delivery.retries == 0  # login refused (535): final at once
            assert ftp_n.delivery.retries == 0  # login refused (530): final at once
            assert smtp.messages == []
    logged = caplog.text
    assert logged.count("gave up user event") == 3
    for secret in ("t0ken-in-url", "hook-secret", "wrong-mail-pass", "wrong-ftp-pass"):
        assert secret not in logged


async def test_live_snapshot_and_phases_of_a_lasting_event(tmp_path: Path) -> None:
    with FtpSink(tmp_path / "ftp", "nvr", "pw") as ftp, WebhookSink(None) as hook:
        notifications = replace(
            QUICK,
            webhooks=(WebhookConfig(hook.url, kinds=(EventKind.MOTION,)),),
            ftp=FtpConfig(LOCALHOST, port=ftp.port, username="nvr", password="pw"),
        )
        async with running(tmp_path, notifications) as app:
            channel = await app.channels.create(
                ChannelSettings(name="Yard", main=StreamSettings(url=SIM))
            )

            async def live_picture() -> bool:
                with contextlib.suppress(Exception):
                    await app.snapshots.snapshot(ADMIN, channel.id, "main")
                    return True
                return False

            deadline = time.monotonic() + 15
            while not await live_picture():
                assert time.monotonic() < deadline, "the simulated camera gave no picture"
                await asyncio.sleep(0.05)

            await app.events.publish(Event(EventKind.AUDIT, "signIn", T0_US))  # filtered out
            began = await app.events.begin(Event(EventKind.MOTION, "motion", T0_US, channel.id))
            await app.events.finish(began, T0_US + 2_000_000)
            await until(lambda: len(hook.requests) == 2, "begin and end at the webhook")
            await until(lambda: any(Path(tmp_path / "ftp").glob("*.jpg")), "FTP upload")

        phases = [json.loads(body)["phase"] for _, body, _ in hook.requests]
        assert phases == ["begin", "end"]
        ends = [json.loads(body)["end"] for _, body, _ in hook.requests]
        assert ends == [None, "2024-05-01T12:00:02.250000Z"]
        files = sorted((tmp_path / "ftp").iterdir())
        # One picture: the event's beginning (its end is not uploaded again),
        # and the audit event had no channel, so no picture to upload.
        assert [f.name for f in files] == [f"ch{channel.id}_20240501T120000Z_motion_{began.id}.jpg"]
        data = files[0].read_bytes()
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
