"""IQFeed adapter constants: client id, IQConnect ports, protocol, environment variable names.

IQConnect listens on 127.0.0.1 with one TCP port per service; each can be moved (a simulator on
port 0, an SSH tunnel), so every port is configurable and these are only the defaults.
"""

from typing import Final

from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId


#: Name of the data client (and of its factory key in a ``TradingNodeConfig``).
IQFEED: Final[str] = "IQFEED"
IQFEED_CLIENT_ID: Final[ClientId] = ClientId(IQFEED)

#: The only protocol this client speaks; the handshake asserts the server agrees.
PROTOCOL_VERSION: Final[str] = "6.2"

DEFAULT_HOST: Final[str] = "127.0.0.1"
LEVEL1_PORT: Final[int] = 5009
LOOKUP_PORT: Final[int] = 9100
DEPTH_PORT: Final[int] = 9200
ADMIN_PORT: Final[int] = 9300
BARS_PORT: Final[int] = 9400

#: Port names as used in logs, statistics and the simulator.
PORT_NAMES: Final[tuple[str, ...]] = ("level1", "lookup", "depth", "admin", "bars")
DEFAULT_PORTS: Final[dict[str, int]] = {
    "level1": LEVEL1_PORT,
    "lookup": LOOKUP_PORT,
    "depth": DEPTH_PORT,
    "admin": ADMIN_PORT,
    "bars": BARS_PORT,
}

#: Environment variables read for secrets and for the registered product (never logged).
ENV_LOGIN: Final[str] = "IQFEED_LOGIN"
ENV_PASSWORD: Final[str] = "IQFEED_PASSWORD"
ENV_PRODUCT_ID: Final[str] = "IQFEED_PRODUCT_ID"
ENV_PRODUCT_VERSION: Final[str] = "IQFEED_PRODUCT_VERSION"

#: Lookup port limit: DTN allows about 50 requests per second sustained (bursts to ~75).
LOOKUP_RATE_PER_SECOND: Final[float] = 50.0

#: Level 1 fields the data client selects: µs trade and quote times, the trade date, TickID and
#: the CME aggressor, plus Message Contents to tell trades from quote-only updates.
LEVEL1_UPDATE_FIELDS: Final[tuple[str, ...]] = (
    "Bid",
    "Bid Size",
    "Bid Time",
    "Ask",
    "Ask Size",
    "Ask Time",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Date",
    "Most Recent Trade Aggressor",
    "TickID",
    "Total Volume",
    "Message Contents",
)

#: IQFeed symbols of the cross-market instruments and their nautilus ids.
CROSS_MARKET_SYMBOLS: Final[dict[str, str]] = {
    "SPY": "SPY.ARCA",
    "VIX.XO": "VIX.CBOE",
}

#: Headlines without a known instrument are filed under this id (see ``catalog.types.NewsHeadline``).
NEWS_INSTRUMENT_ID: Final[InstrumentId] = InstrumentId.from_str("NEWS.GLBX")
