"""Wire constants of the simulated Sierra Chart DTC server, transcribed from the protocol reference.

The simulator keeps its own copy on purpose: it is written from the protocol document, not from the
adapter, so a wrong id in one of them shows up as a failing test instead of agreeing with itself.
"""

import json
import struct
from typing import Any


# Message types (DTCProtocol.h, current header).
LOGON_REQUEST = 1
LOGON_RESPONSE = 2
HEARTBEAT = 3
LOGOFF = 5
ENCODING_REQUEST = 6
ENCODING_RESPONSE = 7
SUBMIT_NEW_OCO_ORDER = 201
CANCEL_ORDER = 203
CANCEL_REPLACE_ORDER = 204
SUBMIT_NEW_SINGLE_ORDER = 208
OPEN_ORDERS_REQUEST = 300
ORDER_UPDATE = 301
OPEN_ORDERS_REJECT = 302
HISTORICAL_ORDER_FILLS_REQUEST = 303
HISTORICAL_ORDER_FILL_RESPONSE = 304
CURRENT_POSITIONS_REQUEST = 305
POSITION_UPDATE = 306
CURRENT_POSITIONS_REJECT = 307
HISTORICAL_ORDER_FILLS_REJECT = 308
TRADE_ACCOUNTS_REQUEST = 400
TRADE_ACCOUNT_RESPONSE = 401
SECURITY_DEFINITION_FOR_SYMBOL_REQUEST = 506
SECURITY_DEFINITION_RESPONSE = 507
SECURITY_DEFINITION_REJECT = 509
ACCOUNT_BALANCE_UPDATE = 600
ACCOUNT_BALANCE_REQUEST = 601
ACCOUNT_BALANCE_REJECT = 602

# LogonStatusEnum
LOGON_SUCCESS = 1
LOGON_ERROR = 2
LOGON_ERROR_NO_RECONNECT = 3
LOGON_RECONNECT_NEW_ADDRESS = 4

# EncodingEnum
ENCODING_JSON = 2

# OrderTypeEnum
ORDER_TYPE_MARKET = 1
ORDER_TYPE_LIMIT = 2
ORDER_TYPE_STOP = 3
ORDER_TYPE_STOP_LIMIT = 4
ORDER_TYPE_MARKET_IF_TOUCHED = 5

# BuySellEnum
BUY = 1
SELL = 2

# TimeInForceEnum
TIF_DAY = 1
TIF_GTC = 2
TIF_GTD = 3
TIF_IOC = 4
TIF_AON = 5
TIF_FOK = 6

# OrderStatusEnum
STATUS_PENDING_OPEN = 2
STATUS_PENDING_CHILD = 3
STATUS_OPEN = 4
STATUS_PENDING_CANCEL_REPLACE = 5
STATUS_PENDING_CANCEL = 6
STATUS_FILLED = 7
STATUS_CANCELED = 8
STATUS_REJECTED = 9
STATUS_PARTIALLY_FILLED = 10

# OrderUpdateReasonEnum
REASON_OPEN_ORDERS_RESPONSE = 1
REASON_NEW_ORDER_ACCEPTED = 2
REASON_GENERAL_UPDATE = 3
REASON_FILLED = 4
REASON_FILLED_PARTIALLY = 5
REASON_CANCELED = 6
REASON_CANCEL_REPLACE_COMPLETE = 7
REASON_NEW_ORDER_REJECTED = 8
REASON_CANCEL_REJECTED = 9
REASON_CANCEL_REPLACE_REJECTED = 10

# PartialFillHandlingEnum
PARTIAL_FILL_REDUCE_QUANTITY = 1
PARTIAL_FILL_IMMEDIATE_CANCEL = 2

#: RequestID Sierra Chart puts on security definitions it sends on its own.
AUTO_SECURITY_DEFINITION_REQUEST_ID = 110_000_000
#: Largest JSON frame the server accepts.
MAX_FRAME = 64 * 1024
#: ``StartDateTime`` values at or above 2010-01-01 in microseconds are microseconds (Sierra behaviour).
MICROSECOND_START_THRESHOLD = 1_262_304_000_000_000

_ENCODING = struct.Struct("<HHii4s")
ENCODING_MESSAGE_SIZE = 16


def encoding_response_bytes(encoding: int = ENCODING_JSON) -> bytes:
    """The binary ENCODING_RESPONSE: ``10 00 07 00 08 00 00 00 02 00 00 00 44 54 43 00`` for JSON."""
    return _ENCODING.pack(ENCODING_MESSAGE_SIZE, ENCODING_RESPONSE, 8, encoding, b"DTC\x00")


def parse_encoding_request(data: bytes) -> tuple[int, int, int]:
    """``(size, type, encoding)`` of a 16-byte binary encoding message."""
    size, message_type, _version, encoding, _ = _ENCODING.unpack(data)
    return size, message_type, encoding


def dumps(message: dict[str, Any]) -> bytes:
    """One JSON message with ``Type`` first and the NUL terminator."""
    ordered = {"Type": message["Type"], **{k: v for k, v in message.items() if k != "Type"}}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\x00"
