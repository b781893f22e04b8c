"""TS-API notations: the appendix's time forms, durations, flags and labels."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

import pytest

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.base.errors import InvalidInput
from vidicon.core.zone import server_zone

NY = ZoneInfo("America/New_York")
SEOUL = ZoneInfo("Asia/Seoul")
# 2018-02-01T19:30:15.253Z, the appendix's example time in EST
EXAMPLE_US = 1_517_513_415_253_000


@pytest.mark.parametrize(
    "text",
    [
        "2018-02-01T14:30:15.253-05:00",
        "2018-02-01T14:30:15.253-0500",
        "2018-02-01T14:30:15.253-05",
        "2018-02-01T19:30:15.253Z",
        "2018-02-02T04:30:15.253+09:00",
        "2018-02-01T14:30:15.253",  # the server's local time (New York here)
        "2018-02-01T14:30:15.253\r\n",  # as the spec's dataExport examples send it
    ],
)
def test_every_time_form_of_the_appendix(text: str) -> None:
    assert tr.parse_time(text, NY) == EXAMPLE_US


@pytest.mark.parametrize(
    "text",
    ["", "now", "2018-02-30T00:00:00Z", "2018-02-01T25:00:00Z", "2018-02-01T10:00:00+24:00",
     "2018-02-01T10:00:00-05:00; rm -rf /", "9" * 5000],
)  # fmt: skip
def test_bad_times_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        tr.parse_time(text, NY, "timeBegin")
    assert info.value.field == "timeBegin"


def test_local_times_follow_daylight_saving() -> None:
    winter = tr.parse_time("2018-01-08T09:30:00", NY)
    summer = tr.parse_time("2018-07-08T09:30:00", NY)
    assert tr.format_time(winter, NY) == "2018-01-08T09:30:00.000-05:00"
    assert tr.format_time(summer, NY) == "2018-07-08T09:30:00.000-04:00"
    assert tr.format_time(EXAMPLE_US, SEOUL) == "2018-02-02T04:30:15.253+09:00"
    assert tr.format_time(EXAMPLE_US, UTC) == "2018-02-01T19:30:15.253Z"


def test_durations() -> None:
    assert tr.parse_duration("1w") == 7 * 86_400_000_000
    assert tr.parse_duration("5d") == 5 * 86_400_000_000
    assert tr.parse_duration("1h") == 3_600_000_000
    assert tr.parse_duration("90m") == 5_400_000_000
    assert tr.parse_duration("30s") == tr.parse_duration("30") == 30_000_000
    assert tr.parse_duration("5000ms") == 5_000_000
    for bad in ("1h30m", "-5s", "0", "5y", "", "1000w"):
        with pytest.raises(InvalidInput):
            tr.parse_duration(bad)


def test_flags_labels_and_titles() -> None:
    assert tr.flag("") and tr.flag("true") and tr.flag("1")
    assert not tr.flag(None) and not tr.flag("false") and not tr.flag("0")
    assert tr.recorded_label(1080) == "1080p FHD" and tr.recorded_label(480) == "480p"
    assert tr.encoded_title("192.168.0.111") == "192%2E168%2E0%2E111"
    assert tr.encoded_title("Gate 1") == "Gate%201"
    assert tr.encoded_title("정문") == "%EC%A0%95%EB%AC%B8"
    assert tr.parse_channels("1,2, 3,2") == [1, 2, 3]
    assert tr.parse_channels(None) is None
    with pytest.raises(InvalidInput):
        tr.parse_channels("1,x")


def test_server_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert server_zone("Asia/Seoul") == SEOUL
    monkeypatch.setenv("TZ", "America/New_York")
    assert server_zone() == NY
    monkeypatch.setenv("TZ", "Not/AZone")
    assert server_zone("../../etc/passwd") is not None  # falls through, never raises
