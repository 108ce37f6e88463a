"""Configuration of the IQFeed data client (``IQFeedDataClientConfig``) and of ``config/iqfeed.yaml``.

Everything here is safe to log and to keep in a YAML file: the IQFeed login, password and product
id are read from the environment (``IQFEED_LOGIN``, ``IQFEED_PASSWORD``, ``IQFEED_PRODUCT_ID``) by
the admin connection when it starts, never stored in a config object.
"""

from typing import Annotated

from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.config import LiveDataClientConfig
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from adapters.iqfeed.constants import ADMIN_PORT
from adapters.iqfeed.constants import BARS_PORT
from adapters.iqfeed.constants import DEFAULT_HOST
from adapters.iqfeed.constants import DEPTH_PORT
from adapters.iqfeed.constants import LEVEL1_PORT
from adapters.iqfeed.constants import LOOKUP_PORT
from adapters.iqfeed.constants import LOOKUP_RATE_PER_SECOND


class IQFeedDataClientConfig(LiveDataClientConfig, frozen=True):
    """
    Configuration for ``IQFeedDataClient`` instances.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        Host IQConnect listens on.
    level1_port : int, default 5009
        Level 1 (quotes, trades, news, fundamentals) port.
    lookup_port : int, default 9100
        Lookup (history, chains, news lookups) port.
    depth_port : int, default 9200
        Level 2 (market depth) port.
    admin_port : int, default 9300
        Admin (statistics, registration) port.
    bars_port : int, default 9400
        Derivative (streaming interval bars) port.
    client_name : str, default "MIA"
        Name shown in IQConnect's client statistics.
    venue : str, default "GLBX"
        Venue of the futures contracts (the project's one venue string).
    markets_file : str, optional
        ``markets.yaml`` with the contract specs; the config folder's when None.
    roots : tuple[str, ...], default ("ES", "MNQ")
        Futures roots whose current contracts ``load_all`` loads.
    cross_market : bool, default True
        Also load VIX (``VIX.XO``) and SPY as cross-market instruments.
    request_timeout_secs : float, default 30.0
        Idle timeout of a lookup request (restarts with every row received).
    handshake_timeout_secs : float, default 5.0
        Timeout of the protocol handshake and field selection on each port.
    fundamentals_timeout_secs : float, default 5.0
        How long the instrument provider waits for a symbol's fundamental message.
    lookup_rate_per_second : float, default 50.0
        Lookup requests per second (DTN's limit is about 50).
    reconnect_initial_delay_secs : float, default 0.25
        First reconnect delay; doubled after each failed attempt.
    reconnect_max_delay_secs : float, default 30.0
        Longest delay between reconnect attempts.
    stale_after_secs : float, default 10.0
        Level 1 silence (IQConnect sends a timestamp every second) after which the feed is stale
        and the connection is dropped and reopened.
    depth_levels : int, default 10
        Price levels per side for market-by-price depth when a subscription gives no depth.
    use_depth_port : bool, default True
        Connect the Level 2 port (needs a depth entitlement).
    use_bars_port : bool, default True
        Connect the derivative (bars) port.
    use_admin_port : bool, default True
        Connect the admin port (statistics; login from the environment).
    chain_interval_secs : float, default 60.0
        Seconds between option chain snapshots of a chain subscription.
    chain_strikes : int, default 20
        Strikes kept on each side of the underlying price in a chain snapshot (0 keeps all).

    """

    host: str = DEFAULT_HOST
    level1_port: PositiveInt = LEVEL1_PORT
    lookup_port: PositiveInt = LOOKUP_PORT
    depth_port: PositiveInt = DEPTH_PORT
    admin_port: PositiveInt = ADMIN_PORT
    bars_port: PositiveInt = BARS_PORT
    client_name: str = "MIA"
    venue: str = "GLBX"
    markets_file: str | None = None
    roots: tuple[str, ...] = ("ES", "MNQ")
    cross_market: bool = True
    request_timeout_secs: PositiveFloat = 30.0
    handshake_timeout_secs: PositiveFloat = 5.0
    fundamentals_timeout_secs: PositiveFloat = 5.0
    lookup_rate_per_second: PositiveFloat = LOOKUP_RATE_PER_SECOND
    reconnect_initial_delay_secs: PositiveFloat = 0.25
    reconnect_max_delay_secs: PositiveFloat = 30.0
    stale_after_secs: PositiveFloat = 10.0
    depth_levels: PositiveInt = 10
    use_depth_port: bool = True
    use_bars_port: bool = True
    use_admin_port: bool = True
    chain_interval_secs: PositiveFloat = 60.0
    chain_strikes: int = 20

    def ports(self) -> dict[str, int]:
        """Port numbers by name (level1, lookup, depth, admin, bars)."""
        return {
            "level1": self.level1_port,
            "lookup": self.lookup_port,
            "depth": self.depth_port,
            "admin": self.admin_port,
            "bars": self.bars_port,
        }


# -- config/iqfeed.yaml ----------------------------------------------------------------------------


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IQFeedPorts(_Settings):
    """IQConnect's ports (the defaults are IQConnect's own)."""

    level1: Annotated[int, Field(ge=1, le=65535)] = LEVEL1_PORT
    lookup: Annotated[int, Field(ge=1, le=65535)] = LOOKUP_PORT
    depth: Annotated[int, Field(ge=1, le=65535)] = DEPTH_PORT
    admin: Annotated[int, Field(ge=1, le=65535)] = ADMIN_PORT
    bars: Annotated[int, Field(ge=1, le=65535)] = BARS_PORT


class SimulatorSettings(_Settings):
    """The simulator ``mia iqfeed-sim`` and ``mia paper --simulate`` start."""

    rate: Annotated[float, Field(ge=0, le=10_000)] = 20.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 7
    news_interval_secs: Annotated[float, Field(gt=0, le=86_400)] | None = 30.0
    roots: list[str] = ["ES", "MNQ"]


class IQFeedSettings(_Settings):
    """``config/iqfeed.yaml``: where IQConnect is and how the client behaves (no secrets here)."""

    host: str = DEFAULT_HOST
    ports: IQFeedPorts = IQFeedPorts()
    client_name: str = "MIA"
    request_timeout_secs: Annotated[float, Field(gt=0, le=3600)] = 30.0
    handshake_timeout_secs: Annotated[float, Field(gt=0, le=120)] = 5.0
    fundamentals_timeout_secs: Annotated[float, Field(gt=0, le=120)] = 5.0
    stale_after_secs: Annotated[float, Field(gt=0, le=3600)] = 10.0
    reconnect_initial_delay_secs: Annotated[float, Field(gt=0, le=60)] = 0.25
    reconnect_max_delay_secs: Annotated[float, Field(gt=0, le=3600)] = 30.0
    lookup_rate_per_second: Annotated[float, Field(gt=0, le=1000)] = LOOKUP_RATE_PER_SECOND
    depth_levels: Annotated[int, Field(ge=1, le=100)] = 10
    use_depth_port: bool = True
    use_bars_port: bool = True
    use_admin_port: bool = True
    cross_market: bool = True
    simulator: SimulatorSettings = SimulatorSettings()

    def client_config(
        self,
        roots: tuple[str, ...],
        host: str | None = None,
        ports: dict[str, int] | None = None,
        markets_file: str | None = None,
    ) -> IQFeedDataClientConfig:
        """The data client config for ``roots`` (``host``/``ports`` override the file's)."""
        chosen = self.ports.model_dump() | (ports or {})
        return IQFeedDataClientConfig(
            instrument_provider=InstrumentProviderConfig(load_all=True),
            host=host or self.host,
            level1_port=chosen["level1"],
            lookup_port=chosen["lookup"],
            depth_port=chosen["depth"],
            admin_port=chosen["admin"],
            bars_port=chosen["bars"],
            client_name=self.client_name,
            markets_file=markets_file,
            roots=roots,
            cross_market=self.cross_market,
            request_timeout_secs=self.request_timeout_secs,
            handshake_timeout_secs=self.handshake_timeout_secs,
            fundamentals_timeout_secs=self.fundamentals_timeout_secs,
            lookup_rate_per_second=self.lookup_rate_per_second,
            reconnect_initial_delay_secs=self.reconnect_initial_delay_secs,
            reconnect_max_delay_secs=self.reconnect_max_delay_secs,
            stale_after_secs=self.stale_after_secs,
            depth_levels=self.depth_levels,
            use_depth_port=self.use_depth_port,
            use_bars_port=self.use_bars_port,
            use_admin_port=self.use_admin_port,
        )
