"""DTC JSON framing, the binary encoding handshake and the lenient reader."""

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from adapters.sierrachart import constants as c
from adapters.sierrachart.codec import DtcMessage
from adapters.sierrachart.codec import DtcProtocolError
from adapters.sierrachart.codec import FrameDecoder
from adapters.sierrachart.codec import decode_frame
from adapters.sierrachart.codec import dtc_time_to_ns
from adapters.sierrachart.codec import encode_message
from adapters.sierrachart.codec import encoding_request
from adapters.sierrachart.codec import encoding_response
from adapters.sierrachart.codec import parse_encoding_frame
from adapters.sierrachart.simulator import protocol as sim


def test_encoding_request_and_response_bytes_match_the_protocol_reference() -> None:
    # Documented request "0x10000600 0x08000000 0x02000000 0x44544300" (little endian words)
    assert encoding_request().hex(" ") == "10 00 06 00 08 00 00 00 02 00 00 00 44 54 43 00"
    # Sierra Chart's reply for JSON as captured by a working client
    assert encoding_response().hex(" ") == "10 00 07 00 08 00 00 00 02 00 00 00 44 54 43 00"
    frame = parse_encoding_frame(encoding_response())
    assert (frame.message_type, frame.protocol_version, frame.encoding) == (7, 8, 2)
    with pytest.raises(DtcProtocolError):
        parse_encoding_frame(b"\x10\x00\x01\x00" + bytes(12))
    with pytest.raises(DtcProtocolError):
        parse_encoding_frame(b"short")


def test_adapter_and_simulator_agree_on_every_message_id() -> None:
    # Both were transcribed from the header separately: a typo in one fails here.
    pairs = {
        c.MessageType.LOGON_REQUEST: sim.LOGON_REQUEST,
        c.MessageType.LOGON_RESPONSE: sim.LOGON_RESPONSE,
        c.MessageType.HEARTBEAT: sim.HEARTBEAT,
        c.MessageType.LOGOFF: sim.LOGOFF,
        c.MessageType.SUBMIT_NEW_SINGLE_ORDER: sim.SUBMIT_NEW_SINGLE_ORDER,
        c.MessageType.SUBMIT_NEW_OCO_ORDER: sim.SUBMIT_NEW_OCO_ORDER,
        c.MessageType.CANCEL_ORDER: sim.CANCEL_ORDER,
        c.MessageType.CANCEL_REPLACE_ORDER: sim.CANCEL_REPLACE_ORDER,
        c.MessageType.OPEN_ORDERS_REQUEST: sim.OPEN_ORDERS_REQUEST,
        c.MessageType.ORDER_UPDATE: sim.ORDER_UPDATE,
        c.MessageType.HISTORICAL_ORDER_FILLS_REQUEST: sim.HISTORICAL_ORDER_FILLS_REQUEST,
        c.MessageType.HISTORICAL_ORDER_FILL_RESPONSE: sim.HISTORICAL_ORDER_FILL_RESPONSE,
        c.MessageType.CURRENT_POSITIONS_REQUEST: sim.CURRENT_POSITIONS_REQUEST,
        c.MessageType.POSITION_UPDATE: sim.POSITION_UPDATE,
        c.MessageType.TRADE_ACCOUNTS_REQUEST: sim.TRADE_ACCOUNTS_REQUEST,
        c.MessageType.TRADE_ACCOUNT_RESPONSE: sim.TRADE_ACCOUNT_RESPONSE,
        c.MessageType.SECURITY_DEFINITION_FOR_SYMBOL_REQUEST: sim.SECURITY_DEFINITION_FOR_SYMBOL_REQUEST,
        c.MessageType.SECURITY_DEFINITION_RESPONSE: sim.SECURITY_DEFINITION_RESPONSE,
        c.MessageType.SECURITY_DEFINITION_REJECT: sim.SECURITY_DEFINITION_REJECT,
        c.MessageType.ACCOUNT_BALANCE_UPDATE: sim.ACCOUNT_BALANCE_UPDATE,
        c.MessageType.ACCOUNT_BALANCE_REQUEST: sim.ACCOUNT_BALANCE_REQUEST,
        c.DtcOrderStatus.PARTIALLY_FILLED: sim.STATUS_PARTIALLY_FILLED,
        c.OrderUpdateReason.ORDER_CANCEL_REPLACE_REJECTED: sim.REASON_CANCEL_REPLACE_REJECTED,
        c.DtcTimeInForce.FILL_OR_KILL: sim.TIF_FOK,
        c.DtcOrderType.MARKET_IF_TOUCHED: sim.ORDER_TYPE_MARKET_IF_TOUCHED,
    }
    for adapter_id, simulator_id in pairs.items():
        assert int(adapter_id) == simulator_id, adapter_id


def test_encoded_messages_put_type_first_drop_nulls_and_end_with_nul() -> None:
    data = encode_message({"Symbol": "ESZ25-CME", "Type": 208, "Price2": None, "Quantity": 1.0, "Text": "é"})
    assert data.endswith(b"\x00") and data.count(b"\x00") == 1
    body = data[:-1].decode("ascii")
    assert body.startswith('{"Type":208,')
    assert json.loads(body) == {"Type": 208, "Symbol": "ESZ25-CME", "Quantity": 1.0, "Text": "é"}
    with pytest.raises(ValueError):
        encode_message({"Symbol": "x"})


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(
        st.fixed_dictionaries(
            {"Type": st.integers(1, 700), "Text": st.text(max_size=30), "N": st.integers(-(10**9), 10**9)}
        ),
        min_size=1,
        max_size=8,
    ),
    cuts=st.lists(st.integers(1, 40), max_size=12),
)
def test_frames_survive_any_split_of_the_byte_stream(messages: list[dict], cuts: list[int]) -> None:
    stream = b"".join(encode_message(m) for m in messages) + b"\x00\x00"  # empty frames are skipped
    decoder = FrameDecoder()
    received = []
    position = 0
    for size in cuts:
        received.extend(decoder.feed(stream[position : position + size]))
        position += size
    received.extend(decoder.feed(stream[position:]))
    assert [m.to_dict() for m in received] == messages
    assert decoder.pending_bytes == 0


def test_decoder_rejects_garbage_and_oversized_frames() -> None:
    with pytest.raises(DtcProtocolError):
        FrameDecoder().feed(b"{not json}\x00")
    with pytest.raises(DtcProtocolError):
        FrameDecoder().feed(b"[1,2]\x00")
    with pytest.raises(DtcProtocolError):
        FrameDecoder().feed(b'{"NoType":1}\x00')
    with pytest.raises(DtcProtocolError):
        FrameDecoder(max_frame_bytes=64).feed(b"{" + b" " * 100)


def test_lenient_reader_treats_missing_null_and_dbl_max_as_unset() -> None:
    message = decode_frame(
        json.dumps(
            {
                "Type": 301,
                "Price1": 1.7976931348623157e308,
                "Price2": None,
                "Quantity": "3",
                "AverageFillPrice": "21000.25",
                "ServerOrderID": 1003,
                "TradingIsSupported": 1,
                "Bad": "n/a",
            },
        ).encode(),
    )
    assert message.type == 301
    assert message.number("Price1") is None and message.number("Price2") is None and message.number("Missing") is None
    assert message.number("Quantity") == 3.0 and message.number("AverageFillPrice") == 21000.25
    assert message.number("Bad") is None
    assert message.text("ServerOrderID") == "1003" and message.text("Missing") == ""
    assert message.flag("TradingIsSupported") and not message.flag("Missing")
    assert message.integer("Missing", 7) == 7


def test_compact_heartbeat_fields_are_named() -> None:
    message = decode_frame(b'{"Type":3,"F":[0,1763683200]}')
    assert message.integer("NumDroppedMessages") == 0
    assert message.time_ns("CurrentDateTime") == 1763683200 * 10**9


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1763683260, 1763683260 * 10**9),  # t_DateTime seconds (2016 header LastFillDateTime)
        (1763683260.5, 1763683260_500_000_000),  # t_DateTimeWithMilliseconds
        (1763683260123, 1763683260_123_000_000),  # integer milliseconds (current header)
        (1763683260123456, 1763683260_123_456_000),  # microseconds (Sierra's StartDateTime)
        (0, None),
        (None, None),
        (1.7976931348623157e308, None),
        ("1763683260", 1763683260 * 10**9),
    ],
)
def test_timestamps_in_every_dtc_unit(value: object, expected: int | None) -> None:
    assert dtc_time_to_ns(value) == expected


def test_message_is_a_read_only_mapping() -> None:
    message = DtcMessage({"Type": 2, "Result": 1})
    assert dict(message) == {"Type": 2, "Result": 1} and len(message) == 2 and "Result" in message
