"""Factory that builds the Sierra Chart execution client for a nautilus ``TradingNode``."""

import asyncio
from pathlib import Path

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.live.factories import LiveExecClientFactory

from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.execution import SierraChartExecutionClient
from adapters.sierrachart.providers import SierraChartInstrumentProvider
from mia_strategies.config import load_markets


class SierraChartLiveExecClientFactory(LiveExecClientFactory):
    """
    Provides a ``SierraChartExecutionClient`` for a ``TradingNode``.

    Register it under the venue name (``node.add_exec_client_factory("GLBX", ...)``) so the client
    id equals the venue and the account id is ``GLBX-<trade account>``.
    """

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: SierraChartExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> SierraChartExecutionClient:
        """Create the client (markets from ``config.markets_file``, else the config folder's)."""
        markets = load_markets(Path(config.markets_file) if config.markets_file else None)
        provider = SierraChartInstrumentProvider(markets, config=config.instrument_provider)
        return SierraChartExecutionClient(
            loop=loop,
            name=name,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
            markets=markets,
        )
