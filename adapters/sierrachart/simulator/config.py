"""Settings of the simulated Sierra Chart DTC server: symbols, accounts, fill behaviour, fault switches."""

import dataclasses
from dataclasses import dataclass
from dataclasses import field
from typing import Literal


@dataclass(frozen=True)
class SymbolSpec:
    """One tradable symbol in Sierra's own spelling, with the values its security definition reports.

    Prices inside the simulator are display prices (what a chart shows). On the wire every price is
    ``display / display_price_multiplier``, as a Sierra service that quotes exchange-native integers
    does (ES 4000.50 is ``400050`` with a multiplier of 0.01).
    """

    symbol: str
    min_tick: float = 0.25
    tick_value: float = 12.5
    display_price_multiplier: float = 1.0
    description: str = ""
    underlying: str = ""
    expiration_s: int = 0
    currency: str = "USD"
    margin_per_contract: float = 0.0
    commission_per_contract: float = 0.0

    @property
    def point_value(self) -> float:
        """Currency per 1.0 of display price per contract."""
        return self.tick_value / self.min_tick


def default_symbols() -> dict[str, SymbolSpec]:
    """The symbols of the protocol reference's simulator spec."""
    specs = [
        SymbolSpec("MNQZ25-CME", 0.25, 0.5, 1.0, "Micro E-mini Nasdaq-100 Dec 2025", "MNQ", 1766102400, "USD", 3000.0),
        SymbolSpec("ESZ25-CME", 0.25, 12.5, 1.0, "E-mini S&P 500 Dec 2025", "ES", 1766151000, "USD", 15000.0),
        # float32 0.01, exactly as Sierra sends it
        SymbolSpec("ESZ25-CME-SCALED", 0.25, 12.5, 0.009999999776482582, "E-mini S&P 500 (scaled)", "ES", 1766151000),
    ]
    return {s.symbol: s for s in specs}


@dataclass
class SimulatorConfig:
    """Everything the simulator does differently per test; defaults follow the protocol reference.

    Mutable on purpose: tests flip switches (``allow_trading``, ``duplicate_next_fill``) while the
    server runs, like a user changing Sierra Chart's settings.
    """

    host: str = "127.0.0.1"
    port: int = 0
    #: "automatic": the first bytes must be the binary ENCODING_REQUEST; "json": JSON from the start.
    encoding_mode: Literal["automatic", "json"] = "automatic"
    require_auth: bool = False
    username: str = ""
    password: str = ""
    allow_trading: bool = True
    trading_disabled_behavior: Literal["reject", "ignore"] = "reject"
    trade_accounts: tuple[str, ...] = ("Sim1", "Sim2")
    disabled_accounts: set[str] = field(default_factory=set)
    symbols: dict[str, SymbolSpec] = field(default_factory=default_symbols)
    starting_balance: float = 50_000.0
    account_currency: str = "USD"
    #: A client silent for factor x its heartbeat interval is disconnected; 0 disables the check.
    heartbeat_timeout_factor: float = 2.0
    emit_pending_open: bool = True
    emit_pending_cancel: bool = True
    emit_pending_replace: bool = True
    replace_changes_server_order_id: bool = False
    allow_tif_change: bool = False
    reject_tick_misaligned: bool = True
    market_order_without_quote: Literal["reject", "queue"] = "reject"
    reject_stop_through_market: bool = False
    #: Resting limit orders fill at the market (price improvement) or at their limit.
    limit_fill_price: Literal["market", "limit"] = "market"
    #: Fills never exceed the size shown at the touch (or the size traded); False fills everything.
    depth_limited_fills: bool = True
    #: Trade prints fill a resting limit: "through" its price only, also at it ("touch"), or after
    #: the volume queued ahead at placement has traded ("queue").
    queue_model: Literal["through", "touch", "queue"] = "through"
    #: Stops trigger on the last trade (or the touch before any trade), or on the touch only.
    stop_trigger: Literal["trade", "quote"] = "trade"
    slippage_ticks: int = 0
    max_order_quantity: float = 1000.0
    first_server_order_id: int = 1001
    exec_id_prefix: str = "E"
    oco_supported: bool = True
    bracket_supported: bool = True
    send_balance_updates: bool = True
    auto_send_security_definitions: bool = False
    server_name: str = "SC DTC Server"
    service_name: str = "fake"
    # -- fault switches (one-shot ones reset themselves) --
    fill_before_ack: bool = False
    duplicate_next_fill: bool = False
    #: Received and sent messages kept for assertions (oldest dropped beyond this).
    traffic_limit: int = 100_000

    def copy(self) -> "SimulatorConfig":
        """A deep-enough copy: containers are not shared with the original."""
        return dataclasses.replace(
            self,
            disabled_accounts=set(self.disabled_accounts),
            symbols=dict(self.symbols),
        )
