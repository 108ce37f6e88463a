"""DTC protocol constants (message types and enums from the current ``DTCProtocol.h``) and adapter limits.

Every id here was checked against the protocol reference (``docs/sierrachart.md`` cites it): several
third-party DTC clients carry wrong ids, so nothing in this package hard-codes a number elsewhere.
"""

from enum import IntEnum
from typing import Final

from nautilus_trader.model.identifiers import Venue


#: Adapter name used for logging and the factory key prefix.
SIERRACHART: Final = "SIERRACHART"
#: The one venue string MIA uses for CME instruments, data and execution (name the client after it).
SIERRACHART_VENUE: Final = Venue("GLBX")

DTC_PROTOCOL_VERSION: Final = 8
DEFAULT_DTC_HOST: Final = "127.0.0.1"
DEFAULT_DTC_PORT: Final = 11099
#: DTC ``ClientOrderID`` is ``char[32]`` in the binary struct: 31 characters plus NUL.
CLIENT_ORDER_ID_MAX_LEN: Final = 31
#: Sierra Chart tags auto-sent security definitions with this RequestID.
AUTO_SECURITY_DEFINITION_REQUEST_ID: Final = 110_000_000
#: Doubles at or above this magnitude are DTC's "unset" (DBL_MAX) values.
UNSET_DOUBLE_THRESHOLD: Final = 1e300
#: Environment variables holding the DTC credentials (only read, never logged).
DTC_USERNAME_ENV: Final = "MIA_DTC_USERNAME"
DTC_PASSWORD_ENV: Final = "MIA_DTC_PASSWORD"
#: A JSON frame larger than this is a protocol error (no DTC message comes close).
MAX_FRAME_BYTES: Final = 64 * 1024


class MessageType(IntEnum):
    """DTC message type ids (``Type`` field)."""

    LOGON_REQUEST = 1
    LOGON_RESPONSE = 2
    HEARTBEAT = 3
    LOGOFF = 5
    ENCODING_REQUEST = 6
    ENCODING_RESPONSE = 7
    TRADING_SYMBOL_STATUS = 138
    SUBMIT_NEW_OCO_ORDER = 201
    CANCEL_ORDER = 203
    CANCEL_REPLACE_ORDER = 204
    SUBMIT_NEW_SINGLE_ORDER = 208
    SUBMIT_FLATTEN_POSITION_ORDER = 209
    FLATTEN_POSITIONS_FOR_TRADE_ACCOUNT = 210
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
    USER_MESSAGE = 700
    GENERAL_LOG_MESSAGE = 701
    ALERT_MESSAGE = 702


class Encoding(IntEnum):
    """``EncodingEnum``."""

    BINARY = 0
    BINARY_WITH_VARIABLE_LENGTH_STRINGS = 1
    JSON = 2
    JSON_COMPACT = 3
    PROTOCOL_BUFFERS = 4


class LogonStatus(IntEnum):
    """``LogonStatusEnum``."""

    SUCCESS = 1
    ERROR = 2
    ERROR_NO_RECONNECT = 3
    RECONNECT_NEW_ADDRESS = 4


class TradeMode(IntEnum):
    """Legacy ``TradeModeEnum`` (older headers; harmless when a server ignores it)."""

    UNSET = 0
    DEMO = 1
    SIMULATED = 2
    LIVE = 3


class DtcOrderType(IntEnum):
    """``OrderTypeEnum``."""

    UNSET = 0
    MARKET = 1
    LIMIT = 2
    STOP = 3
    STOP_LIMIT = 4
    MARKET_IF_TOUCHED = 5
    LIMIT_IF_TOUCHED = 6
    MARKET_LIMIT = 7


class BuySell(IntEnum):
    """``BuySellEnum``."""

    UNSET = 0
    BUY = 1
    SELL = 2


class DtcTimeInForce(IntEnum):
    """``TimeInForceEnum``."""

    UNSET = 0
    DAY = 1
    GOOD_TILL_CANCELED = 2
    GOOD_TILL_DATE_TIME = 3
    IMMEDIATE_OR_CANCEL = 4
    ALL_OR_NONE = 5
    FILL_OR_KILL = 6


class DtcOrderStatus(IntEnum):
    """``OrderStatusEnum``."""

    UNSPECIFIED = 0
    ORDER_SENT = 1
    PENDING_OPEN = 2
    PENDING_CHILD = 3
    OPEN = 4
    PENDING_CANCEL_REPLACE = 5
    PENDING_CANCEL = 6
    FILLED = 7
    CANCELED = 8
    REJECTED = 9
    PARTIALLY_FILLED = 10


#: Statuses of an order that is still working at the server.
WORKING_STATUSES: Final = frozenset(
    {
        DtcOrderStatus.PENDING_OPEN,
        DtcOrderStatus.PENDING_CHILD,
        DtcOrderStatus.OPEN,
        DtcOrderStatus.PENDING_CANCEL_REPLACE,
        DtcOrderStatus.PENDING_CANCEL,
        DtcOrderStatus.PARTIALLY_FILLED,
    },
)


class OrderUpdateReason(IntEnum):
    """``OrderUpdateReasonEnum``."""

    UNSET = 0
    OPEN_ORDERS_REQUEST_RESPONSE = 1
    NEW_ORDER_ACCEPTED = 2
    GENERAL_ORDER_UPDATE = 3
    ORDER_FILLED = 4
    ORDER_FILLED_PARTIALLY = 5
    ORDER_CANCELED = 6
    ORDER_CANCEL_REPLACE_COMPLETE = 7
    NEW_ORDER_REJECTED = 8
    ORDER_CANCEL_REJECTED = 9
    ORDER_CANCEL_REPLACE_REJECTED = 10


class PartialFillHandling(IntEnum):
    """``PartialFillHandlingEnum`` of an OCO pair."""

    UNSET = 0
    REDUCE_QUANTITY = 1
    IMMEDIATE_CANCEL = 2
