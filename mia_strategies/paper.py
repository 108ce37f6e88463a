"""Paper execution: nautilus's sandbox client with the backtest venue's models.

nautilus 1.221's ``SandboxExecutionClient`` hard-codes ``FillModel()``, ``MakerTakerFeeModel()``
(our contracts have zero maker/taker fees, so paper trading would be commission-free), no margin
model (nautilus's leveraged default) and ``LatencyModel(0)``. :class:`PaperExecutionClient` builds
the same simulated exchange with the models a backtest uses: per-contract commissions by root
(:class:`mia_strategies.fees.RootCommissionFeeModel`), margins as a fraction of notional
(``StandardMarginModel``) and the CME fill model (:class:`mia_strategies.venue.CmeFillModel`:
market and stop orders fill at the touch, limits never slip), seeded.

The sandbox only sees ``data.*.<venue>.*`` topics (quotes, trades, instruments: never bars), so the
strategy must subscribe quotes for every traded contract (``MiaStrategy`` does). Its book is the
L1 quote: order book deltas (depth a strategy or actor subscribed for features) and trade prints
(``trade_execution`` off, as in a backtest with quotes) do not move it.
"""

import asyncio
import functools
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from typing import Literal

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.backtest.config import FillModelConfig
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.execution_client import BacktestExecClient
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.backtest.models import StandardMarginModel
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.core.data import Data
from nautilus_trader.execution.engine import ExecutionEngine
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.data import OrderBookDelta
from nautilus_trader.model.data import OrderBookDeltas
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import account_type_from_str
from nautilus_trader.model.enums import book_type_from_str
from nautilus_trader.model.enums import oms_type_from_str
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Currency
from nautilus_trader.model.objects import Money
from nautilus_trader.portfolio.base import PortfolioFacade
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

from mia_strategies.fees import RootCommissionFeeModel
from mia_strategies.fees import RootCommissionFeeModelConfig
from mia_strategies.venue import CmeFillModel


class PaperExecClientConfig(SandboxExecutionClientConfig, frozen=True, kw_only=True):
    """
    Configuration for ``PaperExecutionClient`` instances (the sandbox's fields, plus the venue models).

    Parameters
    ----------
    commissions : dict[str, str]
        Commission per contract per fill by root (``{"ES": "2.25", "MNQ": "0.62"}``), as
        ``mia_strategies.backtest.commissions_by_root`` builds it.
    prob_fill_on_limit : float, default 0.5
        Chance a touched (not traded-through) limit order fills.
    prob_slippage : float, default 0.0
        Chance a market or triggered stop order fills one tick worse.
    random_seed : int, default 42
        Seed of the fill model.

    """

    commissions: dict[str, str]
    prob_fill_on_limit: float = 0.5
    prob_slippage: float = 0.0
    random_seed: int = 42


class PaperExecutionClient(SandboxExecutionClient):
    """
    The sandbox execution client on a simulated exchange with the backtest's fee, margin and fill models.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The event loop for the client.
    portfolio : PortfolioFacade
        The read-only portfolio for the client.
    msgbus : MessageBus
        The message bus for the client.
    cache : Cache
        The cache for the client.
    clock : LiveClock
        The clock for the client.
    config : PaperExecClientConfig
        The configuration for the client.

    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: PaperExecClientConfig,
    ) -> None:
        # SandboxExecutionClient.__init__ would build an exchange with its fixed models; build ours
        # instead and reuse the sandbox's connect, command forwarding and data handling.
        venue = Venue(config.venue)
        oms_type = oms_type_from_str(config.oms_type)
        account_type = account_type_from_str(config.account_type)
        base_currency = Currency.from_str(config.base_currency) if config.base_currency else None
        self.test_clock = TestClock()
        LiveExecutionClient.__init__(
            self,
            loop=loop,
            client_id=ClientId(config.venue),
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            base_currency=base_currency,
            instrument_provider=InstrumentProvider(),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=None,
        )
        self.fill_model = CmeFillModel(
            FillModelConfig(
                prob_fill_on_limit=config.prob_fill_on_limit,
                prob_slippage=config.prob_slippage,
                random_seed=config.random_seed,
            ),
        )
        self.fee_model = RootCommissionFeeModel(RootCommissionFeeModelConfig(commissions=dict(config.commissions)))
        self.exchange = SimulatedExchange(
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            starting_balances=[Money.from_str(b) for b in config.starting_balances],
            base_currency=base_currency,
            default_leverage=Decimal(config.default_leverage),
            leverages=config.leverages or {},
            modules=[],
            portfolio=portfolio,
            msgbus=self._msgbus,
            cache=cache,
            clock=self.test_clock,
            fill_model=self.fill_model,
            fee_model=self.fee_model,
            latency_model=LatencyModel(0),
            margin_model=StandardMarginModel(),
            book_type=book_type_from_str(config.book_type),
            frozen_account=config.frozen_account,
            bar_execution=False,
            trade_execution=config.trade_execution,
            reject_stop_orders=config.reject_stop_orders,
            support_gtd_orders=config.support_gtd_orders,
            support_contingent_orders=config.support_contingent_orders,
            use_position_ids=config.use_position_ids,
            use_random_ids=config.use_random_ids,
            use_reduce_only=config.use_reduce_only,
            use_message_queue=False,  # commands act at once, against the quote in force
        )
        self._trade_execution = config.trade_execution
        self._last_quotes: dict[InstrumentId, QuoteTick] = {}
        self._client = BacktestExecClient(exchange=self.exchange, msgbus=msgbus, cache=cache, clock=self.test_clock)
        self.exchange.register_client(self._client)
        self.exchange.initialize_account()

    def process_events_synchronously(self, engine: ExecutionEngine) -> None:
        """Have ``engine`` apply this venue's events the moment they happen, as in a backtest.

        The live execution engine queues events; the simulated exchange, acting synchronously,
        would then release a bracket's stop and target before the entry's fill reached the cache,
        and reject them as reduce-only orders that increase a (still flat) position. Applying
        each event at once gives paper trading the backtest's event order. Only valid when this
        client is the node's only event source (paper mode); ``mia_strategies.live`` calls it.
        """
        self._msgbus.deregister(endpoint="ExecEngine.process", handler=engine.process)
        self._msgbus.register(endpoint="ExecEngine.process", handler=functools.partial(ExecutionEngine.process, engine))

    def on_data(self, data: Data) -> None:
        """Feed instruments, quotes and trades to the exchange, keeping the book the last quote.

        Depth never touches the L1 book. nautilus's L1 book takes every trade print as both bid
        and ask; as the backtest's ``QuoteBookGuard`` does, the last quote is put back right after
        each print (without ``trade_execution``), so a buy never fills at a print on the bid.
        """
        kind = type(data)
        if kind is OrderBookDeltas or kind is OrderBookDelta or kind is OrderBookDepth10:
            return
        super().on_data(data)
        if kind is QuoteTick:
            self._last_quotes[data.instrument_id] = data  # type: ignore[attr-defined]
        elif kind is TradeTick and not self._trade_execution:
            quote = self._last_quotes.get(data.instrument_id)  # type: ignore[attr-defined]
            if quote is not None:
                self.exchange.process_quote_tick(quote)


class PaperLiveExecClientFactory(LiveExecClientFactory):
    """
    Provides a ``PaperExecutionClient`` factory (register it under the venue's name, ``GLBX``).
    """

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: PaperExecClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> PaperExecutionClient:
        """
        Create a paper execution client.

        Parameters
        ----------
        loop : asyncio.AbstractEventLoop
            The event loop for the client.
        name : str
            The client name (must equal the venue).
        config : PaperExecClientConfig
            The configuration for the client.
        portfolio : PortfolioFacade
            The read-only portfolio for the client.
        msgbus : MessageBus
            The message bus for the client.
        cache : Cache
            The cache for the client.
        clock : LiveClock
            The clock for the client.

        Returns
        -------
        PaperExecutionClient

        """
        if name != config.venue:
            raise ValueError(f"the paper execution client must be named after its venue {config.venue!r}, was {name!r}")
        return PaperExecutionClient(
            loop=loop, portfolio=portfolio, msgbus=msgbus, cache=cache, clock=clock, config=config
        )


# nautilus 1.221's node builder hands the portfolio (which the simulated exchange needs) only to a
# factory whose class is *named* ``SandboxLiveExecClientFactory`` (live/node_builder.py, line 246);
# answer to that name so the standard ``exec_clients`` configuration builds the paper client.
PaperLiveExecClientFactory.__name__ = "SandboxLiveExecClientFactory"


# -- config/paper.yaml -------------------------------------------------------------------------------


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaperFillSettings(_Settings):
    """The paper venue's fill model (the backtest's ``CmeFillModel``), seeded."""

    prob_fill_on_limit: Annotated[float, Field(ge=0, le=1)] = 0.5
    prob_slippage: Annotated[float, Field(ge=0, le=1)] = 0.0
    random_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42


class PaperSettings(_Settings):
    """``config/paper.yaml``: what ``mia paper`` trades and the simulated account."""

    instruments: list[str] = ["ES", "MNQ"]
    bar_minutes: Annotated[int, Field(ge=1, le=240)] = 1
    roll_policy: Literal["roll", "close"] = "roll"
    starting_balance: Annotated[Decimal, Field(gt=0, le=Decimal("1e12"))] = Decimal(100_000)
    currency: Literal["USD", "EUR"] = "USD"
    default_leverage: Annotated[Decimal, Field(ge=1, le=100)] = Decimal(1)
    fill_model: PaperFillSettings = PaperFillSettings()
    markets_file: Path = Path("markets.yaml")
    strategy_file: Path = Path("strategy.yaml")
    iqfeed_file: Path = Path("iqfeed.yaml")
    trader_id: str = "MIA-PAPER-001"
    log_level: Literal["ERROR", "WARNING", "INFO", "DEBUG"] = "WARNING"

    @field_validator("instruments")
    @classmethod
    def _instruments_present(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one root such as ES or MNQ")
        return [v.upper() for v in value]

    def exec_config(self, commissions: dict[str, str], venue: str) -> PaperExecClientConfig:
        """The paper execution client's config for ``venue``."""
        return PaperExecClientConfig(
            venue=venue,
            starting_balances=[f"{self.starting_balance} {self.currency}"],
            base_currency=self.currency,
            oms_type="NETTING",
            account_type="MARGIN",
            default_leverage=self.default_leverage,
            book_type="L1_MBP",
            trade_execution=False,  # quotes are the book: a print at the bid must not fill a buy
            commissions=commissions,
            prob_fill_on_limit=self.fill_model.prob_fill_on_limit,
            prob_slippage=self.fill_model.prob_slippage,
            random_seed=self.fill_model.random_seed,
        )
