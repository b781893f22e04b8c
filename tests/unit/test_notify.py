"""Notification configuration, message content, signatures and backoff."""

from __future__ import annotations

import hashlib
import hmac
import textwrap
from pathlib import Path

import pytest

import vidicon.config
from vidicon.config import ConfigError, EmailConfig, load_config
from vidicon.core.events import Event, EventKind
from vidicon.notify.delivery import Backoff
from vidicon.notify.message import build_notice, phase_of
from vidicon.notify.webhook import signature

T0_US = 1_714_564_800_250_000  # 2024-05-01T12:00:00.25Z


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vidicon.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_documented_example_is_a_valid_configuration(tmp_path: Path) -> None:
    doc = vidicon.config.__doc__
    assert doc is not None
    example = doc.split("::", 1)[1]
    config = load_config(write(tmp_path, example)).notifications
    assert config.public_url == "https://nvr.example.net"
    assert config.mqtt is not None and config.mqtt.kinds == (EventKind.MOTION, EventKind.LPR)
    assert config.mqtt.channels == (1, 2) and config.mqtt.ca_file == Path(
        "/etc/ssl/certs/broker-ca.pem"
    )
    (hook,) = config.webhooks
    assert hook.url == "https://hooks.example.net/vidicon" and hook.secret == "..."
    assert config.email is not None and config.email.sender == "nvr@example.net"
    assert config.email.to == ("guard@example.net",) and config.email.starttls
    assert config.ftp is not None and config.ftp.directory == "/incoming/vidicon"


def test_without_a_section_nothing_is_notified(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[server]\nhttp_port = 8081\n")).notifications
    assert (config.mqtt, config.webhooks, config.email, config.ftp) == (None, (), None, None)


@pytest.mark.parametrize(
    ("section", "complaint"),
    [
        ('[notifications.mqtt]\nhost = "b"\npasword = "x"', "pasword"),
        ("[notifications.mqtt]\nport = 1883", "missing host"),
        ('[notifications.mqtt]\nhost = "b"\nqos = 3', "qos"),
        ('[notifications.mqtt]\nhost = "b"\ntopic_prefix = "a/#"', "topic_prefix"),
        ('[notifications.mqtt]\nhost = "b"\nkinds = ["motoin"]', "motoin"),
        ('[[notifications.webhooks]]\nurl = "ftp://x/y"\nsecret = "s3cret"', "http"),
        (
            '[notifications.email]\nhost = "m"\nfrom = "a@b"\nto = ["c@d"]\n'
            'starttls = true\nssl = true\npassword = "s3cret"',
            "starttls or ssl",
        ),
        ('[notifications.email]\nhost = "m"\nfrom = "a@b"\nto = []', "addresses"),
        ('[notifications.ftp]\nhost = "f"\ndirectory = "../etc"', "directory"),
        ("[notifications]\nattempts = 0", "attempts"),
        ("[notifications]\nretry_initial_s = 5.0\nretry_max_s = 1.0", "retry"),
    ],
)
def test_bad_notification_settings_are_refused_by_name(
    tmp_path: Path, section: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, section + "\n"))
    assert complaint in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_secrets_stay_out_of_representations() -> None:
    config = EmailConfig("m", ("a@b.c",), "d@e.f", username="nvr", password="s3cret")
    assert "s3cret" not in repr(config)
    assert "nvr" in repr(config)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":1}'
    expected = hmac.new(b"key", b"1714564800." + body, hashlib.sha256).hexdigest()
    assert signature("key", 1714564800, body) == f"t=1714564800,v1={expected}"


def test_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    backoff = Backoff(initial_s=0.5, max_s=8.0, attempts=5)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 8.0), (500, 8.0)]:
        delays = {backoff.delay(failures) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_a_message_names_everything_a_receiver_needs() -> None:
    event = Event(
        EventKind.OBJECT,
        "detected",
        T0_US,
        channel_id=3,
        end_us=None,
        label="human\r\nBcc: x",
        attributes={"score": 0.8},
        images=("a.jpg", "b.jpg"),
        id=42,
    )
    notice = build_notice(event, phase_of(event, False), "Gate", "http://nvr:8080/")
    assert notice.message == {
        "id": 42,
        "kind": "object",
        "code": "detected",
        "phase": "begin",
        "channel": {"id": 3, "name": "Gate"},
        "time": "2024-05-01T12:00:00.250000Z",
        "end": None,
        "label": "human\r\nBcc: x",
        "attributes": {"score": 0.8},
        "images": [
            "http://nvr:8080/v1/events/42/images/0",
            "http://nvr:8080/v1/events/42/images/1",
        ],
    }
    assert "\n" not in notice.subject and "\r" not in notice.subject
    assert notice.subject.startswith("object detected (human  Bcc: x) on Gate at 2024-05-01T12")
    assert notice.file_name() == "ch3_20240501T120000Z_object_42.jpg"


def test_phases_of_lasting_events_and_moments() -> None:
    lasting = Event(EventKind.MOTION, "motion", T0_US, id=1)
    ended = Event(EventKind.MOTION, "motion", T0_US, end_us=T0_US + 5, id=1)
    assert phase_of(lasting, began=False) == "begin"
    assert phase_of(ended, began=True) == "end"
    assert phase_of(ended, began=False) == "moment"
    system = build_notice(
        Event(EventKind.SYSTEM, "startup", T0_US, end_us=T0_US), "moment", None, "http://x"
    )
    assert system.message["channel"] is None and system.message["images"] == []
    assert system.file_name() == f"system_20240501T120000Z_system_{T0_US}.jpg"
