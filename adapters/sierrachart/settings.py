"""``config/sierrachart.yaml``: the Sierra Chart connection, the ``mia live`` node and the DTC simulator.

A pydantic model validated by ``mia config check config/sierrachart.yaml``. No secrets: the DTC
username and password (only needed when Sierra Chart's "Require Authentication" is on) come from
``MIA_DTC_USERNAME`` / ``MIA_DTC_PASSWORD``.
"""

import time
from pathlib import Path
from typing import Annotated
from typing import Literal

from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.providers import SERVICE_TEMPLATES
from adapters.sierrachart.providers import SymbolMapper
from adapters.sierrachart.simulator.config import SimulatorConfig
from adapters.sierrachart.simulator.config import SymbolSpec
from mia_strategies.config import MarketsConfig
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import expiry_ns
from mia_strategies.instruments import next_contract


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReconnectSettings(_Model):
    """Backoff between reconnect attempts after a dropped connection."""

    initial_delay_secs: Annotated[float, Field(gt=0, le=60)] = 0.5
    max_delay_secs: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_attempts: Annotated[int, Field(ge=1, le=100_000)] | None = None


class LiveNodeSettings(_Model):
    """The ``mia live`` node: what it trades and the files it builds on (paths relative to this file)."""

    instruments: list[str] = ["ES", "MNQ"]
    bar_minutes: Annotated[int, Field(ge=1, le=240)] = 1
    roll_policy: Literal["roll", "close"] = "roll"
    trader_id: str = "MIA-LIVE-001"
    #: The account value returns are measured against (the run's summary and report).
    starting_balance: Annotated[float, Field(gt=0, le=1e12)] = 100_000.0
    log_level: Literal["ERROR", "WARNING", "INFO", "DEBUG"] = "WARNING"
    markets_file: Path = Path("markets.yaml")
    strategy_file: Path = Path("strategy.yaml")
    iqfeed_file: Path = Path("iqfeed.yaml")

    @field_validator("instruments")
    @classmethod
    def _roots_upper(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one root such as ES or MNQ")
        return [v.upper() for v in value]


class SimulatorFillSettings(_Model):
    """How the DTC simulator fills (see docs/sierrachart.md)."""

    limit_fill_price: Literal["market", "limit"] = "limit"
    depth_limited_fills: bool = True
    queue_model: Literal["through", "touch", "queue"] = "through"
    stop_trigger: Literal["trade", "quote"] = "trade"
    slippage_ticks: Annotated[int, Field(ge=0, le=100)] = 0


class SimulatorSettings(_Model):
    """``mia dtc-sim`` and ``mia live --dry-run``."""

    port: Annotated[int, Field(ge=0, le=65535)] = 11099
    encoding: Literal["automatic", "json"] = "automatic"
    accounts: list[str] = ["Sim1", "Sim2"]
    starting_balance: Annotated[float, Field(gt=0, le=1e12)] = 100_000.0
    margin_per_contract: dict[str, Annotated[float, Field(ge=0)]] = {
        "ES": 15_000.0,
        "MES": 1_500.0,
        "NQ": 20_000.0,
        "MNQ": 2_000.0,
    }
    fills: SimulatorFillSettings = SimulatorFillSettings()


class SierraChartSettings(_Model):
    """The Sierra Chart DTC connection (validated by ``mia config check config/sierrachart.yaml``)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 11099
    encoding: Literal["automatic", "json"] = "automatic"
    trade_account: str = "Sim1"
    symbol_template: str = "denali"
    symbol_overrides: dict[str, str] = {}
    heartbeat_interval_secs: Annotated[int, Field(ge=5, le=60)] = 10
    connect_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    request_timeout_secs: Annotated[float, Field(gt=0, le=300)] = 20.0
    reconnect: ReconnectSettings = ReconnectSettings()
    state_file: Path = Path("state/sierrachart-orders.jsonl")
    state_fsync: bool = False
    cancel_orders_on_stop: bool = False
    reconciliation_lookback_days: Annotated[int, Field(ge=1, le=30)] = 1
    node: LiveNodeSettings = LiveNodeSettings()
    simulator: SimulatorSettings = SimulatorSettings()

    @field_validator("symbol_template")
    @classmethod
    def _template_known(cls, value: str) -> str:
        template = SERVICE_TEMPLATES.get(value, value)
        try:
            template.format(root="ES", month="Z", yy="25", y="5", yyyy="2025")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "use a service name ("
                + ", ".join(SERVICE_TEMPLATES)
                + ") or a template with {root}, {month}, {yy}/{y}/{yyyy}",
            ) from None
        return value

    def exec_config(
        self,
        *,
        markets_file: Path,
        commissions: dict[str, str],
        live: bool,
        host: str | None = None,
        port: int | None = None,
        trade_account: str | None = None,
        state_file: Path | None = None,
        instrument_ids: list[str] | None = None,
    ) -> SierraChartExecClientConfig:
        """The execution client's nautilus config (command-line values override the file's)."""
        ids = frozenset(InstrumentId.from_str(i) for i in instrument_ids or [])
        return SierraChartExecClientConfig(
            instrument_provider=InstrumentProviderConfig(load_ids=ids) if ids else InstrumentProviderConfig(),
            host=host or self.host,
            port=port or self.port,
            encoding_mode=self.encoding,
            trade_account=trade_account or self.trade_account,
            live=live,
            heartbeat_interval_secs=self.heartbeat_interval_secs,
            connect_attempts=self.connect_attempts,
            reconnect_initial_delay_secs=self.reconnect.initial_delay_secs,
            reconnect_max_delay_secs=self.reconnect.max_delay_secs,
            reconnect_max_attempts=self.reconnect.max_attempts,
            request_timeout_secs=self.request_timeout_secs,
            symbol_template=self.symbol_template,
            symbol_overrides=dict(self.symbol_overrides) or None,
            markets_file=str(markets_file),
            commission_per_contract=commissions,
            state_path=str(state_file or self.state_file),
            state_fsync=self.state_fsync,
            reconciliation_lookback_days=self.reconciliation_lookback_days,
            cancel_orders_on_stop=self.cancel_orders_on_stop,
        )

    def simulator_config(
        self, markets: MarketsConfig, roots: list[str], port: int | None = None, now_ns: int | None = None
    ) -> SimulatorConfig:
        """A simulator listing today's contracts of ``roots`` in this installation's symbol spelling."""
        sim = self.simulator
        fills = sim.fills
        return SimulatorConfig(
            port=sim.port if port is None else port,
            encoding_mode=sim.encoding,
            trade_accounts=tuple(sim.accounts),
            symbols=simulator_symbols(
                markets, roots, self.symbol_template, self.symbol_overrides, sim.margin_per_contract, now_ns
            ),
            starting_balance=sim.starting_balance,
            limit_fill_price=fills.limit_fill_price,
            depth_limited_fills=fills.depth_limited_fills,
            queue_model=fills.queue_model,
            stop_trigger=fills.stop_trigger,
            slippage_ticks=fills.slippage_ticks,
        )


def simulator_symbols(
    markets: MarketsConfig,
    roots: list[str],
    template: str,
    overrides: dict[str, str] | None = None,
    margins: dict[str, float] | None = None,
    now_ns: int | None = None,
) -> dict[str, SymbolSpec]:
    """The active and next contract of each root as simulator symbols, spelled by ``template``."""
    mapper = SymbolMapper(markets, template, overrides)
    now = time.time_ns() if now_ns is None else now_ns
    specs: dict[str, SymbolSpec] = {}
    for root in roots:
        spec = markets.root(root)
        active = active_contract(root, now, markets)
        for contract in (active, next_contract(active, spec)):
            symbol = mapper.to_sierra(contract.instrument_id(markets.venue))
            specs[symbol] = SymbolSpec(
                symbol=symbol,
                min_tick=float(spec.tick_size),
                tick_value=float(spec.tick_size) * spec.multiplier,
                description=f"{spec.description} {contract.symbol}",
                underlying=root,
                expiration_s=expiry_ns(contract, spec) // 1_000_000_000,
                margin_per_contract=(margins or {}).get(root, 0.0),
                commission_per_contract=float(spec.commission_per_contract),
            )
    return specs


def iqfeed_symbol_map(
    markets: MarketsConfig,
    roots: list[str],
    template: str,
    overrides: dict[str, str] | None = None,
    now_ns: int | None = None,
) -> dict[str, str]:
    """IQFeed symbols (``@ESZ26``) of the contracts ``simulator_symbols`` lists → their Sierra symbols."""
    mapper = SymbolMapper(markets, template, overrides)
    now = time.time_ns() if now_ns is None else now_ns
    mapping: dict[str, str] = {}
    for root in roots:
        active = active_contract(root, now, markets)
        for contract in (active, next_contract(active, markets.root(root))):
            mapping[f"@{contract.symbol}"] = mapper.to_sierra(contract.instrument_id(markets.venue))
    return mapping
