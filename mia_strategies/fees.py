"""Per-contract commissions that differ by product (ES $2.25, MNQ $0.62 per contract per fill).

nautilus's ``PerContractFeeModel`` charges one amount for every instrument; a venue trading ES and
MNQ together needs the amount looked up by the contract's root.
"""

from decimal import Decimal

from nautilus_trader.backtest.config import FeeModelConfig
from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order


class RootCommissionFeeModelConfig(FeeModelConfig, frozen=True):
    """Commission per contract by root (``{"ES": "2.25", "MNQ": "0.62"}``) in the instrument currency."""

    commissions: dict[str, str]


def contract_root(raw_symbol: str) -> str:
    """Root of a two-digit-year contract symbol (``MNQZ25`` → ``MNQ``)."""
    return raw_symbol[:-3]


class RootCommissionFeeModel(FeeModel):
    """Charge ``commission x filled contracts`` with the amount of the contract's root."""

    def __init__(self, config: RootCommissionFeeModelConfig) -> None:
        super().__init__()
        self._per_root = {root: Decimal(value) for root, value in config.commissions.items()}

    def get_commission(
        self,
        order: Order,
        fill_qty: Quantity,
        fill_px: Price,
        instrument: Instrument,
    ) -> Money:
        """Return the commission for one fill; unknown roots are an error, never a silent zero."""
        root = contract_root(instrument.raw_symbol.value)
        try:
            per_contract = self._per_root[root]
        except KeyError:
            raise ValueError(f"no commission configured for root {root!r} ({instrument.id})") from None
        return Money(per_contract * fill_qty.as_decimal(), instrument.quote_currency)
