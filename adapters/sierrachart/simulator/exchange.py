"""The simulated Sierra Chart trade service: accounts, orders, matching, positions, balances, fills.

``SimExchange`` knows nothing about sockets. Requests come in as decoded JSON objects; answers to a
request are returned to the caller (the connection that asked), and everything Sierra Chart pushes
on its own (order updates, position and balance updates) goes to ``publish``, which the server
broadcasts to every logged-on connection. Matching follows the simulator spec of the protocol
reference: market data is an input (``quote``/``trade``), never a DTC feature, because Sierra Chart
does not serve CME data over DTC.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any

from adapters.sierrachart.simulator import protocol as p
from adapters.sierrachart.simulator.config import SimulatorConfig
from adapters.sierrachart.simulator.config import SymbolSpec


Message = dict[str, Any]
_EPS = 1e-9
_WORKING = frozenset(
    {
        p.STATUS_PENDING_OPEN,
        p.STATUS_PENDING_CHILD,
        p.STATUS_OPEN,
        p.STATUS_PENDING_CANCEL_REPLACE,
        p.STATUS_PENDING_CANCEL,
        p.STATUS_PARTIALLY_FILLED,
    },
)
_SUPPORTED_TYPES = frozenset(
    {
        p.ORDER_TYPE_MARKET,
        p.ORDER_TYPE_LIMIT,
        p.ORDER_TYPE_STOP,
        p.ORDER_TYPE_STOP_LIMIT,
        p.ORDER_TYPE_MARKET_IF_TOUCHED,
    },
)
_SUPPORTED_TIFS = frozenset({0, p.TIF_DAY, p.TIF_GTC, p.TIF_GTD, p.TIF_IOC, p.TIF_FOK})
TRADING_DISABLED_TEXT = "Trading is not allowed through the DTC server (Allow Trading is disabled)"


class SimRejected(Exception):
    """A request the server refuses; the message is the server's text."""


def _num(message: Message, key: str) -> float | None:
    value = message.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or abs(number) >= 1e300:
        return None
    return number


def _int(message: Message, key: str, default: int = 0) -> int:
    number = _num(message, key)
    return default if number is None else int(number)


def _str(message: Message, key: str) -> str:
    value = message.get(key)
    return "" if value is None else str(value).strip()


@dataclass
class Quote:
    """Top of book and last trade of one symbol (display prices)."""

    bid: float | None = None
    bid_size: float = 0.0
    ask: float | None = None
    ask_size: float = 0.0
    last: float | None = None
    last_size: float = 0.0
    ts_ns: int = 0


@dataclass
class SimOrder:
    """One order at the simulated server; prices are display prices."""

    server_order_id: str
    client_order_id: str
    account: str
    symbol: str
    side: int
    order_type: int
    tif: int
    gtd_s: int
    quantity: float
    price1: float | None
    price2: float | None
    received_s: int
    free_form_text: str = ""
    status: int = p.STATUS_OPEN
    filled: float = 0.0
    avg_fill: float = 0.0
    triggered: bool = False
    resting: bool = False
    is_parent: bool = False
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    requested_quantity: float = 0.0
    reduction: float = 0.0
    oco_link: str | None = None
    partial_fill_handling: int = p.PARTIAL_FILL_REDUCE_QUANTITY
    queue_ahead: float = 0.0
    previous_server_order_id: str | None = None
    last_fill_price: float | None = None
    last_fill_quantity: float = 0.0
    last_fill_ms: int = 0
    last_fill_exec_id: str = ""
    info_text: str = ""

    @property
    def remaining(self) -> float:
        """Quantity still to fill."""
        return max(0.0, self.quantity - self.filled)

    @property
    def working(self) -> bool:
        """Still working at the server (also while a child waits for its parent)."""
        return self.status in _WORKING

    @property
    def buy(self) -> bool:
        """A buy order."""
        return self.side == p.BUY


@dataclass(frozen=True)
class SimFill:
    """One execution, as the historical fills request reports it."""

    exec_id: str
    server_order_id: str
    account: str
    symbol: str
    side: int
    price: float
    quantity: float
    ts_ns: int
    open_close: int


@dataclass
class SimPosition:
    """Net position of one account in one symbol."""

    quantity: float = 0.0
    average_price: float = 0.0
    entry_ns: int = 0


@dataclass
class SimBalance:
    """Cash and daily P&L of one account."""

    cash: float
    daily_pnl: float = 0.0


class SimExchange:
    """Order state and matching of the simulated server (no I/O; see the module docstring)."""

    def __init__(
        self,
        config: SimulatorConfig,
        publish: Callable[[Message], None],
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self._publish = publish
        self._clock = clock
        self.orders: dict[str, SimOrder] = {}
        self.fills: list[SimFill] = []
        self.positions: dict[tuple[str, str], SimPosition] = {}
        self.balances: dict[str, SimBalance] = {a: SimBalance(config.starting_balance) for a in config.trade_accounts}
        self.market: dict[str, Quote] = {}
        self._used_client_ids: dict[str, set[str]] = {}
        self._next_order_id = config.first_server_order_id
        self._next_exec_id = 1

    # -- helpers -------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """The server clock (wall time unless a clock was injected)."""
        return self._clock()

    def _spec(self, symbol: str) -> SymbolSpec | None:
        return self.config.symbols.get(symbol)

    @staticmethod
    def _multiplier(spec: SymbolSpec) -> float:
        # DisplayPriceMultiplier is a float32 on the wire (0.01 arrives as 0.009999999776...):
        # 7 significant digits recover the value the service means.
        return float(f"{spec.display_price_multiplier:.7g}")

    def to_display(self, spec: SymbolSpec, wire: float) -> float:
        """A wire price (as sent by the client) in display units."""
        return wire * self._multiplier(spec)

    def to_wire(self, spec: SymbolSpec, display: float | None) -> float | None:
        """A display price in wire units (rounded to 8 decimals to hide float noise)."""
        if display is None:
            return None
        value = round(display / self._multiplier(spec), 8)
        return float(int(value)) if value.is_integer() else value

    @staticmethod
    def _on_tick(spec: SymbolSpec, price: float) -> bool:
        steps = price / spec.min_tick
        return abs(steps - round(steps)) < 1e-6

    @staticmethod
    def _snap(spec: SymbolSpec, price: float) -> float:
        return round(round(price / spec.min_tick) * spec.min_tick, 10)

    def _new_server_order_id(self) -> str:
        value = str(self._next_order_id)
        self._next_order_id += 1
        return value

    def _emit(self, message: Message) -> None:
        self._publish(message)

    def account_known(self, account: str) -> bool:
        """The account exists at this server."""
        return account in self.config.trade_accounts

    # -- messages ------------------------------------------------------------------------------

    def order_update(
        self, order: SimOrder, reason: int, *, request_id: int = 0, number: int = 1, total: int = 1
    ) -> Message:
        """The full ORDER_UPDATE snapshot of ``order`` (prices on the wire scale)."""
        spec = self.config.symbols[order.symbol]
        message: Message = {
            "Type": p.ORDER_UPDATE,
            "RequestID": request_id,
            "TotalNumMessages": total,
            "MessageNumber": number,
            "Symbol": order.symbol,
            "Exchange": "",
            "ServerOrderID": order.server_order_id,
            "ClientOrderID": order.client_order_id,
            "TradeAccount": order.account,
            "OrderStatus": order.status,
            "OrderUpdateReason": reason,
            "OrderType": order.order_type,
            "BuySell": order.side,
            "Price1": self.to_wire(spec, order.price1),
            "Price2": self.to_wire(spec, order.price2),
            "TimeInForce": order.tif,
            "OrderQuantity": order.quantity,
            "FilledQuantity": order.filled,
            "RemainingQuantity": order.remaining if order.working else 0.0,
            "OrderReceivedDateTime": order.received_s,
            "LatestTransactionDateTime": self.now_ns() / 1e9,
        }
        if order.tif == p.TIF_GTD:
            message["GoodTillDateTime"] = order.gtd_s
        if order.filled > 0:
            message["AverageFillPrice"] = self.to_wire(spec, order.avg_fill)
        if order.last_fill_exec_id:
            message["LastFillPrice"] = self.to_wire(spec, order.last_fill_price)
            message["LastFillQuantity"] = order.last_fill_quantity
            message["LastFillDateTime"] = order.last_fill_ms
            message["LastFillExecutionID"] = order.last_fill_exec_id
        if order.info_text:
            message["InfoText"] = order.info_text
        if order.parent_id:
            message["ParentServerOrderID"] = order.parent_id
        if order.oco_link:
            message["OCOLinkedOrderServerOrderID"] = order.oco_link
        if order.previous_server_order_id and reason == p.REASON_CANCEL_REPLACE_COMPLETE:
            message["PreviousServerOrderID"] = order.previous_server_order_id
        if order.free_form_text:
            message["FreeFormText"] = order.free_form_text
        return {k: v for k, v in message.items() if v is not None}

    def _reject_update(self, request: Message, client_order_id: str, text: str) -> Message:
        return {
            "Type": p.ORDER_UPDATE,
            "RequestID": 0,
            "TotalNumMessages": 1,
            "MessageNumber": 1,
            "Symbol": _str(request, "Symbol"),
            "Exchange": _str(request, "Exchange"),
            "ClientOrderID": client_order_id,
            "TradeAccount": _str(request, "TradeAccount"),
            "OrderStatus": p.STATUS_REJECTED,
            "OrderUpdateReason": p.REASON_NEW_ORDER_REJECTED,
            "InfoText": text,
        }

    def position_update(
        self,
        account: str,
        symbol: str,
        *,
        request_id: int = 0,
        number: int = 1,
        total: int = 1,
    ) -> Message:
        """POSITION_UPDATE of one account/symbol; unsolicited when ``request_id`` is 0."""
        spec = self.config.symbols[symbol]
        position = self.positions.get((account, symbol), SimPosition())
        return {
            "Type": p.POSITION_UPDATE,
            "RequestID": request_id,
            "TotalNumberMessages": total,
            "MessageNumber": number,
            "Symbol": symbol,
            "Exchange": "",
            "TradeAccount": account,
            "Quantity": position.quantity,
            "AveragePrice": self.to_wire(spec, position.average_price) if position.quantity else 0.0,
            "OpenProfitLoss": self._open_pnl(account, symbol),
            "MarginRequirement": abs(position.quantity) * spec.margin_per_contract,
            "EntryDateTime": position.entry_ns // 1_000_000_000 if position.quantity else 0,
            "NoPositions": 0,
            "Unsolicited": 1 if request_id == 0 else 0,
        }

    def balance_update(self, account: str, *, request_id: int = 0, number: int = 1, total: int = 1) -> Message:
        """ACCOUNT_BALANCE_UPDATE of one account; unsolicited when ``request_id`` is 0."""
        balance = self.balances[account]
        margin = sum(
            abs(pos.quantity) * self.config.symbols[sym].margin_per_contract
            for (acct, sym), pos in self.positions.items()
            if acct == account
        )
        open_pnl = sum(self._open_pnl(acct, sym) for (acct, sym) in self.positions if acct == account)
        disabled = account in self.config.disabled_accounts
        return {
            "Type": p.ACCOUNT_BALANCE_UPDATE,
            "RequestID": request_id,
            "TotalNumberMessages": total,
            "MessageNumber": number,
            "TradeAccount": account,
            "CashBalance": round(balance.cash, 2),
            "BalanceAvailableForNewPositions": round(balance.cash + open_pnl - margin, 2),
            "AccountCurrency": self.config.account_currency,
            "SecuritiesValue": round(balance.cash + open_pnl, 2),
            "MarginRequirement": round(margin, 2),
            "OpenPositionsProfitLoss": round(open_pnl, 2),
            "DailyProfitLoss": round(balance.daily_pnl, 2),
            "NoAccountBalances": 0,
            "Unsolicited": 1 if request_id == 0 else 0,
            "TradingIsDisabled": 1 if disabled else 0,
        }

    def _open_pnl(self, account: str, symbol: str) -> float:
        position = self.positions.get((account, symbol))
        quote = self.market.get(symbol)
        if position is None or not position.quantity or quote is None:
            return 0.0
        mark = quote.bid if position.quantity > 0 else quote.ask
        if mark is None:
            mark = quote.last
        if mark is None:
            return 0.0
        spec = self.config.symbols[symbol]
        return round((mark - position.average_price) * position.quantity * spec.point_value, 2)

    # -- requests (answers go to the asking connection) ----------------------------------------

    def trade_accounts(self, request: Message) -> list[Message]:
        """TRADE_ACCOUNTS_REQUEST → one TRADE_ACCOUNT_RESPONSE per account."""
        request_id = _int(request, "RequestID")
        accounts = list(self.config.trade_accounts)
        if not accounts:
            return [
                {
                    "Type": p.TRADE_ACCOUNT_RESPONSE,
                    "RequestID": request_id,
                    "TotalNumberMessages": 1,
                    "MessageNumber": 1,
                    "TradeAccount": "",
                },
            ]
        return [
            {
                "Type": p.TRADE_ACCOUNT_RESPONSE,
                "RequestID": request_id,
                "TotalNumberMessages": len(accounts),
                "MessageNumber": n,
                "TradeAccount": account,
                "TradingIsDisabled": 1 if account in self.config.disabled_accounts else 0,
            }
            for n, account in enumerate(accounts, start=1)
        ]

    def security_definition(self, request: Message, request_id: int | None = None) -> list[Message]:
        """SECURITY_DEFINITION_FOR_SYMBOL_REQUEST → 507, or 509 for a symbol this service lacks."""
        if request_id is None:
            request_id = _int(request, "RequestID")
        symbol = _str(request, "Symbol")
        spec = self._spec(symbol)
        if spec is None:
            return [
                {
                    "Type": p.SECURITY_DEFINITION_REJECT,
                    "RequestID": request_id,
                    "RejectText": f"Symbol not found: {symbol}",
                }
            ]
        return [self.security_definition_message(spec, request_id)]

    def security_definition_message(self, spec: SymbolSpec, request_id: int) -> Message:
        """The SECURITY_DEFINITION_RESPONSE of one symbol."""
        return {
            "Type": p.SECURITY_DEFINITION_RESPONSE,
            "RequestID": request_id,
            "Symbol": spec.symbol,
            "Exchange": "",
            "SecurityType": 1,
            "Description": spec.description,
            "MinPriceIncrement": spec.min_tick,
            "PriceDisplayFormat": max(0, -int(Decimal(str(spec.min_tick)).normalize().as_tuple().exponent)),
            "CurrencyValuePerIncrement": spec.tick_value,
            "IsFinalMessage": 1,
            "UnderlyingSymbol": spec.underlying,
            "DisplayPriceMultiplier": spec.display_price_multiplier,
            "Currency": spec.currency,
            "SecurityExpirationDate": spec.expiration_s,
            "HasMarketDepthData": 1,
        }

    def account_balances(self, request: Message) -> list[Message]:
        """ACCOUNT_BALANCE_REQUEST → 600 per account, or 602 for an unknown account."""
        request_id = _int(request, "RequestID")
        account = _str(request, "TradeAccount")
        if account and not self.account_known(account):
            return [{"Type": p.ACCOUNT_BALANCE_REJECT, "RequestID": request_id, "RejectText": "Unknown trade account"}]
        accounts = [account] if account else list(self.config.trade_accounts)
        if not accounts:
            return [
                {
                    "Type": p.ACCOUNT_BALANCE_UPDATE,
                    "RequestID": request_id,
                    "TotalNumberMessages": 1,
                    "MessageNumber": 1,
                    "NoAccountBalances": 1,
                    "Unsolicited": 0,
                }
            ]
        return [
            self.balance_update(a, request_id=request_id, number=n, total=len(accounts))
            for n, a in enumerate(accounts, start=1)
        ]

    def current_positions(self, request: Message) -> list[Message]:
        """CURRENT_POSITIONS_REQUEST → 306 per open position, one ``NoPositions=1`` when flat, or 307."""
        request_id = _int(request, "RequestID")
        account = _str(request, "TradeAccount")
        if account and not self.account_known(account):
            return [
                {"Type": p.CURRENT_POSITIONS_REJECT, "RequestID": request_id, "RejectText": "Unknown trade account"}
            ]
        keys = [k for k, pos in self.positions.items() if pos.quantity and (not account or k[0] == account)]
        if not keys:
            return [
                {
                    "Type": p.POSITION_UPDATE,
                    "RequestID": request_id,
                    "TotalNumberMessages": 1,
                    "MessageNumber": 1,
                    "NoPositions": 1,
                    "Unsolicited": 0,
                },
            ]
        return [
            self.position_update(a, s, request_id=request_id, number=n, total=len(keys))
            for n, (a, s) in enumerate(sorted(keys), start=1)
        ]

    def open_orders(self, request: Message) -> list[Message]:
        """OPEN_ORDERS_REQUEST → one restatement (reason 1) per working order, or ``NoOrders=1``, or 302."""
        request_id = _int(request, "RequestID")
        account = _str(request, "TradeAccount")
        if account and not self.account_known(account):
            return [{"Type": p.OPEN_ORDERS_REJECT, "RequestID": request_id, "RejectText": "Unknown trade account"}]
        server_order_id = _str(request, "ServerOrderID")
        all_orders = _int(request, "RequestAllOrders", 1) != 0 or not server_order_id
        orders = [
            o
            for o in self.orders.values()
            if o.working
            and (not account or o.account == account)
            and (all_orders or o.server_order_id == server_order_id)
        ]
        if not orders:
            return [
                {
                    "Type": p.ORDER_UPDATE,
                    "RequestID": request_id,
                    "TotalNumMessages": 1,
                    "MessageNumber": 1,
                    "OrderUpdateReason": p.REASON_OPEN_ORDERS_RESPONSE,
                    "NoOrders": 1,
                },
            ]
        orders.sort(key=lambda o: int(o.server_order_id))
        return [
            self.order_update(o, p.REASON_OPEN_ORDERS_RESPONSE, request_id=request_id, number=n, total=len(orders))
            for n, o in enumerate(orders, start=1)
        ]

    def historical_fills(self, request: Message) -> list[Message]:
        """HISTORICAL_ORDER_FILLS_REQUEST → 304 per fill since the start, ``NoOrderFills=1``, or 308."""
        request_id = _int(request, "RequestID")
        account = _str(request, "TradeAccount")
        if account and not self.account_known(account):
            return [
                {
                    "Type": p.HISTORICAL_ORDER_FILLS_REJECT,
                    "RequestID": request_id,
                    "RejectText": "Unknown trade account",
                }
            ]
        days = _int(request, "NumberOfDays")
        start = _num(request, "StartDateTime") or 0.0
        if days <= 0 and start <= 0:
            return [
                {
                    "Type": p.HISTORICAL_ORDER_FILLS_REJECT,
                    "RequestID": request_id,
                    "RejectText": "NumberOfDays or StartDateTime required",
                }
            ]
        if start > 0:
            start_ns = int(start * 1_000) if start >= p.MICROSECOND_START_THRESHOLD else int(start * 1_000_000_000)
        else:
            start_ns = self.now_ns() - days * 86_400 * 1_000_000_000
        server_order_id = _str(request, "ServerOrderID")
        fills = [
            f
            for f in self.fills
            if f.ts_ns >= start_ns
            and (not account or f.account == account)
            and (not server_order_id or f.server_order_id == server_order_id)
        ]
        if not fills:
            return [
                {
                    "Type": p.HISTORICAL_ORDER_FILL_RESPONSE,
                    "RequestID": request_id,
                    "TotalNumberMessages": 1,
                    "MessageNumber": 1,
                    "NoOrderFills": 1,
                }
            ]
        return [self._fill_message(f, request_id, n, len(fills)) for n, f in enumerate(fills, start=1)]

    def _fill_message(self, fill: SimFill, request_id: int, number: int, total: int) -> Message:
        spec = self.config.symbols[fill.symbol]
        return {
            "Type": p.HISTORICAL_ORDER_FILL_RESPONSE,
            "RequestID": request_id,
            "TotalNumberMessages": total,
            "MessageNumber": number,
            "Symbol": fill.symbol,
            "Exchange": "",
            "ServerOrderID": fill.server_order_id,
            "BuySell": fill.side,
            "Price": self.to_wire(spec, fill.price),
            "DateTime": fill.ts_ns // 1_000_000_000,
            "Quantity": fill.quantity,
            "UniqueExecutionID": fill.exec_id,
            "TradeAccount": fill.account,
            "OpenClose": fill.open_close,
            "NoOrderFills": 0,
        }

    # -- order entry (updates are published to every connection) -------------------------------

    def _trading_refused(self) -> bool:
        return not self.config.allow_trading

    def submit_single(self, request: Message) -> None:
        """SUBMIT_NEW_SINGLE_ORDER: validate, accept, match on arrival."""
        client_order_id = _str(request, "ClientOrderID")
        if self._trading_refused() and self.config.trading_disabled_behavior == "ignore":
            return
        try:
            order = self._new_order(request, client_order_id, suffix="")
        except SimRejected as exc:
            self._emit(self._reject_update(request, client_order_id, str(exc)))
            return
        order.is_parent = _int(request, "IsParentOrder") == 1
        self._accept(order)

    def submit_oco(self, request: Message) -> None:
        """SUBMIT_NEW_OCO_ORDER: two linked legs, optionally children of a bracket parent."""
        ids = (_str(request, "ClientOrderID_1"), _str(request, "ClientOrderID_2"))
        if self._trading_refused() and self.config.trading_disabled_behavior == "ignore":
            return
        legs: list[SimOrder] = []
        try:
            if not self.config.oco_supported:
                raise SimRejected("OCO orders are not supported")
            parent = self._bracket_parent(request)
            for n, client_order_id in enumerate(ids, start=1):
                legs.append(self._new_order(request, client_order_id, suffix=f"_{n}", pending=legs))
        except SimRejected as exc:
            for n, client_order_id in enumerate(ids, start=1):
                leg_request = {**request, "Symbol": _str(request, f"Symbol_{n}") or _str(request, "Symbol")}
                self._emit(self._reject_update(leg_request, client_order_id, str(exc)))
            return
        first, second = legs
        first.oco_link, second.oco_link = second.server_order_id, first.server_order_id
        handling = _int(request, "PartialFillHandling", p.PARTIAL_FILL_REDUCE_QUANTITY)
        for leg in legs:
            leg.partial_fill_handling = handling or p.PARTIAL_FILL_REDUCE_QUANTITY
        if parent is not None:
            for leg in legs:
                leg.parent_id = parent.server_order_id
                leg.requested_quantity = leg.quantity
                parent.children.append(leg.server_order_id)
                leg.status = p.STATUS_PENDING_CHILD
        for leg in legs:
            self.orders[leg.server_order_id] = leg
            self._used_client_ids.setdefault(leg.account, set()).add(leg.client_order_id)
        for leg in legs:
            if parent is not None and parent.filled <= _EPS:
                self._emit(self.order_update(leg, p.REASON_NEW_ORDER_ACCEPTED))
            else:
                if parent is not None:
                    self._activate_child(parent, leg, announce=False)
                self._accept(leg, already_stored=True)

    def _bracket_parent(self, request: Message) -> SimOrder | None:
        parent_client_id = _str(request, "ParentTriggerClientOrderID")
        if not parent_client_id:
            return None
        if not self.config.bracket_supported:
            raise SimRejected("Bracket orders are not supported")
        account = _str(request, "TradeAccount")
        for order in self.orders.values():
            if order.client_order_id == parent_client_id and order.account == account:
                if not order.working and order.filled <= _EPS:
                    raise SimRejected(f"Parent order {parent_client_id} is not working")
                return order
        raise SimRejected(f"Parent order not found: {parent_client_id}")

    def _new_order(
        self, request: Message, client_order_id: str, suffix: str, pending: list[SimOrder] | None = None
    ) -> SimOrder:
        """Validate in the order of the spec's reject table; the first failure wins."""
        account = _str(request, "TradeAccount")
        symbol = _str(request, f"Symbol{suffix}") or _str(request, "Symbol")
        if self._trading_refused():
            raise SimRejected(TRADING_DISABLED_TEXT)
        if not self.account_known(account):
            raise SimRejected(f"Unknown trade account: {account}")
        if account in self.config.disabled_accounts:
            raise SimRejected(f"Trading is disabled for trade account {account}")
        used = self._used_client_ids.get(account, set())
        pending_ids = {o.client_order_id for o in pending or []}
        if not client_order_id or client_order_id in used or client_order_id in pending_ids:
            raise SimRejected("Duplicate ClientOrderID")
        spec = self._spec(symbol)
        if spec is None:
            raise SimRejected(f"Symbol not found: {symbol}")
        quantity = _num(request, f"Quantity{suffix}")
        if (
            quantity is None
            or quantity <= 0
            or not float(quantity).is_integer()
            or quantity > self.config.max_order_quantity
        ):
            raise SimRejected("Invalid order quantity")
        order_type = _int(request, f"OrderType{suffix}")
        tif = _int(request, "TimeInForce")
        if order_type not in _SUPPORTED_TYPES or tif not in _SUPPORTED_TIFS:
            raise SimRejected("Unsupported order type / time in force")
        price1_wire = _num(request, f"Price1{suffix}")
        price2_wire = _num(request, f"Price2{suffix}")
        needs_price1 = order_type != p.ORDER_TYPE_MARKET
        gtd = _int(request, "GoodTillDateTime")
        if (needs_price1 and price1_wire is None) or (order_type == p.ORDER_TYPE_STOP_LIMIT and price2_wire is None):
            raise SimRejected("Missing price")
        if tif == p.TIF_GTD and gtd <= 0:
            raise SimRejected("Missing price")  # GTD without a GoodTillDateTime (spec row 7)
        price1 = self.to_display(spec, price1_wire) if needs_price1 and price1_wire is not None else None
        price2 = (
            self.to_display(spec, price2_wire)
            if order_type == p.ORDER_TYPE_STOP_LIMIT and price2_wire is not None
            else None
        )
        for price in (price1, price2):
            if price is not None and not self._on_tick(spec, price) and self.config.reject_tick_misaligned:
                raise SimRejected("Price not a multiple of tick size")
        price1 = self._snap(spec, price1) if price1 is not None else None
        price2 = self._snap(spec, price2) if price2 is not None else None
        side = _int(request, f"BuySell{suffix}")
        if side not in (p.BUY, p.SELL):
            raise SimRejected("Unsupported order type / time in force")
        quote = self.market.get(symbol)
        if self.config.reject_stop_through_market and order_type in (p.ORDER_TYPE_STOP, p.ORDER_TYPE_STOP_LIMIT):
            assert price1 is not None
            if quote is not None and (
                (side == p.BUY and quote.ask is not None and price1 <= quote.ask)
                or (side == p.SELL and quote.bid is not None and price1 >= quote.bid)
            ):
                raise SimRejected("Stop price is on wrong side of market")
        if (
            order_type == p.ORDER_TYPE_MARKET
            and self.config.market_order_without_quote == "reject"
            and (quote is None or (quote.ask if side == p.BUY else quote.bid) is None)
        ):
            raise SimRejected("No market data for symbol")
        order = SimOrder(
            server_order_id=self._new_server_order_id(),
            client_order_id=client_order_id,
            account=account,
            symbol=symbol,
            side=side,
            order_type=order_type,
            tif=tif or p.TIF_DAY,
            gtd_s=gtd,
            quantity=float(quantity),
            price1=price1,
            price2=price2,
            received_s=self.now_ns() // 1_000_000_000,
            free_form_text=_str(request, "FreeFormText"),
        )
        order.requested_quantity = order.quantity
        return order

    def _accept(self, order: SimOrder, *, already_stored: bool = False) -> None:
        if not already_stored:
            self.orders[order.server_order_id] = order
            self._used_client_ids.setdefault(order.account, set()).add(order.client_order_id)
        quote = self.market.get(order.symbol)
        if quote is not None and order.order_type == p.ORDER_TYPE_LIMIT:
            order.queue_ahead = quote.bid_size if order.buy else quote.ask_size
        if self.config.emit_pending_open:
            order.status = p.STATUS_PENDING_OPEN
            self._emit(self.order_update(order, p.REASON_GENERAL_UPDATE))
        order.status = p.STATUS_OPEN
        accepted = self.order_update(order, p.REASON_NEW_ORDER_ACCEPTED)
        if self.config.fill_before_ack:
            self.config.fill_before_ack = False
            self._arrive(order)
            self._emit(accepted)
            return
        self._emit(accepted)
        self._arrive(order)

    def _arrive(self, order: SimOrder) -> None:
        """Match on arrival, then apply IOC/FOK."""
        if order.tif == p.TIF_FOK and self._available(order) + _EPS < order.remaining:
            order.info_text = "FOK not filled"
            self._cancel(order, p.REASON_CANCELED)
            return
        self._match(order, None)
        order.resting = True
        if order.tif in (p.TIF_IOC, p.TIF_FOK) and order.working:
            order.info_text = "IOC remainder canceled" if order.tif == p.TIF_IOC else "FOK not filled"
            self._cancel(order, p.REASON_CANCELED)

    def _available(self, order: SimOrder) -> float:
        """Quantity that would fill right now (for FOK)."""
        quote = self.market.get(order.symbol)
        if quote is None:
            return 0.0
        touch = quote.ask if order.buy else quote.bid
        size = quote.ask_size if order.buy else quote.bid_size
        if touch is None:
            return 0.0
        marketable = order.order_type == p.ORDER_TYPE_MARKET or (
            order.order_type == p.ORDER_TYPE_LIMIT
            and order.price1 is not None
            and (touch <= order.price1 if order.buy else touch >= order.price1)
        )
        if not marketable:
            return 0.0
        return size if self.config.depth_limited_fills else math.inf

    def cancel(self, request: Message) -> None:
        """CANCEL_ORDER by ServerOrderID (ClientOrderID must match when given)."""
        if self._trading_refused() and self.config.trading_disabled_behavior == "ignore":
            return
        server_order_id = _str(request, "ServerOrderID")
        client_order_id = _str(request, "ClientOrderID")
        order = self.orders.get(server_order_id)
        if order is None or self._trading_refused():
            text = TRADING_DISABLED_TEXT if self._trading_refused() else f"Unknown ServerOrderID {server_order_id}"
            self._emit(
                {
                    "Type": p.ORDER_UPDATE,
                    "RequestID": 0,
                    "TotalNumMessages": 1,
                    "MessageNumber": 1,
                    "ClientOrderID": client_order_id,
                    "TradeAccount": _str(request, "TradeAccount"),
                    "OrderStatus": p.STATUS_REJECTED,
                    "OrderUpdateReason": p.REASON_CANCEL_REJECTED,
                    "InfoText": text,
                },
            )
            return
        problem = self._terminal_text(order) or (
            "ClientOrderID does not match" if client_order_id and client_order_id != order.client_order_id else ""
        )
        if problem:
            self._emit({**self.order_update(order, p.REASON_CANCEL_REJECTED), "InfoText": problem})
            return
        if self.config.emit_pending_cancel:
            status = order.status
            order.status = p.STATUS_PENDING_CANCEL
            self._emit(self.order_update(order, p.REASON_GENERAL_UPDATE))
            order.status = status
        self._cancel(order, p.REASON_CANCELED)

    @staticmethod
    def _terminal_text(order: SimOrder) -> str:
        if order.status == p.STATUS_FILLED:
            return "Order already filled"
        if order.status == p.STATUS_CANCELED:
            return "Order already canceled"
        if order.status == p.STATUS_REJECTED:
            return "Order was rejected"
        return ""

    def _cancel(self, order: SimOrder, reason: int, *, cascade: bool = True) -> None:
        """Cancel a working order and what hangs on it (OCO sibling, children of an unfilled parent)."""
        if not order.working:
            return
        order.status = p.STATUS_CANCELED
        self._emit(self.order_update(order, reason))
        order.info_text = ""
        if not cascade:
            return
        if order.oco_link:
            sibling = self.orders.get(order.oco_link)
            if sibling is not None and sibling.working:
                self._cancel(sibling, p.REASON_CANCELED, cascade=False)
        if order.filled <= _EPS:
            for child_id in order.children:
                child = self.orders.get(child_id)
                if child is not None and child.working:
                    self._cancel(child, p.REASON_CANCELED, cascade=False)

    def cancel_replace(self, request: Message) -> None:
        """CANCEL_REPLACE_ORDER: new total quantity and/or prices; Sierra's stop-limit rule applies."""
        if self._trading_refused() and self.config.trading_disabled_behavior == "ignore":
            return
        server_order_id = _str(request, "ServerOrderID")
        client_order_id = _str(request, "ClientOrderID")
        order = self.orders.get(server_order_id)
        if order is None or self._trading_refused():
            text = TRADING_DISABLED_TEXT if self._trading_refused() else f"Unknown ServerOrderID {server_order_id}"
            self._emit(
                {
                    "Type": p.ORDER_UPDATE,
                    "RequestID": 0,
                    "TotalNumMessages": 1,
                    "MessageNumber": 1,
                    "ClientOrderID": client_order_id,
                    "TradeAccount": _str(request, "TradeAccount"),
                    "OrderStatus": p.STATUS_REJECTED,
                    "OrderUpdateReason": p.REASON_CANCEL_REPLACE_REJECTED,
                    "InfoText": text,
                },
            )
            return
        try:
            quantity, price1, price2 = self._replace_terms(order, request, client_order_id)
        except SimRejected as exc:
            self._emit({**self.order_update(order, p.REASON_CANCEL_REPLACE_REJECTED), "InfoText": str(exc)})
            return
        if self.config.emit_pending_replace:
            status = order.status
            order.status = p.STATUS_PENDING_CANCEL_REPLACE
            self._emit(self.order_update(order, p.REASON_GENERAL_UPDATE))
            order.status = status
        order.quantity, order.price1, order.price2 = quantity, price1, price2
        if order.parent_id:
            order.requested_quantity = quantity + order.reduction
        if self.config.replace_changes_server_order_id:
            self._renumber(order)
        if order.status != p.STATUS_PENDING_CHILD:
            order.status = p.STATUS_PARTIALLY_FILLED if order.filled > _EPS else p.STATUS_OPEN
        self._emit(self.order_update(order, p.REASON_CANCEL_REPLACE_COMPLETE))
        order.previous_server_order_id = None
        if order.status != p.STATUS_PENDING_CHILD:
            order.resting = False
            self._match(order, None)
            order.resting = True

    def _replace_terms(
        self, order: SimOrder, request: Message, client_order_id: str
    ) -> tuple[float, float | None, float | None]:
        problem = self._terminal_text(order)
        if problem:
            raise SimRejected(problem)
        if client_order_id and client_order_id != order.client_order_id:
            raise SimRejected("ClientOrderID does not match")
        spec = self.config.symbols[order.symbol]
        quantity = _num(request, "Quantity") or 0.0
        if quantity == 0:
            quantity = order.quantity
        if (
            quantity <= order.filled + _EPS
            or not float(quantity).is_integer()
            or quantity > self.config.max_order_quantity
        ):
            raise SimRejected("Invalid order quantity")
        tif = _int(request, "TimeInForce")
        if tif and tif != order.tif and not self.config.allow_tif_change:
            raise SimRejected("Time in force cannot be changed")
        price1, price2 = order.price1, order.price2
        new1 = _num(request, "Price1") if _int(request, "Price1IsSet", 1) else None
        new2 = _num(request, "Price2") if _int(request, "Price2IsSet", 1) else None
        if order.order_type == p.ORDER_TYPE_MARKET:
            new1 = new2 = None
        if new1 is not None:
            new1 = self.to_display(spec, new1)
            if not self._on_tick(spec, new1) and self.config.reject_tick_misaligned:
                raise SimRejected("Price not a multiple of tick size")
            new1 = self._snap(spec, new1)
        if order.order_type == p.ORDER_TYPE_STOP_LIMIT:
            if new1 is not None and price1 is not None and price2 is not None:
                price2 = self._snap(spec, price2 + (new1 - price1))  # Sierra keeps the stop-limit offset
        elif new2 is not None and order.price2 is not None:
            new2 = self.to_display(spec, new2)
            if not self._on_tick(spec, new2) and self.config.reject_tick_misaligned:
                raise SimRejected("Price not a multiple of tick size")
            price2 = self._snap(spec, new2)
        if new1 is not None:
            price1 = new1
        return float(quantity), price1, price2

    def _renumber(self, order: SimOrder) -> None:
        old = order.server_order_id
        new = self._new_server_order_id()
        del self.orders[old]
        order.server_order_id = new
        order.previous_server_order_id = old
        self.orders[new] = order
        for other in self.orders.values():
            if other.oco_link == old:
                other.oco_link = new
            if other.parent_id == old:
                other.parent_id = new
            other.children = [new if c == old else c for c in other.children]

    # -- market data and matching --------------------------------------------------------------

    def quote(
        self,
        symbol: str,
        bid: float | None,
        bid_size: float,
        ask: float | None,
        ask_size: float,
        ts_ns: int | None = None,
    ) -> None:
        """A top-of-book update (display prices); matches every working order of the symbol."""
        book = self.market.setdefault(symbol, Quote())
        book.bid, book.bid_size, book.ask, book.ask_size = bid, bid_size, ask, ask_size
        book.ts_ns = ts_ns or self.now_ns()
        self._expire_gtd()
        self._match_symbol(symbol, None)

    def trade(self, symbol: str, price: float, size: float, ts_ns: int | None = None) -> None:
        """A trade print (display price); stops, MIT and resting limits react to it."""
        book = self.market.setdefault(symbol, Quote())
        book.last, book.last_size = price, size
        book.ts_ns = ts_ns or self.now_ns()
        self._expire_gtd()
        self._match_symbol(symbol, (price, size))

    def _match_symbol(self, symbol: str, trade: tuple[float, float] | None) -> None:
        candidates = sorted(
            (
                o
                for o in self.orders.values()
                if o.symbol == symbol and o.working and o.status != p.STATUS_PENDING_CHILD
            ),
            key=lambda o: int(o.server_order_id),
        )
        for order in candidates:
            if order.working and order.status != p.STATUS_PENDING_CHILD:
                self._match(order, trade)

    def _stop_triggered(self, order: SimOrder, trade: tuple[float, float] | None) -> bool:
        stop = order.price1
        book = self.market.get(order.symbol)
        if stop is None or book is None:
            return False
        if self.config.stop_trigger == "trade":
            reference = book.last if book.last is not None else (book.ask if order.buy else book.bid)
        else:
            reference = book.ask if order.buy else book.bid
        if reference is None:
            return False
        return reference >= stop if order.buy else reference <= stop

    def _touched(self, order: SimOrder) -> bool:
        book = self.market.get(order.symbol)
        price = order.price1
        if book is None or price is None:
            return False
        reference = book.last if book.last is not None else (book.ask if order.buy else book.bid)
        if reference is None:
            return False
        return reference <= price if order.buy else reference >= price

    def _match(self, order: SimOrder, trade: tuple[float, float] | None) -> None:
        """Fill what the market allows now (see the spec's matching table)."""
        if order.order_type in (p.ORDER_TYPE_STOP, p.ORDER_TYPE_STOP_LIMIT) and not order.triggered:
            if not self._stop_triggered(order, trade):
                return
            order.triggered = True
            order.resting = False  # the triggered part arrives at the market now, against the quote
            trade = None
        if order.order_type == p.ORDER_TYPE_MARKET_IF_TOUCHED and not order.triggered:
            if not self._touched(order):
                return
            order.triggered = True
        if order.order_type in (p.ORDER_TYPE_MARKET, p.ORDER_TYPE_STOP, p.ORDER_TYPE_MARKET_IF_TOUCHED):
            self._fill_at_market(order)
            return
        limit = order.price2 if order.order_type == p.ORDER_TYPE_STOP_LIMIT else order.price1
        if limit is not None:
            self._fill_limit(order, limit, trade)
        order.resting = True

    def _fill_at_market(self, order: SimOrder) -> None:
        book = self.market.get(order.symbol)
        if book is None:
            return
        touch = book.ask if order.buy else book.bid
        size = book.ask_size if order.buy else book.bid_size
        if touch is None:
            return
        spec = self.config.symbols[order.symbol]
        slip = self.config.slippage_ticks * spec.min_tick
        price = touch + slip if order.buy else touch - slip
        quantity = min(order.remaining, size) if self.config.depth_limited_fills else order.remaining
        if quantity > _EPS:
            self._fill(order, quantity, price)

    def _fill_limit(self, order: SimOrder, limit: float, trade: tuple[float, float] | None) -> None:
        book = self.market.get(order.symbol)
        if book is None:
            return
        if trade is not None:
            price, size = trade
            through = price < limit if order.buy else price > limit
            at = abs(price - limit) < _EPS
            quantity = min(order.remaining, size) if self.config.depth_limited_fills else order.remaining
            if at and self.config.queue_model == "queue":
                order.queue_ahead -= size
                if order.queue_ahead >= 0:
                    return
                quantity = (
                    min(order.remaining, -order.queue_ahead) if self.config.depth_limited_fills else order.remaining
                )
                order.queue_ahead = 0.0
            elif not (through or (at and self.config.queue_model == "touch")):
                return
            if quantity > _EPS:
                self._fill(order, quantity, limit)
            return
        touch = book.ask if order.buy else book.bid
        size = book.ask_size if order.buy else book.bid_size
        if touch is None or not (touch <= limit + _EPS if order.buy else touch >= limit - _EPS):
            return
        at_market = not order.resting or self.config.limit_fill_price == "market"
        price = touch if at_market else limit
        quantity = min(order.remaining, size) if self.config.depth_limited_fills else order.remaining
        if quantity > _EPS:
            self._fill(order, quantity, price)

    def fill(self, server_order_id: str, quantity: float, price: float) -> None:
        """Force a fill without market data (terse tests)."""
        order = self.orders[server_order_id]
        if not order.working or order.status == p.STATUS_PENDING_CHILD:
            raise ValueError(f"order {server_order_id} is not working")
        self._fill(order, min(quantity, order.remaining), price)

    def _fill(self, order: SimOrder, quantity: float, price: float) -> None:
        """Book one execution: order, fills, position, balance; publish 301, 306, then 600."""
        now = self.now_ns()
        quantity = float(quantity)
        exec_id = f"{self.config.exec_id_prefix}{self._next_exec_id}"
        self._next_exec_id += 1
        total = order.filled + quantity
        order.avg_fill = (order.avg_fill * order.filled + price * quantity) / total
        order.filled = total
        order.last_fill_price, order.last_fill_quantity = price, quantity
        order.last_fill_ms, order.last_fill_exec_id = now // 1_000_000, exec_id
        done = order.remaining <= _EPS
        order.status = p.STATUS_FILLED if done else p.STATUS_PARTIALLY_FILLED
        open_close = self._book_position(order, quantity, price, now)
        self.fills.append(
            SimFill(
                exec_id,
                order.server_order_id,
                order.account,
                order.symbol,
                order.side,
                price,
                quantity,
                now,
                open_close,
            ),
        )
        update = self.order_update(order, p.REASON_FILLED if done else p.REASON_FILLED_PARTIALLY)
        self._emit(update)
        if self.config.duplicate_next_fill:
            self.config.duplicate_next_fill = False
            self._emit(dict(update))
        self._emit(self.position_update(order.account, order.symbol))
        if self.config.send_balance_updates:
            self._emit(self.balance_update(order.account))
        self._after_fill(order, quantity)

    def _book_position(self, order: SimOrder, quantity: float, price: float, now: int) -> int:
        """Update the net position and cash; return 1 (opening) or 2 (closing) for the fills history."""
        spec = self.config.symbols[order.symbol]
        key = (order.account, order.symbol)
        position = self.positions.setdefault(key, SimPosition())
        balance = self.balances.setdefault(order.account, SimBalance(self.config.starting_balance))
        signed = quantity if order.buy else -quantity
        commission = quantity * spec.commission_per_contract
        balance.cash -= commission
        balance.daily_pnl -= commission
        if position.quantity == 0 or (position.quantity > 0) == (signed > 0):
            new_qty = position.quantity + signed
            position.average_price = (position.average_price * abs(position.quantity) + price * quantity) / abs(new_qty)
            if position.quantity == 0:
                position.entry_ns = now
            position.quantity = new_qty
            return 1
        closing = min(abs(signed), abs(position.quantity))
        direction = 1.0 if position.quantity > 0 else -1.0
        pnl = (price - position.average_price) * closing * direction * spec.point_value
        balance.cash += pnl
        balance.daily_pnl += pnl
        rest = abs(signed) - closing
        position.quantity += signed if rest <= _EPS else -position.quantity
        if abs(position.quantity) <= _EPS:
            position.quantity = 0.0
            position.average_price = 0.0
        if rest > _EPS:  # reversed through flat
            position.quantity = rest * (1.0 if signed > 0 else -1.0)
            position.average_price = price
            position.entry_ns = now
        return 2

    def _after_fill(self, order: SimOrder, quantity: float) -> None:
        """OCO reduction/cancel and bracket child activation caused by a fill."""
        if order.oco_link:
            sibling = self.orders.get(order.oco_link)
            if sibling is not None and sibling.working:
                if order.status == p.STATUS_FILLED or order.partial_fill_handling == p.PARTIAL_FILL_IMMEDIATE_CANCEL:
                    self._cancel(sibling, p.REASON_CANCELED, cascade=False)
                else:
                    sibling.reduction += quantity
                    new_quantity = sibling.quantity - quantity
                    if new_quantity <= sibling.filled + _EPS:
                        self._cancel(sibling, p.REASON_CANCELED, cascade=False)
                    else:
                        sibling.quantity = new_quantity
                        self._emit(self.order_update(sibling, p.REASON_GENERAL_UPDATE))
        for child_id in order.children:
            child = self.orders.get(child_id)
            if child is not None and child.working:
                self._activate_child(order, child, announce=True)

    def _activate_child(self, parent: SimOrder, child: SimOrder, *, announce: bool) -> None:
        """A bracket child works for the quantity its parent has filled (less OCO reductions)."""
        target = max(0.0, min(child.requested_quantity, parent.filled) - child.reduction)
        was_pending = child.status == p.STATUS_PENDING_CHILD
        if target <= child.filled + _EPS:
            return
        changed = was_pending or abs(target - child.quantity) > _EPS
        child.quantity = target
        if was_pending:
            child.status = p.STATUS_OPEN
        if changed and announce:
            self._emit(self.order_update(child, p.REASON_GENERAL_UPDATE))
            child.resting = False
            self._match(child, None)
            child.resting = True

    # -- housekeeping --------------------------------------------------------------------------

    def _expire_gtd(self) -> None:
        now_s = self.now_ns() // 1_000_000_000
        for order in list(self.orders.values()):
            if order.working and order.tif == p.TIF_GTD and 0 < order.gtd_s <= now_s:
                order.info_text = "Expired"
                self._cancel(order, p.REASON_CANCELED)

    def expire_due(self) -> None:
        """Expire GTD orders whose time has passed (the server calls this on a timer)."""
        self._expire_gtd()

    def session_close(self) -> None:
        """End the trading day: DAY orders expire, ClientOrderIDs may be reused, daily P&L resets."""
        for order in sorted(self.orders.values(), key=lambda o: int(o.server_order_id)):
            if order.working and order.tif == p.TIF_DAY:
                order.info_text = "Expired"
                self._cancel(order, p.REASON_CANCELED, cascade=False)
        self._used_client_ids.clear()
        for balance in self.balances.values():
            balance.daily_pnl = 0.0

    def cancel_external(self, server_order_id: str) -> None:
        """Cancel an order as if from outside this connection (a user in Sierra Chart's order window)."""
        order = self.orders[server_order_id]
        self._cancel(order, p.REASON_CANCELED)

    def seed_position(self, account: str, symbol: str, quantity: float, average_price: float) -> None:
        """Start with a position (as if traded before the client connected)."""
        self.positions[(account, symbol)] = SimPosition(quantity, average_price, self.now_ns())

    def working_orders(self, account: str | None = None) -> list[SimOrder]:
        """Orders still working, oldest first."""
        orders = [o for o in self.orders.values() if o.working and (account is None or o.account == account)]
        return sorted(orders, key=lambda o: int(o.server_order_id))
