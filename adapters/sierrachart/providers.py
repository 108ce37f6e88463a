"""Instruments for the Sierra Chart adapter: symbol mapping per data service and price scaling.

Sierra Chart ignores ``Exchange`` and wants each symbol in its own spelling, which depends on the
data/trading service the installation uses (``ESZ25-CME`` on Denali/Teton, ``ESZ25_FUT_CME`` on "SC
Data - All Services", ``ESZ5.CME`` on Rithmic). ``SymbolMapper`` turns nautilus contracts
(``ESZ25.GLBX``) into that spelling from a template, with per-instrument overrides.

Some services quote exchange-native integers: the security definition's ``DisplayPriceMultiplier``
(a float32, so 0.01 arrives as 0.009999999776...) says how. ``SymbolDefinition`` converts display
prices to wire prices and back, rounding to the tick, after the SECURITY_DEFINITION_RESPONSE
confirmed the symbol exists and its tick agrees with the instrument's.

The instruments themselves are the project's CME contracts (``mia_strategies.instruments``): the
same definitions the backtest and the data client use, so all three agree to the tick.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN
from decimal import Decimal
from typing import Final

from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price

from adapters.sierrachart.codec import DtcMessage
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol


#: Symbol templates of the Sierra Chart services the project has seen (see docs/sierrachart.md).
SERVICE_TEMPLATES: Final[dict[str, str]] = {
    "denali": "{root}{month}{yy}-CME",
    "teton": "{root}{month}{yy}-CME",
    "sc_data": "{root}{month}{yy}_FUT_CME",
    "sc_data_1digit": "{root}{month}{y}_FUT_CME",
    "rithmic": "{root}{month}{y}.CME",
}
DEFAULT_SYMBOL_TEMPLATE: Final = SERVICE_TEMPLATES["denali"]
_FIELDS = ("root", "month", "yy", "y", "yyyy")


class SymbolMapper:
    """Nautilus contract id ↔ Sierra Chart symbol, from a template such as ``{root}{month}{yy}-CME``.

    Placeholders: ``{root}`` (ES), ``{month}`` (Z), ``{yy}`` (25), ``{y}`` (5), ``{yyyy}`` (2025).
    ``overrides`` maps an instrument id (``ESZ25.GLBX``) to a literal Sierra symbol.
    """

    def __init__(
        self, markets: MarketsConfig, template: str = DEFAULT_SYMBOL_TEMPLATE, overrides: dict[str, str] | None = None
    ) -> None:
        template = SERVICE_TEMPLATES.get(template, template)
        try:
            template.format(root="ES", month="Z", yy="25", y="5", yyyy="2025")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"symbol_template {template!r}: unknown placeholder {exc}; "
                "use {root}, {month}, {yy}, {y}, {yyyy} "
                f"or a service name ({', '.join(SERVICE_TEMPLATES)})",
            ) from None
        if (
            "{root}" not in template
            or "{month}" not in template
            or not any(f"{{{y}}}" in template for y in ("yy", "y", "yyyy"))
        ):
            raise ConfigError(
                f"symbol_template {template!r} must contain {{root}}, {{month}} and a year ({{yy}}, {{y}} or {{yyyy}})"
            )
        self.markets = markets
        self.template = template
        self._overrides = dict(overrides or {})
        self._reverse: dict[str, InstrumentId] = {}

    def to_sierra(self, instrument_id: InstrumentId) -> str:
        """The Sierra Chart symbol of a contract; remembered for the reverse lookup."""
        key = instrument_id.value
        symbol = self._overrides.get(key)
        if symbol is None:
            ref = parse_contract_symbol(instrument_id.symbol.value, self.markets)
            symbol = self.template.format(
                root=ref.root,
                month=ref.symbol[len(ref.root)],
                yy=f"{ref.year % 100:02d}",
                y=str(ref.year % 10),
                yyyy=str(ref.year),
            )
        self._reverse[symbol] = instrument_id
        return symbol

    def to_instrument_id(self, symbol: str) -> InstrumentId | None:
        """The contract of a Sierra symbol this mapper produced (or ``None`` for a stranger)."""
        return self._reverse.get(symbol)


@dataclass(frozen=True)
class SymbolDefinition:
    """A confirmed Sierra symbol: its tick, value per tick and price scale."""

    instrument_id: InstrumentId
    symbol: str
    min_tick: Decimal
    display_multiplier: Decimal
    currency_value_per_increment: float
    description: str
    price_precision: int

    def to_wire(self, price: Price | Decimal | float) -> float:
        """A display price (nautilus) as the number the server expects on the wire."""
        display = price.as_decimal() if isinstance(price, Price) else Decimal(str(price))
        ticks = (display / self.min_tick).to_integral_value(ROUND_HALF_EVEN)
        wire = ticks * self.min_tick / self.display_multiplier
        return float(wire.normalize()) if wire == wire.to_integral_value() else float(wire)

    def display_decimal(self, wire: float) -> Decimal:
        """A wire number in display units, unrounded (averages are not on the tick grid)."""
        return Decimal(repr(wire)) * self.display_multiplier

    def to_price(self, wire: float) -> Price:
        """A wire price as a nautilus ``Price`` rounded to the tick."""
        display = self.display_decimal(wire)
        ticks = (display / self.min_tick).to_integral_value(ROUND_HALF_EVEN)
        return Price(ticks * self.min_tick, self.price_precision)

    def to_avg_price(self, wire: float) -> Decimal:
        """A wire average price in display units at the instrument's precision plus two digits."""
        return self.display_decimal(wire).quantize(Decimal(1).scaleb(-(self.price_precision + 2)))


def effective_multiplier(value: float | None) -> Decimal:
    """``DisplayPriceMultiplier`` as the service means it: float32 noise removed (7 significant digits)."""
    if value is None or value <= 0:
        return Decimal(1)
    return Decimal(f"{value:.7g}")


def confirm_definition(instrument: Instrument, symbol: str, message: DtcMessage) -> SymbolDefinition:
    """Check a SECURITY_DEFINITION_RESPONSE against the instrument; raise ``ConfigError`` on a mismatch.

    The tick must agree (``MinPriceIncrement`` is in display units, after the multiplier), and so
    must the value of one tick where the server reports it: a mismatch means the symbol mapping
    points at another contract or product, and trading it would be wrong by a factor.
    """
    tick = instrument.price_increment.as_decimal()
    reported = message.number("MinPriceIncrement")
    multiplier = effective_multiplier(message.number("DisplayPriceMultiplier"))
    if reported is not None and reported > 0 and abs(Decimal(repr(reported)) - tick) > Decimal("1e-9"):
        raise ConfigError(
            f"Sierra symbol {symbol} has tick {reported}, but {instrument.id} has {tick}: fix symbol_template or "
            "symbol_overrides so they name the same contract",
        )
    value = message.number("CurrencyValuePerIncrement")
    expected = float(tick * instrument.multiplier.as_decimal())
    if value is not None and value > 0 and abs(value - expected) > 1e-6 * max(1.0, expected):
        raise ConfigError(
            f"Sierra symbol {symbol} is worth {value} per tick, but {instrument.id} is worth {expected}: "
            "the symbol mapping points at another product",
        )
    return SymbolDefinition(
        instrument_id=instrument.id,
        symbol=symbol,
        min_tick=tick,
        display_multiplier=multiplier,
        currency_value_per_increment=value or expected,
        description=message.text("Description"),
        price_precision=instrument.price_precision,
    )


class SierraChartInstrumentProvider(InstrumentProvider):
    """CME contracts for the Sierra Chart adapter, built from ``markets.yaml`` like the backtest's.

    ``load_ids`` builds the named contracts (``ESZ25.GLBX``); ``load_all`` builds the contract
    of every configured root that the roll calendar makes active now.
    """

    def __init__(
        self, markets: MarketsConfig, config: InstrumentProviderConfig | None = None, roots: list[str] | None = None
    ) -> None:
        super().__init__(config=config)
        self._markets = markets
        self._roots = roots

    async def load_all_async(self, filters: dict | None = None) -> None:
        """Load the active contract of every root (``roots``, else every root in markets.yaml)."""
        import time

        now = time.time_ns()
        for root in self._roots or sorted(self._markets.roots):
            contract = active_contract(root, now, self._markets)
            self.add(build_futures_contract(contract, self._markets))

    async def load_ids_async(self, instrument_ids: list[InstrumentId], filters: dict | None = None) -> None:
        """Load the named contracts."""
        for instrument_id in instrument_ids:
            await self.load_async(instrument_id, filters)

    async def load_async(self, instrument_id: InstrumentId, filters: dict | None = None) -> None:
        """Load one contract (one-line ``ConfigError`` for a symbol markets.yaml cannot build)."""
        if instrument_id.venue.value != self._markets.venue:
            raise ConfigError(
                f"{instrument_id}: venue must be {self._markets.venue} (one venue for data and execution)"
            )
        ref = parse_contract_symbol(instrument_id.symbol.value, self._markets)
        self.add(build_futures_contract(ref, self._markets))
