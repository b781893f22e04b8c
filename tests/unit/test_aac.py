"""AAC AudioSpecificConfig and ADTS handling, checked against FFmpeg's encoder and muxer."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from vidicon.media import aac


def encode(sample_rate: int, channels: int, frames: int = 10) -> tuple[bytes, list[bytes], bytes]:
    """Encode a tone; return (extradata ASC, raw frames, the same frames muxed as ADTS)."""
    buf = io.BytesIO()
    raw: list[bytes] = []
    layout = "stereo" if channels == 2 else "mono"
    with av.open(buf, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        stream.codec_context.time_base = Fraction(1, sample_rate)
        t = np.arange(1024, dtype=np.float32)
        for i in range(frames):
            tone = 0.2 * np.sin(2 * np.pi * 500 * (t + 1024 * i) / sample_rate)
            samples = np.tile(tone.astype(np.float32), (channels, 1))
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                raw.append(bytes(packet))
                container.mux(packet)
        for packet in stream.encode(None):
            raw.append(bytes(packet))
            container.mux(packet)
        extradata = stream.codec_context.extradata
        assert extradata is not None
    return extradata, raw, buf.getvalue()


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (44100, 1), (16000, 1), (8000, 2)])
def test_parse_asc_from_encoder(rate: int, channels: int) -> None:
    extradata, _, _ = encode(rate, channels, frames=1)
    assert aac.parse_asc(extradata) == (rate, channels, aac.AOT_AAC_LC)
    assert extradata.startswith(aac.build_asc(aac.AOT_AAC_LC, rate, channels))


def test_build_asc_known_values_and_round_trip() -> None:
    assert aac.build_asc(2, 48000, 2) == b"\x11\x90"
    assert aac.build_asc(2, 44100, 1) == b"\x12\x08"
    for rate in aac.SAMPLE_RATES:
        for channels in (1, 2, 6, 8):
            asc = aac.build_asc(2, rate, channels)
            assert aac.parse_asc(asc) == (rate, channels, 2)
    explicit = aac.build_asc(2, 50000, 2)  # not in the table: 24-bit escape
    assert len(explicit) == 5
    assert aac.parse_asc(explicit) == (50000, 2, 2)
    with pytest.raises(ValueError):
        aac.build_asc(2, 48000, 7)
    with pytest.raises(ValueError):
        aac.parse_asc(b"\x11")


def test_parse_asc_he_aac_and_escape() -> None:
    # AOT 5 (SBR), core 24 kHz (index 6), stereo, extension 48 kHz (index 3), core AOT 2.
    bits = "00101" + "0110" + "0010" + "0011" + "00010" + "000"
    he = int(bits + "0" * (-len(bits) % 8), 2).to_bytes((len(bits) + 7) // 8, "big")
    assert aac.parse_asc(he) == (48000, 2, aac.AOT_SBR)
    # Escaped object type 31 + 6 bits: 32 + 10 = 42 (USAC), 48 kHz stereo.
    bits = "11111" + "001010" + "0011" + "0010"
    esc = int(bits + "0" * (-len(bits) % 8), 2).to_bytes((len(bits) + 7) // 8, "big")
    assert aac.parse_asc(esc) == (48000, 2, 42)


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (44100, 1)])
def test_adts_from_ffmpeg_muxer(rate: int, channels: int) -> None:
    extradata, raw, adts = encode(rate, channels)
    frames = list(aac.iter_adts(adts))
    assert [payload for _, payload in frames] == raw
    assert sum(h.frame_length for h, _ in frames) == len(adts)
    asc = aac.build_asc(2, rate, channels)
    assert extradata.startswith(asc)
    pos = 0
    for header, payload in frames:
        assert header.header_length == 7
        assert (header.sample_rate, header.channels, header.object_type) == (rate, channels, 2)
        assert header.raw_data_blocks == 1
        frame = adts[pos : pos + header.frame_length]
        assert aac.parse_adts(frame) == header
        assert aac.strip_adts(frame) == (payload, asc)
        pos += header.frame_length
    # A truncated frame is not stripped.
    first = frames[0][0].frame_length
    assert aac.strip_adts(adts[: first - 1]) is None
    assert list(aac.iter_adts(adts[: first + 3])) == frames[:1]


def test_adts_with_crc() -> None:
    payload = bytes(range(20))
    length = 9 + len(payload)
    # sync, MPEG-4, layer 0, protection_absent 0; LC, 48 kHz (3), 2 channels
    header = bytes(
        (
            0xFF,
            0xF0,
            (1 << 6) | (3 << 2) | (2 >> 2),
            ((2 & 3) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,
            0xFC,
            0xAB,  # CRC
            0xCD,
        )
    )
    parsed = aac.parse_adts(header + payload)
    assert parsed is not None
    assert (parsed.header_length, parsed.frame_length) == (9, length)
    assert (parsed.sample_rate, parsed.channels, parsed.object_type) == (48000, 2, 2)
    assert aac.strip_adts(header + payload + b"next") == (payload, b"\x11\x90")


def test_parse_adts_rejects_non_adts() -> None:
    assert aac.parse_adts(b"") is None
    assert aac.parse_adts(b"\xff\xf1\x50") is None
    assert aac.parse_adts(b"\x11\x90" + bytes(10)) is None
    assert aac.parse_adts(b"\xff\xf1\x50\x80\x00\x1f\xfc") is None  # frame_length 0
    assert aac.strip_adts(b"\x00" * 16) is None
