"""Translation between nautilus orders/reports and DTC messages (enums, prices, report builders)."""

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import FillReport
from nautilus_trader.execution.reports import OrderStatusReport
from nautilus_trader.execution.reports import PositionStatusReport
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.enums import TriggerType
from nautilus_trader.model.enums import contingency_type_from_str
from nautilus_trader.model.identifiers import AccountId
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import OrderListId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.identifiers import VenueOrderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from adapters.sierrachart.codec import DtcMessage
from adapters.sierrachart.constants import BuySell
from adapters.sierrachart.constants import DtcOrderStatus
from adapters.sierrachart.constants import DtcOrderType
from adapters.sierrachart.constants import DtcTimeInForce
from adapters.sierrachart.providers import SymbolDefinition
from adapters.sierrachart.state import OrderRecord


#: nautilus order types Sierra Chart holds natively.
DTC_ORDER_TYPES: dict[OrderType, DtcOrderType] = {
    OrderType.MARKET: DtcOrderType.MARKET,
    OrderType.LIMIT: DtcOrderType.LIMIT,
    OrderType.STOP_MARKET: DtcOrderType.STOP,
    OrderType.STOP_LIMIT: DtcOrderType.STOP_LIMIT,
    OrderType.MARKET_IF_TOUCHED: DtcOrderType.MARKET_IF_TOUCHED,
}
NAUTILUS_ORDER_TYPES: dict[int, OrderType] = {int(v): k for k, v in DTC_ORDER_TYPES.items()}

DTC_TIME_IN_FORCE: dict[TimeInForce, DtcTimeInForce] = {
    TimeInForce.DAY: DtcTimeInForce.DAY,
    TimeInForce.GTC: DtcTimeInForce.GOOD_TILL_CANCELED,
    TimeInForce.GTD: DtcTimeInForce.GOOD_TILL_DATE_TIME,
    TimeInForce.IOC: DtcTimeInForce.IMMEDIATE_OR_CANCEL,
    TimeInForce.FOK: DtcTimeInForce.FILL_OR_KILL,
}
NAUTILUS_TIME_IN_FORCE: dict[int, TimeInForce] = {int(v): k for k, v in DTC_TIME_IN_FORCE.items()}


def dtc_side(side: OrderSide) -> BuySell:
    """Nautilus side → DTC ``BuySell``."""
    return BuySell.BUY if side == OrderSide.BUY else BuySell.SELL


def nautilus_side(value: int) -> OrderSide:
    """DTC ``BuySell`` → nautilus side (``NO_ORDER_SIDE`` when unset)."""
    if value == BuySell.BUY:
        return OrderSide.BUY
    if value == BuySell.SELL:
        return OrderSide.SELL
    return OrderSide.NO_ORDER_SIDE


def report_status(message: DtcMessage) -> OrderStatus:
    """A working DTC status as the nautilus status a report should carry."""
    status = message.integer("OrderStatus")
    filled = message.number("FilledQuantity") or 0.0
    if status == DtcOrderStatus.FILLED:
        return OrderStatus.FILLED
    if status == DtcOrderStatus.CANCELED:
        return OrderStatus.CANCELED
    if status == DtcOrderStatus.REJECTED:
        return OrderStatus.REJECTED
    if status == DtcOrderStatus.PENDING_CANCEL:
        return OrderStatus.PENDING_CANCEL
    if status == DtcOrderStatus.PENDING_CANCEL_REPLACE:
        return OrderStatus.PENDING_UPDATE
    if status == DtcOrderStatus.PARTIALLY_FILLED or filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.ACCEPTED


@dataclass(frozen=True)
class OrderTerms:
    """Quantity and prices of an order as the server states them (nautilus units)."""

    order_type: OrderType
    quantity: Quantity
    filled: Quantity
    price: Price | None
    trigger_price: Price | None
    avg_px: Decimal | None


def order_terms(
    message: DtcMessage, definition: SymbolDefinition, instrument: Instrument, fallback_type: OrderType
) -> OrderTerms:
    """Read an ORDER_UPDATE's type, quantities and prices (Price1/Price2 meaning depends on the type)."""
    order_type = NAUTILUS_ORDER_TYPES.get(message.integer("OrderType"), fallback_type)
    price1 = message.number("Price1")
    price2 = message.number("Price2")
    price = trigger = None
    if order_type == OrderType.LIMIT and price1 is not None:
        price = definition.to_price(price1)
    elif order_type in (OrderType.STOP_MARKET, OrderType.MARKET_IF_TOUCHED) and price1 is not None:
        trigger = definition.to_price(price1)
    elif order_type == OrderType.STOP_LIMIT:
        trigger = definition.to_price(price1) if price1 is not None else None
        price = definition.to_price(price2) if price2 is not None else None
    quantity = message.number("OrderQuantity") or 0.0
    filled = message.number("FilledQuantity") or 0.0
    avg = message.number("AverageFillPrice")
    return OrderTerms(
        order_type=order_type,
        quantity=instrument.make_qty(max(quantity, filled)),
        filled=instrument.make_qty(filled),
        price=price,
        trigger_price=trigger,
        avg_px=definition.to_avg_price(avg) if avg is not None and filled > 0 else None,
    )


def liquidity_side(order_type: OrderType) -> LiquiditySide:
    """DTC fills do not say; resting limit types are makers, market and stop types takers."""
    return LiquiditySide.MAKER if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else LiquiditySide.TAKER


def _contingency(record: OrderRecord | None) -> dict[str, object]:
    if record is None:
        return {}
    return {
        "order_list_id": OrderListId(record.order_list_id) if record.order_list_id else None,
        "linked_order_ids": [ClientOrderId(i) for i in record.linked_order_ids] or None,
        "parent_order_id": ClientOrderId(record.parent_order_id) if record.parent_order_id else None,
        "contingency_type": contingency_type_from_str(record.contingency_type),
    }


def open_order_report(
    message: DtcMessage,
    *,
    account_id: AccountId,
    definition: SymbolDefinition,
    instrument: Instrument,
    record: OrderRecord | None,
    ts_init: int,
) -> OrderStatusReport:
    """An OrderStatusReport of a working order from its OPEN_ORDERS restatement."""
    fallback = OrderType[record.order_type] if record is not None else OrderType.LIMIT
    terms = order_terms(message, definition, instrument, fallback)
    client_order_id = ClientOrderId(record.client_order_id) if record is not None else None
    if client_order_id is None and message.text("ClientOrderID"):
        client_order_id = ClientOrderId(message.text("ClientOrderID"))
    received = message.time_ns("OrderReceivedDateTime") or ts_init
    side = nautilus_side(message.integer("BuySell"))
    if side == OrderSide.NO_ORDER_SIDE and record is not None:
        side = OrderSide[record.order_side]
    tif = NAUTILUS_TIME_IN_FORCE.get(message.integer("TimeInForce"), TimeInForce.GTC)
    return OrderStatusReport(
        account_id=account_id,
        instrument_id=instrument.id,
        venue_order_id=VenueOrderId(message.text("ServerOrderID")),
        order_side=side,
        order_type=terms.order_type,
        time_in_force=tif,
        order_status=report_status(message),
        quantity=terms.quantity,
        filled_qty=terms.filled,
        report_id=UUID4(),
        ts_accepted=received,
        ts_last=message.time_ns("LatestTransactionDateTime") or ts_init,
        ts_init=ts_init,
        client_order_id=client_order_id,
        price=terms.price,
        trigger_price=terms.trigger_price,
        trigger_type=TriggerType.DEFAULT if terms.trigger_price is not None else TriggerType.NO_TRIGGER,
        avg_px=terms.avg_px,
        reduce_only=record.reduce_only if record is not None else False,
        **_contingency(record),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class FillSummary:
    """The executions of one order known from the fills history."""

    quantity: Decimal
    notional: Decimal
    first_ns: int
    last_ns: int

    @property
    def avg_px(self) -> Decimal:
        """Volume-weighted average fill price."""
        return self.notional / self.quantity if self.quantity else Decimal(0)


def closed_order_report(
    record: OrderRecord,
    summary: FillSummary,
    *,
    account_id: AccountId,
    instrument: Instrument,
    venue_order_id: VenueOrderId,
    ts_init: int,
) -> OrderStatusReport:
    """A report of an order that no longer works at the server, rebuilt from its fills and record."""
    quantity = Quantity.from_str(record.quantity)
    filled = instrument.make_qty(float(summary.quantity))
    status = OrderStatus.FILLED if filled >= quantity else OrderStatus.CANCELED
    if filled > quantity:
        quantity = filled
    return OrderStatusReport(
        account_id=account_id,
        instrument_id=instrument.id,
        venue_order_id=venue_order_id,
        order_side=OrderSide[record.order_side],
        order_type=OrderType[record.order_type],
        time_in_force=TimeInForce[record.time_in_force],
        order_status=status,
        quantity=quantity,
        filled_qty=filled,
        report_id=UUID4(),
        ts_accepted=min(record.ts_submitted or summary.first_ns, summary.first_ns),
        ts_last=summary.last_ns,
        ts_init=ts_init,
        client_order_id=ClientOrderId(record.client_order_id),
        price=Price.from_str(record.price) if record.price else None,
        trigger_price=Price.from_str(record.trigger_price) if record.trigger_price else None,
        trigger_type=TriggerType.DEFAULT if record.trigger_price else TriggerType.NO_TRIGGER,
        avg_px=summary.avg_px if summary.quantity else None,
        reduce_only=record.reduce_only,
        **_contingency(record),  # type: ignore[arg-type]
    )


def fill_report(
    message: DtcMessage,
    *,
    account_id: AccountId,
    definition: SymbolDefinition,
    instrument: Instrument,
    venue_order_id: VenueOrderId,
    client_order_id: ClientOrderId | None,
    commission: Money,
    order_type: OrderType,
    ts_init: int,
) -> FillReport:
    """A FillReport from one HISTORICAL_ORDER_FILL_RESPONSE."""
    return FillReport(
        account_id=account_id,
        instrument_id=instrument.id,
        venue_order_id=venue_order_id,
        trade_id=TradeId(message.text("UniqueExecutionID")),
        order_side=nautilus_side(message.integer("BuySell")),
        last_qty=instrument.make_qty(message.number("Quantity") or 0.0),
        last_px=definition.to_price(message.number("Price") or 0.0),
        commission=commission,
        liquidity_side=liquidity_side(order_type),
        report_id=UUID4(),
        ts_event=message.time_ns("DateTime") or ts_init,
        ts_init=ts_init,
        client_order_id=client_order_id,
    )


def position_report(
    message: DtcMessage | None,
    *,
    account_id: AccountId,
    definition: SymbolDefinition,
    instrument: Instrument,
    ts_init: int,
) -> PositionStatusReport:
    """A PositionStatusReport from a POSITION_UPDATE (``None`` reports the instrument flat)."""
    quantity = message.number("Quantity") or 0.0 if message is not None else 0.0
    average = message.number("AveragePrice") if message is not None else None
    side = PositionSide.FLAT if quantity == 0 else (PositionSide.LONG if quantity > 0 else PositionSide.SHORT)
    return PositionStatusReport(
        account_id=account_id,
        instrument_id=instrument.id,
        position_side=side,
        quantity=instrument.make_qty(abs(quantity)),
        report_id=UUID4(),
        ts_last=ts_init,
        ts_init=ts_init,
        avg_px_open=definition.to_avg_price(average) if average is not None and quantity != 0 else None,
    )


def contingency_of(name: str) -> ContingencyType:
    """A stored contingency name back to the enum."""
    return contingency_type_from_str(name)
