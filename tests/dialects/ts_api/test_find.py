"""TS-API ``/api/find?what=recDays|recMinutes``: the spec's shapes, local or
UTC dates, the one-day default and three-day limit of minute searches."""

from __future__ import annotations

from typing import Any

import httpx

from tests.dialects.ts_api.conftest import MINUTE, T0, add_files
from vidicon.app import Vidicon

SIM = "sim://cam?width=160&height=96&fps=5&gop=5"
DAY = 1440 * MINUTE


async def footage(app: Vidicon, admin: httpx.AsyncClient) -> None:
    for name in ("Gate", "Yard"):
        body = {"name": name, "main": {"url": SIM}, "recording": {"mode": "off"}}
        assert (await admin.post("/v1/channels", json=body)).status_code == 201
    # Channel 1: 2018-01-08 09:30-09:35, 2018-01-23 23:58 - 01-24 00:02, 2018-02-05 12:00-12:01
    # (New York time); channel 2: 2018-01-08 09:40-09:41.
    late = T0 + 15 * DAY + 868 * MINUTE
    feb = T0 + 28 * DAY + 150 * MINUTE
    spans = [(T0 + i * MINUTE, T0 + (i + 1) * MINUTE) for i in range(5)]
    spans += [(late, late + 4 * MINUTE), (feb, feb + MINUTE)]
    await add_files(app, 1, spans)
    await add_files(app, 2, [(T0 + 10 * MINUTE, T0 + 11 * MINUTE)])


async def find(client: httpx.AsyncClient, **params: str) -> Any:
    response = await client.get("/api/find", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_record_days(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    await footage(vidicon_app, admin_client)
    every = await find(admin_client, what="recDays")
    assert every["data"] == [
        {"year": 2018, "month": 1, "days": [8, 23, 24]},
        {"year": 2018, "month": 2, "days": [5]},
    ]
    assert every["timeBegin"] == "2018-01-08T00:00:00.000-05:00"
    assert every["timeEnd"] == "2018-02-05T23:59:59.999-05:00"
    january = await find(
        admin_client, what="recDays", ch="1",
        timeBegin="2018-01-01T00:00:00-05:00", timeEnd="2018-01-31T23:59:59.999-05:00",
    )  # fmt: skip
    assert january == {
        "timeBegin": "2018-01-01T00:00:00.000-05:00",
        "timeEnd": "2018-01-31T23:59:59.999-05:00",
        "data": [{"chid": 1, "data": [{"year": 2018, "month": 1, "days": [8, 23, 24]}]}],
    }
    both = await find(admin_client, what="recDays", ch="1,2", timeBegin="2018-02-01T00:00:00")
    assert both["data"] == [
        {"chid": 1, "data": [{"year": 2018, "month": 2, "days": [5]}]},
        {"chid": 2, "data": []},
    ]
    # Asked in UTC, the days are UTC days: 23:58 New York on the 23rd is the 24th.
    utc = await find(
        admin_client, what="recDays", ch="1",
        timeBegin="2018-01-20T00:00:00Z", timeEnd="2018-01-31T23:59:59.999Z",
    )  # fmt: skip
    assert utc["data"] == [{"chid": 1, "data": [{"year": 2018, "month": 1, "days": [24]}]}]
    assert utc["timeBegin"] == "2018-01-20T00:00:00.000Z"


async def test_record_minutes(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    await footage(vidicon_app, admin_client)
    # Only timeBegin: one day from it.
    day = await find(admin_client, what="recMinutes", ch="1,2", timeBegin="2018-01-08T00:00:00")
    assert day == {
        "timeBegin": "2018-01-08T00:00:00.000-05:00",
        "timeEnd": "2018-01-09T00:00:00.000-05:00",
        "data": [
            {"chid": 1, "data": [{"year": 2018, "month": 1, "day": 8, "hour": 9,
                                  "minutes": [30, 31, 32, 33, 34]}]},
            {"chid": 2, "data": [{"year": 2018, "month": 1, "day": 8, "hour": 9,
                                  "minutes": [40]}]},
        ],
    }  # fmt: skip
    midnight = await find(
        admin_client, what="recMinutes", ch="1",
        timeBegin="2018-01-23T23:00:00-05:00", timeEnd="2018-01-24T01:00:00-05:00",
    )  # fmt: skip
    assert midnight["data"][0]["data"] == [
        {"year": 2018, "month": 1, "day": 23, "hour": 23, "minutes": [58, 59]},
        {"year": 2018, "month": 1, "day": 24, "hour": 0, "minutes": [0, 1]},
    ]


async def test_errors(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await footage(vidicon_app, admin_client)
    cases = [
        ({"what": "recMinutes"}, 400),  # minutes are never listed for all time
        ({"what": "recMinutes", "timeBegin": "2018-01-01T00:00:00",
          "timeEnd": "2018-01-05T00:00:00"}, 400),  # more than three days
        ({"what": "recDays", "timeBegin": "not a time"}, 400),
        ({"what": "recDays", "ch": "1;2"}, 400),
        ({"what": "recDays", "ch": "9"}, 404),
        ({"what": "bogus"}, 400),
        ({"what": "eventLog", "sort": "sideways"}, 400),
    ]  # fmt: skip
    for params, status in cases:
        response = await admin_client.get("/api/find", params=params)
        assert response.status_code == status, (params, response.text)
    assert (await client.get("/api/find", params={"what": "recDays"})).status_code == 401
