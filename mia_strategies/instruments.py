"""CME futures contracts with their real specs, and the roll calendar as pure functions.

Contract symbols are ``ROOT + month code + two-digit year`` (``ESZ25``): two digits keep 2013 and
2023 contracts apart in one catalog. Expiry is the third Friday of the contract month at the
product's last-trade time (09:30 ET for equity-index futures). The active contract at a timestamp
is the first listed contract whose roll time (expiry minus ``days_before_expiry``) lies after it.
"""

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas as pd
from nautilus_trader.model.currencies import EUR
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AssetClass
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from mia_strategies.config import MONTH_CODES
from mia_strategies.config import MarketsConfig
from mia_strategies.config import RootSpec
from mia_strategies.errors import ConfigError


_SYMBOL_RE = re.compile(r"^([A-Z]{1,6}?)([FGHJKMNQUVXZ])(\d{2})$")
_NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True, order=True)
class ContractRef:
    """One listed contract: root, year and month. Orders by expiry."""

    year: int
    month: int
    root: str

    @property
    def symbol(self) -> str:
        """CME-style symbol with a two-digit year: ``ESZ25``."""
        return f"{self.root}{MONTH_CODES[self.month - 1]}{self.year % 100:02d}"

    def instrument_id(self, venue: str) -> InstrumentId:
        """Nautilus instrument id on ``venue``: ``ESZ25.GLBX``."""
        return InstrumentId(Symbol(self.symbol), Venue(venue))

    def __str__(self) -> str:
        return self.symbol


@dataclass(frozen=True)
class ContractWindow:
    """A contract and the half-open interval ``[active_from_ns, active_to_ns)`` it is the active one."""

    contract: ContractRef
    active_from_ns: int
    active_to_ns: int


def parse_contract_symbol(symbol: str, markets: MarketsConfig) -> ContractRef:
    """Parse ``ESZ25`` (or ``ESZ25.GLBX``) into a ContractRef; one-line error when malformed."""
    raw = symbol.split(".")[0].upper()
    match = _SYMBOL_RE.match(raw)
    roots = ", ".join(sorted(markets.roots))
    if match is None:
        raise ConfigError(
            f"bad contract symbol {symbol!r}: use ROOT + month code + 2-digit year such as ESZ25 (roots: {roots})",
        )
    root, code, yy = match.groups()
    spec = markets.root(root)
    month = MONTH_CODES.index(code) + 1
    if code not in spec.months:
        raise ConfigError(f"{symbol}: {root} lists only months {spec.months}, not {code}")
    year = 2000 + int(yy) if int(yy) < 70 else 1900 + int(yy)
    return ContractRef(year=year, month=month, root=root)


def third_friday(year: int, month: int) -> dt.date:
    """Third Friday of a month: CME equity-index futures expiry day."""
    first_weekday, _ = calendar.monthrange(year, month)
    first_friday = 1 + (calendar.FRIDAY - first_weekday) % 7
    return dt.date(year, month, first_friday + 14)


@lru_cache(maxsize=4096)
def _expiry_ns(year: int, month: int, at: dt.time, tz: str) -> int:
    local = dt.datetime.combine(third_friday(year, month), at, tzinfo=ZoneInfo(tz))
    return int(pd.Timestamp(local).tz_convert("UTC").value)


def expiry_ns(contract: ContractRef, spec: RootSpec) -> int:
    """Last-trade time of ``contract`` in UTC nanoseconds (DST handled by the zone database)."""
    return _expiry_ns(contract.year, contract.month, spec.expiry_time, spec.expiry_timezone)


def roll_ns(contract: ContractRef, spec: RootSpec, days_before_expiry: int) -> int:
    """Time the active contract moves off ``contract``: expiry minus whole calendar days."""
    return expiry_ns(contract, spec) - days_before_expiry * _NS_PER_DAY


def _listed_months(spec: RootSpec) -> list[int]:
    return [MONTH_CODES.index(c) + 1 for c in spec.months]


def next_contract(contract: ContractRef, spec: RootSpec) -> ContractRef:
    """The next listed contract after ``contract``."""
    months = _listed_months(spec)
    later = [m for m in months if m > contract.month]
    if later:
        return ContractRef(contract.year, later[0], contract.root)
    return ContractRef(contract.year + 1, months[0], contract.root)


def previous_contract(contract: ContractRef, spec: RootSpec) -> ContractRef:
    """The listed contract before ``contract``."""
    months = _listed_months(spec)
    earlier = [m for m in months if m < contract.month]
    if earlier:
        return ContractRef(contract.year, earlier[-1], contract.root)
    return ContractRef(contract.year - 1, months[-1], contract.root)


def active_contract(root: str, ts_ns: int, markets: MarketsConfig) -> ContractRef:
    """The contract of ``root`` that is active at ``ts_ns``: a pure function of time and config."""
    spec = markets.root(root)
    days = markets.roll.days_before_expiry
    year = pd.Timestamp(ts_ns, tz="UTC").year
    contract = ContractRef(year - 1, _listed_months(spec)[0], root)
    while roll_ns(contract, spec, days) <= ts_ns:
        contract = next_contract(contract, spec)
    return contract


def contract_windows(root: str, start_ns: int, end_ns: int, markets: MarketsConfig) -> list[ContractWindow]:
    """Every contract of ``root`` active somewhere in ``[start_ns, end_ns]``, in order, with its window."""
    spec = markets.root(root)
    days = markets.roll.days_before_expiry
    contract = active_contract(root, start_ns, markets)
    windows: list[ContractWindow] = []
    while True:
        prev = previous_contract(contract, spec)
        begin = roll_ns(prev, spec, days)
        finish = roll_ns(contract, spec, days)
        windows.append(ContractWindow(contract, begin, finish))
        if finish > end_ns:
            return windows
        contract = next_contract(contract, spec)


def activation_ns(contract: ContractRef, spec: RootSpec) -> int:
    """Listing time: the expiry of the contract ``listing_quarters`` listed months earlier."""
    earlier = contract
    for _ in range(spec.listing_quarters):
        earlier = previous_contract(earlier, spec)
    return expiry_ns(earlier, spec)


def build_futures_contract(contract: ContractRef, markets: MarketsConfig) -> FuturesContract:
    """A nautilus FuturesContract with the product's real multiplier, tick, expiry, margins."""
    spec = markets.root(contract.root)
    listed = activation_ns(contract, spec)
    return FuturesContract(
        instrument_id=contract.instrument_id(markets.venue),
        raw_symbol=Symbol(contract.symbol),
        asset_class=AssetClass.INDEX,
        currency=USD if spec.currency == "USD" else EUR,
        price_precision=spec.price_precision,
        price_increment=Price(spec.tick_size, spec.price_precision),
        multiplier=Quantity.from_int(spec.multiplier),
        lot_size=Quantity.from_int(1),
        underlying=spec.underlying or contract.root,
        activation_ns=listed,
        expiration_ns=expiry_ns(contract, spec),
        ts_event=listed,
        ts_init=listed,
        margin_init=spec.margin_init,
        margin_maint=spec.margin_maint,
        maker_fee=Decimal(0),  # commissions are per contract: see mia_strategies.fees
        taker_fee=Decimal(0),
        exchange=spec.exchange,
    )


def root_of(instrument_id: InstrumentId | str, markets: MarketsConfig) -> str:
    """Root of an instrument id such as ``ESZ25.GLBX``."""
    return parse_contract_symbol(str(instrument_id), markets).root
