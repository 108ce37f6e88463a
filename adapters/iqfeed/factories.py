"""``IQFeedLiveDataClientFactory``: builds the IQFeed data client for a ``TradingNode``.

Register it under the client's name (``IQFEED``) with ``node.add_data_client_factory``; the node
passes the ``IQFeedDataClientConfig`` it holds under the same name.
"""

import asyncio
from pathlib import Path

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.identifiers import ClientId

from adapters.iqfeed.config import IQFeedDataClientConfig
from adapters.iqfeed.data import IQFeedDataClient
from adapters.iqfeed.providers import IQFeedInstrumentProvider
from mia_strategies.config import load_markets


class IQFeedLiveDataClientFactory(LiveDataClientFactory):
    """
    Provides an ``IQFeedDataClient`` factory.
    """

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: IQFeedDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> IQFeedDataClient:
        """
        Create a new IQFeed data client.

        Parameters
        ----------
        loop : asyncio.AbstractEventLoop
            The event loop for the client.
        name : str
            The client name (its ``ClientId``).
        config : IQFeedDataClientConfig
            The client configuration.
        msgbus : MessageBus
            The message bus for the client.
        cache : Cache
            The cache for the client.
        clock : LiveClock
            The clock for the client.

        Returns
        -------
        IQFeedDataClient

        """
        markets = load_markets(Path(config.markets_file) if config.markets_file else None)
        provider = IQFeedInstrumentProvider(
            markets,
            config=config.instrument_provider,
            roots=tuple(config.roots),
            cross_market=config.cross_market,
            fundamentals_timeout=config.fundamentals_timeout_secs,
            clock=clock.timestamp_ns,
        )
        return IQFeedDataClient(
            loop=loop,
            client_id=ClientId(name),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
        )
