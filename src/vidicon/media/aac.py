"""AAC helpers: AudioSpecificConfig and ADTS headers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SAMPLE_RATES: tuple[int, ...] = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)  # fmt: skip

AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29


def _channels_from_config(config: int) -> int:
    return 8 if config == 7 else config


def _config_from_channels(channels: int) -> int:
    if 1 <= channels <= 6:
        return channels
    if channels == 8:
        return 7
    raise ValueError(f"no AAC channel configuration for {channels} channels")


class _Bits:
    __slots__ = ("_n", "_pos", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._n = len(data) * 8
        self._pos = 0

    def u(self, count: int) -> int:
        end = self._pos + count
        if end > self._n:
            raise ValueError("AudioSpecificConfig truncated")
        self._pos = end
        return (self._value >> (self._n - end)) & ((1 << count) - 1)


def _read_aot(bits: _Bits) -> int:
    aot = bits.u(5)
    return 32 + bits.u(6) if aot == 31 else aot


def _read_rate(bits: _Bits) -> int:
    index = bits.u(4)
    if index == 0xF:
        return bits.u(24)
    if index >= len(SAMPLE_RATES):
        raise ValueError(f"reserved sampling frequency index {index}")
    return SAMPLE_RATES[index]


def parse_asc(asc: bytes) -> tuple[int, int, int]:
    """Parse an AudioSpecificConfig into ``(sample_rate, channels, object_type)``.

    For explicitly signalled HE-AAC (SBR/PS) the sample rate is the output
    (extension) rate and the object type is the signalled 5 or 29.
    """
    bits = _Bits(asc)
    object_type = _read_aot(bits)
    sample_rate = _read_rate(bits)
    channels = _channels_from_config(bits.u(4))
    if object_type in (AOT_SBR, AOT_PS):
        sample_rate = _read_rate(bits)
    return sample_rate, channels, object_type


def build_asc(object_type: int, sample_rate: int, channels: int) -> bytes:
    """Build a GASpecificConfig-style AudioSpecificConfig (e.g. ``11 90`` for LC 48k 2ch)."""
    if not 1 <= object_type <= 30:
        raise ValueError(f"unsupported audio object type {object_type}")
    value, nbits = object_type, 5
    if sample_rate in SAMPLE_RATES:
        value, nbits = (value << 4) | SAMPLE_RATES.index(sample_rate), nbits + 4
    else:
        value, nbits = (value << 28) | (0xF << 24) | sample_rate, nbits + 28
    value, nbits = (value << 4) | _config_from_channels(channels), nbits + 4
    value, nbits = value << 3, nbits + 3  # frameLength, dependsOnCoreCoder, extension: 0
    pad = -nbits % 8
    return (value << pad).to_bytes((nbits + pad) // 8, "big")


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    """The fields of one ADTS frame header."""

    header_length: int  # 7, or 9 with CRC
    object_type: int  # profile + 1 (2 = AAC LC)
    sample_rate: int
    sampling_index: int
    channels: int
    frame_length: int  # header plus payload, in bytes
    raw_data_blocks: int  # number_of_raw_data_blocks_in_frame + 1


def parse_adts(frame: bytes) -> AdtsHeader | None:
    """Parse the ADTS header at the start of ``frame``; None if there is none."""
    if len(frame) < 7 or frame[0] != 0xFF or (frame[1] & 0xF6) != 0xF0:
        return None
    header_length = 7 if frame[1] & 1 else 9
    object_type = (frame[2] >> 6) + 1
    sampling_index = (frame[2] >> 2) & 0xF
    if sampling_index >= len(SAMPLE_RATES):
        return None
    channel_config = ((frame[2] & 1) << 2) | (frame[3] >> 6)
    frame_length = ((frame[3] & 3) << 11) | (frame[4] << 3) | (frame[5] >> 5)
    if frame_length < header_length:
        return None
    return AdtsHeader(
        header_length=header_length,
        object_type=object_type,
        sample_rate=SAMPLE_RATES[sampling_index],
        sampling_index=sampling_index,
        channels=_channels_from_config(channel_config),
        frame_length=frame_length,
        raw_data_blocks=(frame[6] & 3) + 1,
    )


def _asc_for(header: AdtsHeader) -> bytes:
    # ADTS channel configuration 0 (PCE in stream) cannot be expressed here; keep 0.
    config = 7 if header.channels == 8 else header.channels
    value = (header.object_type << 11) | (header.sampling_index << 7) | (config << 3)
    return value.to_bytes(2, "big")


def strip_adts(data: bytes) -> tuple[bytes, bytes] | None:
    """Remove the ADTS header of the frame at the start of ``data``.

    Returns ``(raw_payload, asc)``, or None if ``data`` does not start with a
    complete ADTS frame.
    """
    header = parse_adts(data)
    if header is None or header.frame_length > len(data):
        return None
    return data[header.header_length : header.frame_length], _asc_for(header)


def iter_adts(data: bytes) -> Iterator[tuple[AdtsHeader, bytes]]:
    """Yield ``(header, raw_payload)`` for consecutive ADTS frames; stops at junk."""
    pos, n = 0, len(data)
    while pos < n:
        header = parse_adts(data[pos : pos + 9])
        if header is None or pos + header.frame_length > n:
            return
        yield header, data[pos + header.header_length : pos + header.frame_length]
        pos += header.frame_length
