"""DTC JSON encoding over TCP: NUL-terminated objects, the binary encoding handshake, a lenient reader.

Sierra Chart's JSON mirrors the C structs of ``DTCProtocol.h``: field names are the struct member
names, ``Type`` carries the message id, booleans are 0/1 and every message ends with one NUL byte.
The reader is deliberately lenient because servers differ between header versions: a field may be
missing, ``null``, a DBL_MAX "unset" double, a number sent as a string, or a timestamp in seconds,
milliseconds or microseconds. ``DtcMessage`` turns all of these into ``None`` or a clean value.
"""

import json
import math
import struct
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.sierrachart.constants import DTC_PROTOCOL_VERSION
from adapters.sierrachart.constants import MAX_FRAME_BYTES
from adapters.sierrachart.constants import UNSET_DOUBLE_THRESHOLD
from adapters.sierrachart.constants import Encoding
from adapters.sierrachart.constants import MessageType


#: Size of the binary ENCODING_REQUEST / ENCODING_RESPONSE message.
ENCODING_FRAME_SIZE = 16
_ENCODING_STRUCT = struct.Struct("<HHii4s")
_PROTOCOL_TYPE = b"DTC\x00"
_NUL = b"\x00"

#: Field order of compact-JSON messages this adapter may meet (``{"Type":3,"F":[...]}``).
_COMPACT_FIELDS: dict[int, tuple[str, ...]] = {
    MessageType.HEARTBEAT: ("NumDroppedMessages", "CurrentDateTime"),
}

# Thresholds that tell timestamp units apart (a 2001-2286 date in each unit).
_SECONDS_MAX = 1e11
_MILLIS_MAX = 1e14
_MICROS_MAX = 1e17


class DtcProtocolError(Exception):
    """The peer sent bytes that are not valid DTC (oversized frame, invalid JSON, no ``Type``)."""


# -- encoding handshake ---------------------------------------------------------------------------


def encoding_request(encoding: Encoding = Encoding.JSON) -> bytes:
    """The 16-byte binary ENCODING_REQUEST asking the server to switch to ``encoding``."""
    return _ENCODING_STRUCT.pack(
        ENCODING_FRAME_SIZE,
        MessageType.ENCODING_REQUEST,
        DTC_PROTOCOL_VERSION,
        int(encoding),
        _PROTOCOL_TYPE,
    )


def encoding_response(encoding: Encoding = Encoding.JSON) -> bytes:
    """The 16-byte binary ENCODING_RESPONSE stating the encoding in force from now on."""
    return _ENCODING_STRUCT.pack(
        ENCODING_FRAME_SIZE,
        MessageType.ENCODING_RESPONSE,
        DTC_PROTOCOL_VERSION,
        int(encoding),
        _PROTOCOL_TYPE,
    )


@dataclass(frozen=True)
class EncodingFrame:
    """A decoded binary encoding request or response."""

    message_type: int
    protocol_version: int
    encoding: int


def parse_encoding_frame(data: bytes) -> EncodingFrame:
    """Decode a 16-byte binary encoding message; raise ``DtcProtocolError`` when it is not one."""
    if len(data) != ENCODING_FRAME_SIZE:
        raise DtcProtocolError(f"encoding message must be {ENCODING_FRAME_SIZE} bytes, was {len(data)}")
    size, message_type, version, encoding, _ = _ENCODING_STRUCT.unpack(data)
    if size != ENCODING_FRAME_SIZE or message_type not in (MessageType.ENCODING_REQUEST, MessageType.ENCODING_RESPONSE):
        raise DtcProtocolError(f"not a DTC encoding message (size={size}, type={message_type})")
    return EncodingFrame(message_type=message_type, protocol_version=version, encoding=encoding)


# -- JSON framing ---------------------------------------------------------------------------------


def encode_message(message: Mapping[str, Any]) -> bytes:
    """Serialise one message as compact JSON with ``Type`` first, followed by the NUL terminator.

    Only 8-bit characters are allowed by the spec, so non-ASCII text is escaped.
    """
    if "Type" not in message:
        raise ValueError("a DTC message needs a 'Type'")
    ordered = {"Type": int(message["Type"])}
    for key, value in message.items():
        if key != "Type" and value is not None:
            ordered[key] = value
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii") + _NUL


def decode_frame(frame: bytes) -> "DtcMessage":
    """Decode one NUL-free JSON frame (standard or compact) into a ``DtcMessage``."""
    try:
        raw = json.loads(frame.decode("latin-1"))
    except ValueError as exc:
        raise DtcProtocolError(f"invalid JSON message: {exc}") from None
    if not isinstance(raw, dict):
        raise DtcProtocolError(f"a DTC message must be a JSON object, was {type(raw).__name__}")
    message_type = _as_int(raw.get("Type"))
    if message_type is None:
        raise DtcProtocolError("DTC message without a numeric 'Type'")
    compact = raw.get("F")
    if isinstance(compact, list):
        names = _COMPACT_FIELDS.get(message_type, ())
        for name, value in zip(names, compact, strict=False):
            raw.setdefault(name, value)
    raw["Type"] = message_type
    return DtcMessage(raw)


class FrameDecoder:
    """Split a TCP byte stream into DTC JSON messages at NUL bytes; empty frames are skipped."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> list["DtcMessage"]:
        """Add received bytes; return every message they complete, in order."""
        self._buffer.extend(data)
        messages: list[DtcMessage] = []
        start = 0
        while True:
            end = self._buffer.find(_NUL, start)
            if end < 0:
                break
            if end > start:
                if end - start > self._max:
                    raise DtcProtocolError(f"message of {end - start} bytes exceeds {self._max}")
                messages.append(decode_frame(bytes(self._buffer[start:end])))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > self._max:
            raise DtcProtocolError(f"unterminated message exceeds {self._max} bytes")
        return messages

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet form a complete message."""
        return len(self._buffer)


# -- lenient field access -------------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or abs(number) >= UNSET_DOUBLE_THRESHOLD:
        return None
    return number


def _as_int(value: Any) -> int | None:
    number = _as_float(value)
    if number is None or abs(number) >= 2**63:
        return None
    return int(number)


def dtc_time_to_ns(value: Any) -> int | None:
    """A DTC timestamp in seconds, fractional seconds, milliseconds or microseconds → UTC nanoseconds.

    The unit is told by magnitude (``t_DateTime`` is seconds; ``LastFillDateTime`` became integer
    milliseconds in the current header; Sierra accepts microseconds in some requests). Zero, missing
    and unset values give ``None``.
    """
    number = _as_float(value)
    if number is None or number <= 0:
        return None
    if number.is_integer():  # integer arithmetic: a float would lose nanoseconds
        whole = int(value) if isinstance(value, int) else int(number)
        scale = (
            1_000_000_000
            if number < _SECONDS_MAX
            else 1_000_000
            if number < _MILLIS_MAX
            else 1_000
            if number < _MICROS_MAX
            else 1
        )
        return whole * scale
    if number < _SECONDS_MAX:
        return round(number * 1_000_000_000)
    if number < _MILLIS_MAX:
        return round(number * 1_000_000)
    return round(number * 1_000)


class DtcMessage(Mapping[str, Any]):
    """A received DTC message with lenient typed getters; missing, null and unset read as absent."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> Any:
        return self._raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"DtcMessage({self._raw!r})"

    @property
    def type(self) -> int:
        """The message type id."""
        return int(self._raw["Type"])

    def text(self, key: str) -> str:
        """A string field; ``""`` when missing or null."""
        value = self._raw.get(key)
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    def number(self, key: str) -> float | None:
        """A numeric field; ``None`` when missing, null, non-numeric, non-finite or DBL_MAX-unset."""
        return _as_float(self._raw.get(key))

    def integer(self, key: str, default: int = 0) -> int:
        """An integer field; ``default`` when absent or unset."""
        value = _as_int(self._raw.get(key))
        return default if value is None else value

    def flag(self, key: str) -> bool:
        """A 0/1 flag field; absent reads as False."""
        return self.integer(key) != 0

    def time_ns(self, key: str) -> int | None:
        """A timestamp field in any DTC unit, as UTC nanoseconds (``None`` when unset)."""
        return dtc_time_to_ns(self._raw.get(key))

    def to_dict(self) -> dict[str, Any]:
        """A copy of the raw fields."""
        return dict(self._raw)
