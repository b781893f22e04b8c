"""Continuous, scheduled and manual recording, driven through the native API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from vidicon.app import Vidicon
from vidicon.core.channel import RecordingSettings, ScheduleEntry

SIM = "sim://cam?width=160&height=96&fps=10&gop=5"


async def segments(client: httpx.AsyncClient, channel: int = 1) -> list[dict]:
    now = datetime.now(UTC)
    response = await client.get(
        "/v1/recordings",
        params={
            "channel": channel,
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    return list(response.json()["segments"])


async def test_manual_recording_overrides_mode_off(
    admin_client: httpx.AsyncClient, vidicon_app: Vidicon
) -> None:
    created = await admin_client.post(
        "/v1/channels", json={"name": "c", "main": {"url": SIM}, "recording": {"mode": "off"}}
    )
    assert created.status_code == 201
    await asyncio.sleep(2.5)
    assert await segments(admin_client) == []
    assert not (await admin_client.get("/v1/channels/1/status")).json()["recording"]
    on = await admin_client.put("/v1/channels/1/recording/manual", json={"on": True})
    assert on.status_code == 200 and on.json()["manual_recording"]
    await asyncio.sleep(2.5)
    assert (await admin_client.get("/v1/channels/1/status")).json()["recording"]
    off = await admin_client.put("/v1/channels/1/recording/manual", json={"on": False})
    assert not off.json()["manual_recording"]
    await asyncio.sleep(1.5)
    found = await segments(admin_client)
    assert found and {s["kind"] for s in found} == {"manual"}
    assert all(s["state"] == "closed" for s in found)
    assert not (await admin_client.get("/v1/channels/1/status")).json()["recording"]
    # manual mode survives a restart of the channel (it is stored)
    assert (await admin_client.get("/v1/channels/1")).json()["manual_recording"] is False


async def test_schedule_decides_when_to_record(admin_client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    other_day = (now.weekday() + 3) % 7
    body = {
        "name": "sched-off",
        "main": {"url": SIM},
        "recording": {"mode": "scheduled", "schedule": [{"days": [other_day]}]},
    }
    assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    body = {
        "name": "sched-on",
        "main": {"url": SIM},
        "recording": {
            "mode": "scheduled",
            "timezone": "Europe/Berlin",
            "schedule": [{"days": list(range(7)), "start": "00:00", "end": "24:00"}],
        },
    }
    assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    await asyncio.sleep(3)
    assert await segments(admin_client, 1) == []
    recorded = await segments(admin_client, 2)
    assert recorded and recorded[0]["kind"] == "normal"


def test_schedule_entries_use_the_channel_time_zone() -> None:
    settings = RecordingSettings(
        mode="scheduled",
        timezone="America/New_York",
        schedule=[ScheduleEntry(days=[0], start="08:00", end="09:30")],
    )
    # Monday 2026-11-23 13:15 UTC is 08:15 in New York (EST, UTC-5)
    assert settings.scheduled_at(datetime(2026, 11, 23, 13, 15, tzinfo=UTC))
    assert not settings.scheduled_at(datetime(2026, 11, 23, 8, 15, tzinfo=UTC))
    # In July (EDT, UTC-4) the same local window is an hour earlier in UTC
    assert settings.scheduled_at(datetime(2026, 7, 6, 12, 15, tzinfo=UTC))
    assert not settings.scheduled_at(datetime(2026, 7, 6, 13, 45, tzinfo=UTC))
