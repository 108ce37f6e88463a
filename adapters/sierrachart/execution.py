"""Sierra Chart execution client for nautilus: orders over DTC, events from ORDER_UPDATE, reconciliation.

Order flow: nautilus commands become DTC order messages (single, OCO, bracket: the parent with
``IsParentOrder`` then the OCO exits with ``ParentTriggerClientOrderID``, so protective exits live
at Sierra Chart, not in this process). Every ORDER_UPDATE is mapped to nautilus order events through
a per-order view that makes each event idempotent: an order is accepted, updated, filled (once per
execution id), canceled or rejected at most as often as it really was, whether the news arrives
live, twice (a duplicated fill), out of order (a fill before its acknowledgement) or from
reconciliation after a reconnect.

Identity: nautilus client order ids go out as the DTC ``ClientOrderID`` when they fit in 31
characters (a stable digest otherwise); every server id is persisted with the nautilus order behind
it (``state.OrderIdStore``) because the fills history carries only the server id.

Reconciliation: at start-up nautilus's engine asks for ``generate_order_status_reports``,
``generate_fill_reports`` and ``generate_position_status_reports``, built here from OPEN_ORDERS,
HISTORICAL_ORDER_FILLS and CURRENT_POSITIONS (closed orders of the day are rebuilt from the store
and their fills). After a reconnect the client fetches the same snapshots and applies what changed
while it was away as ordinary events: fills it has not emitted (by execution id), orders that were
canceled or never reached the server, quantity and price changes; then it checks the net positions
against the server's and, on a mismatch, hands nautilus a position report to align on.

Accounts: balances are pushed as reported account states (nautilus does not compute a live
account by itself); the client refuses to start on the wrong account, a disabled one, a server
without trading, or a simulation account under ``live`` (and the reverse).
"""

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import BatchCancelOrders
from nautilus_trader.execution.messages import CancelAllOrders
from nautilus_trader.execution.messages import CancelOrder
from nautilus_trader.execution.messages import GenerateFillReports
from nautilus_trader.execution.messages import GenerateOrderStatusReport
from nautilus_trader.execution.messages import GenerateOrderStatusReports
from nautilus_trader.execution.messages import GeneratePositionStatusReports
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.execution.messages import QueryAccount
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.execution.reports import FillReport
from nautilus_trader.execution.reports import OrderStatusReport
from nautilus_trader.execution.reports import PositionStatusReport
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.enums import contingency_type_to_str
from nautilus_trader.model.enums import order_side_to_str
from nautilus_trader.model.enums import order_type_to_str
from nautilus_trader.model.enums import time_in_force_to_str
from nautilus_trader.model.identifiers import AccountId
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.identifiers import VenueOrderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import AccountBalance
from nautilus_trader.model.objects import Currency
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order

from adapters.sierrachart.client import DtcClient
from adapters.sierrachart.client import DtcError
from adapters.sierrachart.client import LogonInfo
from adapters.sierrachart.client import ReconnectPolicy
from adapters.sierrachart.codec import DtcMessage
from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.constants import DtcOrderStatus
from adapters.sierrachart.constants import MessageType
from adapters.sierrachart.constants import OrderUpdateReason
from adapters.sierrachart.constants import PartialFillHandling
from adapters.sierrachart.constants import TradeMode
from adapters.sierrachart.parsing import DTC_ORDER_TYPES
from adapters.sierrachart.parsing import DTC_TIME_IN_FORCE
from adapters.sierrachart.parsing import FillSummary
from adapters.sierrachart.parsing import closed_order_report
from adapters.sierrachart.parsing import dtc_side
from adapters.sierrachart.parsing import fill_report
from adapters.sierrachart.parsing import liquidity_side
from adapters.sierrachart.parsing import open_order_report
from adapters.sierrachart.parsing import order_terms
from adapters.sierrachart.parsing import position_report
from adapters.sierrachart.providers import SierraChartInstrumentProvider
from adapters.sierrachart.providers import SymbolDefinition
from adapters.sierrachart.providers import SymbolMapper
from adapters.sierrachart.providers import confirm_definition
from adapters.sierrachart.safety import SierraChartSafetyError
from adapters.sierrachart.safety import check_account_kind
from adapters.sierrachart.safety import check_trade_account
from adapters.sierrachart.safety import check_trading_supported
from adapters.sierrachart.state import OrderIdStore
from adapters.sierrachart.state import OrderRecord
from adapters.sierrachart.state import dtc_client_order_id
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import ConfigError
from mia_strategies.fees import contract_root


_ZERO = Decimal(0)
#: Fills are requested from this long before the last one seen (clock skew, same-second fills).
_FILL_OVERLAP_S = 120
#: Delay before checking positions after a reconnect, so the events it produced are applied.
_POSITION_CHECK_DELAY_S = 1.0


#: The topic the alert actor listens on (``mia_strategies.ops.alerts.ALERTS_TOPIC``).
ALERTS_TOPIC = "mia.alerts"


@dataclass
class _Tracked:
    """This client's view of one order: what it has told nautilus so far."""

    client_order_id: ClientOrderId
    strategy_id: StrategyId
    instrument_id: InstrumentId
    side: OrderSide
    order_type: OrderType
    quantity: Quantity
    price: Price | None
    trigger_price: Price | None
    dtc_id: str
    submitted_ns: int
    venue_order_id: VenueOrderId | None = None
    accepted: bool = False
    closed: bool = False
    filled: Decimal = _ZERO
    filled_wire: float = 0.0
    avg_wire: float = 0.0
    cancel_on_accept: bool = False
    parent: ClientOrderId | None = None
    children: list[ClientOrderId] = field(default_factory=list)


class _DtcEvents:
    """Routes DTC client callbacks to the execution client's private handlers."""

    def __init__(self, owner: "SierraChartExecutionClient") -> None:
        self._owner = owner

    def on_message(self, message: DtcMessage) -> None:
        self._owner._handle_dtc_message(message)

    async def on_connected(self, info: LogonInfo, reconnected: bool) -> None:
        await self._owner._handle_connected(info, reconnected)

    def on_disconnected(self, reason: str) -> None:
        self._owner._handle_disconnected(reason)

    def on_fatal(self, reason: str) -> None:
        self._owner._handle_fatal(reason)


class SierraChartExecutionClient(LiveExecutionClient):
    """
    Provides an execution client for Sierra Chart's DTC server (see the module docstring).

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The event loop for the client.
    name : str
        The client id; name it after the venue (``GLBX``) so accounts and portfolio line up.
    msgbus, cache, clock
        The node's components.
    instrument_provider : SierraChartInstrumentProvider
        Builds the CME contracts.
    config : SierraChartExecClientConfig
        The client settings.
    markets : MarketsConfig
        Contract specs and the venue.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        name: str,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        instrument_provider: SierraChartInstrumentProvider,
        config: SierraChartExecClientConfig,
        markets: MarketsConfig,
    ) -> None:
        if config.encoding_mode not in ("automatic", "json"):
            raise ConfigError(f"encoding_mode {config.encoding_mode!r}: use automatic or json")
        super().__init__(
            loop=loop,
            client_id=ClientId(name),
            venue=Venue(markets.venue),
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USD,
            instrument_provider=instrument_provider,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
        )
        self._config = config
        self._markets = markets
        self._account = config.trade_account
        self._set_account_id(AccountId(f"{name}-{config.trade_account}"))
        self._mapper = SymbolMapper(markets, config.symbol_template, config.symbol_overrides)
        self._definitions: dict[InstrumentId, SymbolDefinition] = {}
        self._by_symbol: dict[str, SymbolDefinition] = {}
        commissions = config.commission_per_contract or {
            root: str(spec.commission_per_contract) for root, spec in markets.roots.items()
        }
        self._commissions = {root: Decimal(value) for root, value in commissions.items()}
        self._store = OrderIdStore(Path(config.state_path) if config.state_path else None, fsync=config.state_fsync)
        self._tracked: dict[ClientOrderId, _Tracked] = {}
        self._by_dtc_id: dict[str, _Tracked] = {}
        self._emitted_exec_ids: set[str] = set()
        self._logon: LogonInfo | None = None
        self._trading_enabled = False
        self._server_connected = False
        self._resync_lock = asyncio.Lock()
        self._position_check: asyncio.Task[None] | None = None
        self.startup_error: str | None = None
        self.fatal_error: str | None = None
        self.resyncs = 0
        username, password = config.credentials()
        self._dtc = DtcClient(
            config.host,
            config.port,
            _DtcEvents(self),
            encoding_mode=config.encoding_mode,  # type: ignore[arg-type]
            username=username,
            password=password,
            client_name=config.client_name,
            heartbeat_interval_secs=config.heartbeat_interval_secs,
            trade_mode=TradeMode.LIVE if config.live else TradeMode.SIMULATED,
            request_timeout_secs=config.request_timeout_secs,
            reconnect=ReconnectPolicy(
                initial_delay_secs=config.reconnect_initial_delay_secs,
                max_delay_secs=config.reconnect_max_delay_secs,
                max_attempts=config.reconnect_max_attempts,
            ),
            logger=self._log,
        )

    # -- PROPERTIES --------------------------------------------------------------------------------

    @property
    def dtc(self) -> DtcClient:
        """The DTC connection (tests inject faults through it)."""
        return self._dtc

    @property
    def store(self) -> OrderIdStore:
        """The persisted server-order-id map."""
        return self._store

    @property
    def trading_enabled(self) -> bool:
        """Orders are accepted for sending (connected, server allows trading, no fatal error)."""
        return self._trading_enabled and self._server_connected and self.fatal_error is None

    def definition(self, instrument_id: InstrumentId) -> SymbolDefinition | None:
        """The confirmed Sierra symbol of an instrument."""
        return self._definitions.get(instrument_id)

    # -- CONNECTION --------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self.startup_error = None
        try:
            check_account_kind(self._account, self._config.live)
            await self._instrument_provider.initialize()
            instruments = self._instrument_provider.list_all()
            for instrument in instruments:
                if self._cache.instrument(instrument.id) is None:
                    self._cache.add_instrument(instrument)  # reports need the instruments cached first
            loaded = {i.id for i in instruments}
            # Contracts the node builder put in the cache (the strategy's schedule) trade here too.
            instruments += [i for i in self._cache.instruments(venue=self.venue) if i.id not in loaded]
            info = await self._dtc.connect(self._config.connect_attempts)
            await self._prepare_session(info)
            await self._load_definitions(instruments)
            await self._refresh_balance()
            await self._await_account_registered(timeout_secs=self._config.request_timeout_secs)
            account = self._cache.account(self.account_id)
            if account is not None and account.calculate_account_state:
                self._log.error(
                    f"{self.account_id} is also calculated by nautilus (a backtest or sandbox in this process "
                    f"registered {self.id} as a calculated issuer): balances will count commissions twice; "
                    "run live trading in its own process",
                )
        except (DtcError, ConfigError, SierraChartSafetyError) as exc:
            self.startup_error = str(exc)
            self._log.error(f"Sierra Chart execution client not started: {exc}")
            await self._dtc.close("start-up refused")
            raise

    async def _prepare_session(self, info: LogonInfo) -> None:
        """Safety checks after each logon; raises ``SierraChartSafetyError``."""
        self._logon = info
        check_trading_supported(info)
        answers = await self._dtc.request(
            {"Type": MessageType.TRADE_ACCOUNTS_REQUEST},
            responses=(MessageType.TRADE_ACCOUNT_RESPONSE,),
        )
        accounts = [(m.text("TradeAccount"), m.flag("TradingIsDisabled")) for m in answers]
        check_trade_account(self._account, accounts, self._config.live)
        self._trading_enabled = True
        self._server_connected = True

    async def _load_definitions(self, instruments: list[Instrument]) -> None:
        """Confirm every instrument's Sierra symbol with a security definition request."""
        for instrument in instruments:
            symbol = self._mapper.to_sierra(instrument.id)
            try:
                answer = await self._dtc.request(
                    {"Type": MessageType.SECURITY_DEFINITION_FOR_SYMBOL_REQUEST, "Symbol": symbol, "Exchange": ""},
                    responses=(MessageType.SECURITY_DEFINITION_RESPONSE,),
                    rejects=(MessageType.SECURITY_DEFINITION_REJECT,),
                )
            except DtcError as exc:
                raise ConfigError(
                    f"Sierra Chart does not know symbol {symbol} for {instrument.id} ({exc}): check symbol_template "
                    "against Sierra's File >> Find Symbol spelling",
                ) from None
            definition = confirm_definition(instrument, symbol, answer[-1])
            self._definitions[instrument.id] = definition
            self._by_symbol[symbol] = definition
            self._log.info(f"{instrument.id} trades as {symbol} (price multiplier {definition.display_multiplier})")

    async def _disconnect(self) -> None:
        if self._position_check is not None:
            self._position_check.cancel()
        if self._config.cancel_orders_on_stop and self._dtc.is_connected:
            await self._cancel_working_orders_at_venue()
        await self._dtc.close()
        self._server_connected = False
        self._store.close()

    async def _cancel_working_orders_at_venue(self, timeout_secs: float = 3.0) -> None:
        """Cancel every working order of the account and wait until the server shows none."""
        try:
            working = await self._fetch_open_orders()
            for message in working:
                self._dtc.send(
                    {
                        "Type": MessageType.CANCEL_ORDER,
                        "ServerOrderID": message.text("ServerOrderID"),
                        "ClientOrderID": message.text("ClientOrderID"),
                        "TradeAccount": self._account,
                    },
                )
            deadline = self._loop.time() + timeout_secs
            while working and self._loop.time() < deadline:
                await asyncio.sleep(0.05)
                working = await self._fetch_open_orders()
            if working:
                self._log.error(f"{len(working)} orders still working at Sierra Chart after stop")
            else:
                self._log.info("All working orders canceled at Sierra Chart")
        except DtcError as exc:
            self._log.error(f"Cannot cancel working orders on stop: {exc}")

    # -- DTC CALLBACKS -----------------------------------------------------------------------------

    def _handle_disconnected(self, reason: str) -> None:
        self._server_connected = False
        self._log.warning(f"Sierra Chart connection lost ({reason}); orders are refused until it is back")
        self._publish_alert("disconnect", "Sierra Chart DTC disconnected", reason, priority=None)

    def _handle_fatal(self, reason: str) -> None:
        self.fatal_error = reason
        self._trading_enabled = False
        self._log.error(f"Sierra Chart connection will not be re-established: {reason}")
        self._publish_alert("disconnect", "Sierra Chart DTC lost for good", reason, priority="urgent")

    def _publish_alert(self, kind: str, title: str, reason: str, priority: str | None) -> None:
        """Tell people (the alert actor listens on ``mia.alerts``); a plain dict keeps adapters free of ops."""
        payload: dict[str, object] = {
            "kind": kind,
            "title": title,
            "message": reason,
            "source": "SIERRACHART",
            "ts_event": self._clock.timestamp_ns(),
            "dedup_key": f"dtc|{kind}|{priority or ''}",
        }
        if priority is not None:
            payload["priority"] = priority
        self._msgbus.publish(ALERTS_TOPIC, payload)

    async def _handle_connected(self, info: LogonInfo, reconnected: bool) -> None:
        if not reconnected:
            return
        self._publish_alert("reconnect", "Sierra Chart DTC reconnected", "logon accepted again", priority=None)
        try:
            await self._prepare_session(info)
        except SierraChartSafetyError as exc:
            self._trading_enabled = False
            self._server_connected = True  # connected, but refusing orders: see the error
            self.fatal_error = str(exc)
            self._log.error(f"Reconnected, but trading stays off: {exc}")
            return
        except DtcError as exc:
            self._log.warning(f"Reconnect handshake failed ({exc}); waiting for the next reconnect")
            return
        await self._resync()

    def _handle_dtc_message(self, message: DtcMessage) -> None:
        kind = message.type
        if kind == MessageType.ORDER_UPDATE:
            self._handle_order_update(message)
        elif kind == MessageType.POSITION_UPDATE:
            pass  # positions are checked from snapshots; fills drive nautilus's positions
        elif kind == MessageType.ACCOUNT_BALANCE_UPDATE:
            self._handle_balance(message)
        elif kind == MessageType.TRADE_ACCOUNT_RESPONSE and message.text("TradeAccount") == self._account:
            if message.flag("TradingIsDisabled"):
                self._disable_trading(f"trade account {self._account} was disabled at Sierra Chart")
        elif kind in (MessageType.USER_MESSAGE, MessageType.GENERAL_LOG_MESSAGE, MessageType.ALERT_MESSAGE):
            self._log.info(f"Sierra Chart says: {message.text('UserMessage') or message.text('MessageText')}")

    def _disable_trading(self, reason: str) -> None:
        if self._trading_enabled:
            self._log.error(f"Trading disabled: {reason}")
        self._trading_enabled = False

    # -- ACCOUNT -----------------------------------------------------------------------------------

    async def _refresh_balance(self) -> None:
        answers = await self._dtc.request(
            {"Type": MessageType.ACCOUNT_BALANCE_REQUEST, "TradeAccount": self._account},
            responses=(MessageType.ACCOUNT_BALANCE_UPDATE,),
            rejects=(MessageType.ACCOUNT_BALANCE_REJECT,),
        )
        for message in answers:
            self._handle_balance(message)

    def _handle_balance(self, message: DtcMessage) -> None:
        if message.flag("NoAccountBalances") or message.text("TradeAccount") != self._account:
            return
        if message.flag("TradingIsDisabled"):
            self._disable_trading(f"Sierra Chart reports trading disabled for {self._account}")
        currency = Currency.from_str(message.text("AccountCurrency") or "USD")
        total = Decimal(repr(message.number("CashBalance") or 0.0))
        margin = Decimal(repr(message.number("MarginRequirement") or 0.0))
        locked = min(max(margin, _ZERO), max(total, _ZERO))
        self.generate_account_state(
            balances=[AccountBalance(Money(total, currency), Money(locked, currency), Money(total - locked, currency))],
            margins=[],
            reported=True,
            ts_event=self._clock.timestamp_ns(),
        )

    async def _query_account(self, command: QueryAccount) -> None:
        await self._refresh_balance()

    # -- ORDER ENTRY -------------------------------------------------------------------------------

    def _refusal(self, order: Order) -> str | None:
        """Why ``order`` cannot be sent now (``None`` when it can)."""
        if self.fatal_error is not None:
            return f"Sierra Chart trading is off: {self.fatal_error}"
        if not self._server_connected or not self._dtc.is_connected:
            return "not connected to Sierra Chart (reconnecting)"
        if not self._trading_enabled:
            return "trading is disabled at Sierra Chart"
        if order.instrument_id not in self._definitions:
            return f"{order.instrument_id} has no confirmed Sierra Chart symbol"
        if order.order_type not in DTC_ORDER_TYPES:
            return f"Sierra Chart does not hold {order_type_to_str(order.order_type)} orders"
        if order.time_in_force not in DTC_TIME_IN_FORCE:
            return f"Sierra Chart does not support time in force {time_in_force_to_str(order.time_in_force)}"
        if order.is_post_only and self._would_take_liquidity(order):
            # DTC has no post-only flag: a resting limit is sent as a plain limit, a marketable one refused
            # here as nautilus's own matching engine refuses it in a backtest.
            return "post-only order would take liquidity"
        return None

    def _would_take_liquidity(self, order: Order) -> bool:
        quote = self._cache.quote_tick(order.instrument_id)
        if quote is None or not order.has_price:
            return False
        return order.price >= quote.ask_price if order.side == OrderSide.BUY else order.price <= quote.bid_price

    def _order_fields(self, order: Order, suffix: str = "") -> dict[str, Any]:
        """The per-order DTC fields (``suffix`` "_1"/"_2" for OCO legs)."""
        definition = self._definitions[order.instrument_id]
        fields: dict[str, Any] = {
            f"ClientOrderID{suffix}": dtc_client_order_id(order.client_order_id.value),
            f"OrderType{suffix}": int(DTC_ORDER_TYPES[order.order_type]),
            f"BuySell{suffix}": int(dtc_side(order.side)),
            f"Quantity{suffix}": float(order.quantity.as_decimal()),
        }
        if order.order_type == OrderType.LIMIT:
            fields[f"Price1{suffix}"] = definition.to_wire(order.price)
        elif order.order_type in (OrderType.STOP_MARKET, OrderType.MARKET_IF_TOUCHED):
            fields[f"Price1{suffix}"] = definition.to_wire(order.trigger_price)
        elif order.order_type == OrderType.STOP_LIMIT:
            fields[f"Price1{suffix}"] = definition.to_wire(order.trigger_price)
            fields[f"Price2{suffix}"] = definition.to_wire(order.price)
        return fields

    def _common_fields(self, order: Order) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "Symbol": self._definitions[order.instrument_id].symbol,
            "Exchange": "",
            "TradeAccount": self._account,
            "TimeInForce": int(DTC_TIME_IN_FORCE[order.time_in_force]),
            "IsAutomatedOrder": 1,
        }
        if order.time_in_force == TimeInForce.GTD:
            fields["GoodTillDateTime"] = order.expire_time_ns // 1_000_000_000
        return fields

    def _track(self, order: Order, parent: ClientOrderId | None = None) -> _Tracked:
        tracked = _Tracked(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price if order.has_price else None,
            trigger_price=order.trigger_price if order.has_trigger_price else None,
            dtc_id=dtc_client_order_id(order.client_order_id.value),
            submitted_ns=self._clock.timestamp_ns(),
            parent=parent,
        )
        self._tracked[order.client_order_id] = tracked
        self._by_dtc_id[tracked.dtc_id] = tracked
        return tracked

    def _remember(self, order: Order) -> None:
        """Persist what is needed to rebuild ``order`` after a restart."""
        self._store.record_order(
            OrderRecord(
                dtc_client_order_id=dtc_client_order_id(order.client_order_id.value),
                client_order_id=order.client_order_id.value,
                strategy_id=order.strategy_id.value,
                instrument_id=order.instrument_id.value,
                order_side=order_side_to_str(order.side),
                order_type=order_type_to_str(order.order_type),
                quantity=str(order.quantity),
                time_in_force=time_in_force_to_str(order.time_in_force),
                price=str(order.price) if order.has_price else None,
                trigger_price=str(order.trigger_price) if order.has_trigger_price else None,
                contingency_type=contingency_type_to_str(order.contingency_type),
                order_list_id=order.order_list_id.value if order.order_list_id else None,
                linked_order_ids=[o.value for o in order.linked_order_ids or []],
                parent_order_id=order.parent_order_id.value if order.parent_order_id else None,
                tags=list(order.tags or []),
                reduce_only=order.is_reduce_only,
                ts_submitted=self._clock.timestamp_ns(),
            ),
        )

    def _send_orders(self, message: dict[str, Any], orders: list[Order], parent: ClientOrderId | None = None) -> None:
        """Send one order message for ``orders``; submitted (then rejected on failure) for each."""
        for order in orders:
            self._track(order, parent if parent is not None and order.client_order_id != parent else None)
        error = None
        try:
            self._dtc.send(message)
        except DtcError as exc:
            error = str(exc)
        now = self._clock.timestamp_ns()
        for order in orders:
            self.generate_order_submitted(order.strategy_id, order.instrument_id, order.client_order_id, now)
            if error is not None:
                self._reject(self._tracked[order.client_order_id], error, now)
            else:
                self._remember(order)

    def _reject(self, tracked: _Tracked, reason: str, ts_event: int) -> None:
        if tracked.closed:
            return
        tracked.closed = True
        self.generate_order_rejected(
            tracked.strategy_id, tracked.instrument_id, tracked.client_order_id, reason, ts_event
        )

    def _refuse(self, orders: list[Order], reason: str) -> None:
        now = self._clock.timestamp_ns()
        for order in orders:
            self.generate_order_submitted(order.strategy_id, order.instrument_id, order.client_order_id, now)
            self.generate_order_rejected(order.strategy_id, order.instrument_id, order.client_order_id, reason, now)

    async def _submit_order(self, command: SubmitOrder) -> None:
        order = command.order
        problem = self._refusal(order)
        if problem is not None:
            self._refuse([order], problem)
            return
        message = {
            "Type": MessageType.SUBMIT_NEW_SINGLE_ORDER,
            **self._common_fields(order),
            **self._order_fields(order),
        }
        message["FreeFormText"] = order.client_order_id.value[:47]
        self._send_orders(message, [order])

    async def _submit_order_list(self, command: SubmitOrderList) -> None:
        orders = list(command.order_list.orders)
        problems = [p for p in (self._refusal(o) for o in orders) if p]
        if problems:
            self._refuse(orders, problems[0])
            return
        entries = [o for o in orders if o.contingency_type == ContingencyType.OTO and o.parent_order_id is None]
        if len(entries) == 1 and len(orders) == 3:
            self._submit_bracket(entries[0], [o for o in orders if o is not entries[0]])
        elif len(orders) == 2 and all(o.contingency_type in (ContingencyType.OCO, ContingencyType.OUO) for o in orders):
            self._submit_oco(orders, None)
        elif all(o.contingency_type == ContingencyType.NO_CONTINGENCY for o in orders):
            for order in orders:
                await self._submit_order(
                    SubmitOrder(command.trader_id, order.strategy_id, order, UUID4(), command.ts_init)
                )
        else:
            self._refuse(orders, "Sierra Chart holds brackets (entry + two exits) and OCO pairs only")

    def _submit_bracket(self, entry: Order, exits: list[Order]) -> None:
        """Entry as a bracket parent, then its two exits as an OCO triggered by it: all held at Sierra Chart."""
        logon = self._logon
        if logon is None or not logon.bracket_supported or not logon.oco_supported:
            self._refuse([entry, *exits], "Sierra Chart reports no bracket/OCO support (BracketOrdersSupported=0)")
            return
        if any(o.parent_order_id is None or o.parent_order_id != entry.client_order_id for o in exits):
            self._refuse([entry, *exits], "bracket exits must name the entry as their parent")
            return
        parent = {
            "Type": MessageType.SUBMIT_NEW_SINGLE_ORDER,
            **self._common_fields(entry),
            **self._order_fields(entry),
        }
        parent["IsParentOrder"] = 1
        parent["FreeFormText"] = entry.client_order_id.value[:47]
        self._send_orders(parent, [entry])
        tracked_entry = self._tracked[entry.client_order_id]
        if tracked_entry.closed:
            self._refuse(exits, "bracket entry could not be sent")
            return
        tracked_entry.children = [o.client_order_id for o in exits]
        self._submit_oco(exits, entry)

    def _submit_oco(self, legs: list[Order], parent: Order | None) -> None:
        logon = self._logon
        if logon is None or not logon.oco_supported:
            self._refuse(legs, "Sierra Chart reports no OCO support (OCOOrdersSupported=0)")
            return
        first, second = legs
        message: dict[str, Any] = {
            "Type": MessageType.SUBMIT_NEW_OCO_ORDER,
            **self._common_fields(first),
            **self._order_fields(first, "_1"),
            **self._order_fields(second, "_2"),
            "PartialFillHandling": int(PartialFillHandling.REDUCE_QUANTITY),
        }
        if parent is not None:
            message["ParentTriggerClientOrderID"] = dtc_client_order_id(parent.client_order_id.value)
        self._send_orders(message, legs, parent.client_order_id if parent is not None else None)

    async def _modify_order(self, command: ModifyOrder) -> None:
        tracked = self._tracked_for(command.client_order_id)
        now = self._clock.timestamp_ns()
        venue_order_id = command.venue_order_id or (tracked.venue_order_id if tracked else None)
        reason = self._modify_refusal(command, tracked)
        if reason is not None or tracked is None or venue_order_id is None:
            self.generate_order_modify_rejected(
                command.strategy_id,
                command.instrument_id,
                command.client_order_id,
                venue_order_id,  # type: ignore[arg-type]
                reason or "order not yet acknowledged by Sierra Chart",
                now,
            )
            return
        definition = self._definitions[tracked.instrument_id]
        message: dict[str, Any] = {
            "Type": MessageType.CANCEL_REPLACE_ORDER,
            "ServerOrderID": venue_order_id.value,
            "ClientOrderID": tracked.dtc_id,
            "TradeAccount": self._account,
            "Quantity": float(command.quantity.as_decimal()) if command.quantity is not None else 0.0,
            "Price1IsSet": 0,
            "Price2IsSet": 0,
        }
        price1 = command.price if tracked.order_type == OrderType.LIMIT else command.trigger_price
        if price1 is not None:
            message["Price1"] = definition.to_wire(price1)
            message["Price1IsSet"] = 1
        try:
            self._dtc.send(message)
        except DtcError as exc:
            self.generate_order_modify_rejected(
                tracked.strategy_id,
                tracked.instrument_id,
                tracked.client_order_id,
                venue_order_id,
                str(exc),
                now,
            )

    def _modify_refusal(self, command: ModifyOrder, tracked: _Tracked | None) -> str | None:
        if tracked is None:
            return "order unknown to the Sierra Chart client"
        if self._logon is not None and not self._logon.cancel_replace_supported:
            return "Sierra Chart reports no cancel/replace support"
        if not self._dtc.is_connected:
            return "not connected to Sierra Chart (reconnecting)"
        if tracked.order_type == OrderType.STOP_LIMIT and command.price is not None:
            # Sierra moves a stop-limit's limit with its stop (same offset); only that move is possible.
            if command.trigger_price is None or tracked.price is None or tracked.trigger_price is None:
                return "Sierra Chart changes a stop-limit's limit only together with its stop price"
            if command.price.as_decimal() - tracked.price.as_decimal() != (
                command.trigger_price.as_decimal() - tracked.trigger_price.as_decimal()
            ):
                return "Sierra Chart keeps a stop-limit's stop-to-limit offset: move both prices by the same amount"
        if tracked.order_type == OrderType.MARKET and (command.price is not None or command.trigger_price is not None):
            return "a market order has no price to change"
        return None

    async def _cancel_order(self, command: CancelOrder) -> None:
        tracked = self._tracked_for(command.client_order_id)
        self._send_cancel(
            tracked, command.client_order_id, command.venue_order_id, command.strategy_id, command.instrument_id
        )

    def _send_cancel(
        self,
        tracked: _Tracked | None,
        client_order_id: ClientOrderId,
        venue_order_id: VenueOrderId | None,
        strategy_id: StrategyId,
        instrument_id: InstrumentId,
    ) -> None:
        now = self._clock.timestamp_ns()
        venue_order_id = venue_order_id or (tracked.venue_order_id if tracked else None)
        if tracked is not None and venue_order_id is None and not tracked.closed:
            tracked.cancel_on_accept = True  # sent as soon as the server acknowledges the order
            return
        if venue_order_id is None:
            self.generate_order_cancel_rejected(
                strategy_id,
                instrument_id,
                client_order_id,
                venue_order_id,
                "order unknown to Sierra Chart",
                now,  # type: ignore[arg-type]
            )
            return
        dtc_id = tracked.dtc_id if tracked is not None else dtc_client_order_id(client_order_id.value)
        try:
            self._dtc.send(
                {
                    "Type": MessageType.CANCEL_ORDER,
                    "ServerOrderID": venue_order_id.value,
                    "ClientOrderID": dtc_id,
                    "TradeAccount": self._account,
                },
            )
        except DtcError as exc:
            self.generate_order_cancel_rejected(
                strategy_id, instrument_id, client_order_id, venue_order_id, str(exc), now
            )

    async def _cancel_all_orders(self, command: CancelAllOrders) -> None:
        """Cancel every open or in-flight order of the instrument (and side), each once.

        A strategy marks its open orders PENDING_CANCEL before it sends the command, so that state
        must not exclude an order; other senders (a risk actor, an operator) do not mark them at all.
        """
        seen: set[ClientOrderId] = set()
        orders = [
            *self._cache.orders_open(venue=self.venue, instrument_id=command.instrument_id),
            *self._cache.orders_inflight(venue=self.venue, instrument_id=command.instrument_id),
        ]
        for order in orders:
            if order.client_order_id in seen or command.order_side not in (OrderSide.NO_ORDER_SIDE, order.side):
                continue
            seen.add(order.client_order_id)
            tracked = self._tracked_for(order.client_order_id)
            self._send_cancel(
                tracked, order.client_order_id, order.venue_order_id, order.strategy_id, order.instrument_id
            )

    async def _batch_cancel_orders(self, command: BatchCancelOrders) -> None:
        for cancel in command.cancels:
            await self._cancel_order(cancel)

    # -- ORDER UPDATES -----------------------------------------------------------------------------

    def _tracked_for(self, client_order_id: ClientOrderId) -> _Tracked | None:
        """The view of an order, created from the cache for orders this process did not send."""
        tracked = self._tracked.get(client_order_id)
        if tracked is not None:
            return tracked
        order = self._cache.order(client_order_id)
        if order is None or order.instrument_id.venue != self.venue:
            return None
        tracked = _Tracked(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price if order.has_price else None,
            trigger_price=order.trigger_price if order.has_trigger_price else None,
            dtc_id=dtc_client_order_id(order.client_order_id.value),
            submitted_ns=order.ts_init,
            venue_order_id=order.venue_order_id,
            accepted=order.venue_order_id is not None,
            closed=order.is_closed,
            filled=order.filled_qty.as_decimal(),
            filled_wire=float(order.filled_qty.as_decimal()),
            parent=order.parent_order_id,
        )
        self._tracked[client_order_id] = tracked
        self._by_dtc_id[tracked.dtc_id] = tracked
        return tracked

    def _find(self, message: DtcMessage) -> _Tracked | None:
        """The tracked order an update is about: by server id, else by DTC ClientOrderID."""
        server_id = message.text("ServerOrderID")
        for sid in (server_id, message.text("PreviousServerOrderID")):
            if not sid:
                continue
            record = self._store.by_server_id(sid)
            if record is not None:
                return self._tracked_for(ClientOrderId(record.client_order_id))
            client_order_id = self._cache.client_order_id(VenueOrderId(sid))
            if client_order_id is not None:
                return self._tracked_for(client_order_id)
        dtc_id = message.text("ClientOrderID")
        if dtc_id:
            tracked = self._by_dtc_id.get(dtc_id)
            if tracked is not None:
                return tracked
            record = self._store.by_dtc_id(dtc_id)
            if record is not None:
                return self._tracked_for(ClientOrderId(record.client_order_id))
        return None

    def _bind(self, tracked: _Tracked, message: DtcMessage) -> bool:
        """Adopt the server id of an update; True when it replaced an earlier one."""
        server_id = message.text("ServerOrderID")
        if not server_id:
            return False
        self._store.bind(tracked.dtc_id, server_id)
        changed = tracked.venue_order_id is not None and tracked.venue_order_id.value != server_id
        tracked.venue_order_id = VenueOrderId(server_id)
        return changed

    def _handle_order_update(self, message: DtcMessage) -> None:
        if message.flag("NoOrders"):
            return
        tracked = self._find(message)
        if tracked is None:
            self._log.debug(f"ORDER_UPDATE for an order this node does not know: {message.to_dict()}")
            return
        reason = message.integer("OrderUpdateReason")
        now = self._clock.timestamp_ns()
        if reason == OrderUpdateReason.NEW_ORDER_REJECTED:
            self._reject(tracked, message.text("InfoText") or "rejected by Sierra Chart", now)
            self._after_child_reject(tracked)
            return
        if reason in (OrderUpdateReason.ORDER_CANCEL_REJECTED, OrderUpdateReason.ORDER_CANCEL_REPLACE_REJECTED):
            self._handle_request_reject(tracked, message, reason, now)
            return
        replaced = self._bind(tracked, message)
        if reason == OrderUpdateReason.NEW_ORDER_ACCEPTED:
            self._accept(tracked, now)
        elif reason in (OrderUpdateReason.ORDER_FILLED, OrderUpdateReason.ORDER_FILLED_PARTIALLY):
            self._handle_fill_update(tracked, message, now)
        elif reason == OrderUpdateReason.ORDER_CANCELED:
            self._close_canceled(tracked, message.text("InfoText") == "Expired", now)
        elif reason == OrderUpdateReason.ORDER_CANCEL_REPLACE_COMPLETE:
            self._accept(tracked, now)
            self._apply_terms(tracked, message, now, venue_order_id_modified=replaced)
        elif reason == OrderUpdateReason.GENERAL_ORDER_UPDATE:
            self._handle_general_update(tracked, message, now, replaced)

    def _handle_general_update(self, tracked: _Tracked, message: DtcMessage, now: int, replaced: bool) -> None:
        status = message.integer("OrderStatus")
        if status in (DtcOrderStatus.OPEN, DtcOrderStatus.PARTIALLY_FILLED, DtcOrderStatus.PENDING_CHILD):
            self._accept(tracked, now)
            self._apply_terms(tracked, message, now, venue_order_id_modified=replaced)
        elif status == DtcOrderStatus.CANCELED:
            self._close_canceled(tracked, message.text("InfoText") == "Expired", now)
        elif status == DtcOrderStatus.REJECTED:
            self._reject(tracked, message.text("InfoText") or "rejected by Sierra Chart", now)
        # PENDING_OPEN / PENDING_CANCEL / PENDING_CANCEL_REPLACE: nautilus tracks its own pending states

    def _handle_request_reject(self, tracked: _Tracked, message: DtcMessage, reason: int, now: int) -> None:
        text = message.text("InfoText") or "refused by Sierra Chart"
        venue_order_id = tracked.venue_order_id or (
            VenueOrderId(message.text("ServerOrderID")) if message.text("ServerOrderID") else None
        )
        generate = (
            self.generate_order_cancel_rejected
            if reason == OrderUpdateReason.ORDER_CANCEL_REJECTED
            else self.generate_order_modify_rejected
        )
        generate(tracked.strategy_id, tracked.instrument_id, tracked.client_order_id, venue_order_id, text, now)  # type: ignore[arg-type]

    def _accept(self, tracked: _Tracked, now: int) -> None:
        if tracked.accepted or tracked.closed or tracked.venue_order_id is None:
            return
        tracked.accepted = True
        self.generate_order_accepted(
            tracked.strategy_id, tracked.instrument_id, tracked.client_order_id, tracked.venue_order_id, now
        )
        if tracked.cancel_on_accept:
            tracked.cancel_on_accept = False
            self._send_cancel(
                tracked, tracked.client_order_id, tracked.venue_order_id, tracked.strategy_id, tracked.instrument_id
            )

    def _apply_terms(
        self, tracked: _Tracked, message: DtcMessage, now: int, venue_order_id_modified: bool = False
    ) -> None:
        """Emit OrderUpdated when the server's quantity or prices differ from what nautilus holds."""
        if tracked.closed or not tracked.accepted or tracked.venue_order_id is None:
            return
        definition = self._definitions.get(tracked.instrument_id)
        instrument = self._cache.instrument(tracked.instrument_id)
        if definition is None or instrument is None:
            return
        terms = order_terms(message, definition, instrument, tracked.order_type)
        quantity = terms.quantity if terms.quantity.as_decimal() > 0 else tracked.quantity
        price = terms.price if terms.price is not None else tracked.price
        trigger = terms.trigger_price if terms.trigger_price is not None else tracked.trigger_price
        if (
            quantity == tracked.quantity
            and price == tracked.price
            and trigger == tracked.trigger_price
            and not venue_order_id_modified
        ):
            return
        tracked.quantity, tracked.price, tracked.trigger_price = quantity, price, trigger
        self.generate_order_updated(
            tracked.strategy_id,
            tracked.instrument_id,
            tracked.client_order_id,
            tracked.venue_order_id,
            quantity,
            price,
            trigger,
            now,
            venue_order_id_modified,
        )

    def _close_canceled(self, tracked: _Tracked, expired: bool, now: int) -> None:
        if tracked.closed:
            return
        if tracked.venue_order_id is None:
            self._reject(tracked, "canceled by Sierra Chart before acknowledgement", now)
            return
        self._accept(tracked, now)
        tracked.closed = True
        generate = self.generate_order_expired if expired else self.generate_order_canceled
        generate(tracked.strategy_id, tracked.instrument_id, tracked.client_order_id, tracked.venue_order_id, now)

    def _after_child_reject(self, tracked: _Tracked) -> None:
        """A rejected bracket exit leaves its entry unprotected: cancel the entry while it has no fills."""
        if tracked.parent is None:
            return
        parent = self._tracked.get(tracked.parent)
        if parent is None or parent.closed:
            return
        if parent.filled == 0:
            self._log.error(f"Exit {tracked.client_order_id} of {parent.client_order_id} rejected: canceling the entry")
            self._send_cancel(
                parent, parent.client_order_id, parent.venue_order_id, parent.strategy_id, parent.instrument_id
            )
        else:
            self._log.error(
                f"Exit {tracked.client_order_id} rejected while {parent.client_order_id} is filled: UNPROTECTED"
            )

    # -- FILLS -------------------------------------------------------------------------------------

    def _handle_fill_update(self, tracked: _Tracked, message: DtcMessage, now: int) -> None:
        filled_total = message.number("FilledQuantity")
        quantity = message.number("LastFillQuantity")
        price = message.number("LastFillPrice")
        if quantity is None or price is None or quantity <= 0:
            # Older servers: derive the execution from the change of FilledQuantity and AverageFillPrice.
            average = message.number("AverageFillPrice")
            if filled_total is None or average is None or filled_total <= tracked.filled_wire:
                return
            quantity = filled_total - tracked.filled_wire
            price = (average * filled_total - tracked.avg_wire * tracked.filled_wire) / quantity
        exec_id = message.text("LastFillExecutionID") or f"{message.text('ServerOrderID')}-{filled_total}"
        ts_event = message.time_ns("LastFillDateTime") or now
        if filled_total is not None:
            average = message.number("AverageFillPrice")
            tracked.filled_wire = max(tracked.filled_wire, filled_total)
            if average is not None:
                tracked.avg_wire = average
        self._emit_fill(tracked, exec_id, quantity, price, ts_event)

    def _emit_fill(self, tracked: _Tracked, exec_id: str, quantity: float, price_wire: float, ts_event: int) -> bool:
        """Emit one fill unless this execution id was already applied; True when emitted."""
        if exec_id in self._emitted_exec_ids:
            return False
        order = self._cache.order(tracked.client_order_id)
        if order is not None and TradeId(exec_id) in order.trade_ids:
            self._emitted_exec_ids.add(exec_id)
            return False
        definition = self._definitions.get(tracked.instrument_id)
        instrument = self._cache.instrument(tracked.instrument_id)
        if definition is None or instrument is None or tracked.venue_order_id is None:
            self._log.error(f"Cannot apply fill {exec_id} of {tracked.client_order_id}: no instrument or server id")
            return False
        last_qty = instrument.make_qty(quantity)
        if tracked.closed:
            self._log.error(f"Fill {exec_id} for closed order {tracked.client_order_id} ignored")
            return False
        if tracked.filled + last_qty.as_decimal() > tracked.quantity.as_decimal():
            # The server filled more than nautilus's order holds (a child grown by its parent): grow it first.
            grown = instrument.make_qty(tracked.filled + last_qty.as_decimal())
            tracked.quantity = grown
            self.generate_order_updated(
                tracked.strategy_id,
                tracked.instrument_id,
                tracked.client_order_id,
                tracked.venue_order_id,
                grown,
                tracked.price,
                tracked.trigger_price,
                ts_event,
                False,
            )
        self._accept(tracked, ts_event)
        self._emitted_exec_ids.add(exec_id)
        tracked.filled += last_qty.as_decimal()
        if tracked.filled >= tracked.quantity.as_decimal():
            tracked.closed = True
        self.generate_order_filled(
            strategy_id=tracked.strategy_id,
            instrument_id=tracked.instrument_id,
            client_order_id=tracked.client_order_id,
            venue_order_id=tracked.venue_order_id,
            venue_position_id=None,
            trade_id=TradeId(exec_id),
            order_side=tracked.side,
            order_type=tracked.order_type,
            last_qty=last_qty,
            last_px=definition.to_price(price_wire),
            quote_currency=instrument.quote_currency,
            commission=self._commission(instrument, last_qty),
            liquidity_side=liquidity_side(tracked.order_type),
            ts_event=ts_event,
        )
        self._store.record_fill(exec_id, ts_event)
        return True

    def _commission(self, instrument: Instrument, quantity: Quantity) -> Money:
        per_contract = self._commissions.get(contract_root(instrument.raw_symbol.value), _ZERO)
        return Money(per_contract * quantity.as_decimal(), instrument.quote_currency)

    # -- SNAPSHOTS ---------------------------------------------------------------------------------

    async def _fetch_open_orders(self, server_order_id: str = "") -> list[DtcMessage]:
        answers = await self._dtc.request(
            {
                "Type": MessageType.OPEN_ORDERS_REQUEST,
                "RequestAllOrders": 0 if server_order_id else 1,
                "ServerOrderID": server_order_id,
                "TradeAccount": self._account,
            },
            responses=(MessageType.ORDER_UPDATE,),
            rejects=(MessageType.OPEN_ORDERS_REJECT,),
        )
        return [m for m in answers if not m.flag("NoOrders") and m.text("ServerOrderID")]

    async def _fetch_fills(self, since_ns: int | None, server_order_id: str = "") -> list[DtcMessage]:
        request: dict[str, Any] = {
            "Type": MessageType.HISTORICAL_ORDER_FILLS_REQUEST,
            "TradeAccount": self._account,
            "ServerOrderID": server_order_id,
        }
        if since_ns:
            request["StartDateTime"] = max(1, since_ns // 1_000_000_000 - _FILL_OVERLAP_S)
        else:
            request["NumberOfDays"] = self._config.reconciliation_lookback_days
        answers = await self._dtc.request(
            request,
            responses=(MessageType.HISTORICAL_ORDER_FILL_RESPONSE,),
            rejects=(MessageType.HISTORICAL_ORDER_FILLS_REJECT,),
        )
        return [m for m in answers if not m.flag("NoOrderFills") and m.text("UniqueExecutionID")]

    async def _fetch_positions(self) -> list[DtcMessage]:
        answers = await self._dtc.request(
            {"Type": MessageType.CURRENT_POSITIONS_REQUEST, "TradeAccount": self._account},
            responses=(MessageType.POSITION_UPDATE,),
            rejects=(MessageType.CURRENT_POSITIONS_REJECT,),
        )
        return [m for m in answers if not m.flag("NoPositions") and m.text("Symbol")]

    def _definition_of(self, message: DtcMessage) -> tuple[SymbolDefinition, Instrument] | None:
        definition = self._by_symbol.get(message.text("Symbol"))
        if definition is None:
            return None
        instrument = self._cache.instrument(definition.instrument_id)
        return (definition, instrument) if instrument is not None else None

    def _latest_server_id(self, server_order_id: str) -> tuple[str, OrderRecord | None]:
        record = self._store.by_server_id(server_order_id)
        latest = record.server_order_id if record is not None and record.server_order_id else server_order_id
        return latest, record

    # -- RECONCILIATION ----------------------------------------------------------------------------

    async def generate_order_status_report(self, command: GenerateOrderStatusReport) -> OrderStatusReport | None:
        """The status of one order at Sierra Chart (open, or rebuilt from its fills), or ``None``."""
        try:
            server_id = command.venue_order_id.value if command.venue_order_id else ""
            record = self._store.by_client_order_id(command.client_order_id.value) if command.client_order_id else None
            if not server_id and record is not None and record.server_order_id:
                server_id = record.server_order_id
            now = self._clock.timestamp_ns()
            opens = await self._fetch_open_orders(server_id)
            if not server_id and record is not None:
                opens = [m for m in opens if m.text("ClientOrderID") == record.dtc_client_order_id]
            for message in opens:
                found = self._definition_of(message)
                if found is not None:
                    rec = self._store.by_server_id(message.text("ServerOrderID")) or record
                    return open_order_report(
                        message,
                        account_id=self.account_id,
                        definition=found[0],
                        instrument=found[1],
                        record=rec,
                        ts_init=now,
                    )
            if not server_id or record is None:
                return None
            fills = await self._fetch_fills(None, server_id)
            return self._closed_reports({record.dtc_client_order_id: record}, fills, set(), now).get(
                record.client_order_id
            )
        except DtcError as exc:
            self._log.warning(f"Cannot query order status: {exc}")
            return None

    async def generate_order_status_reports(self, command: GenerateOrderStatusReports) -> list[OrderStatusReport]:
        """Working orders at Sierra Chart, plus today's closed orders rebuilt from the store and fills."""
        now = self._clock.timestamp_ns()
        reports: list[OrderStatusReport] = []
        open_ids: set[str] = set()
        for message in await self._fetch_open_orders():
            found = self._definition_of(message)
            if found is None:
                continue
            server_id, record = self._latest_server_id(message.text("ServerOrderID"))
            open_ids.add(server_id)
            if record is None and message.text("ClientOrderID"):
                record = self._store.by_dtc_id(message.text("ClientOrderID"))
                if record is not None:
                    self._store.bind(record.dtc_client_order_id, server_id)
            reports.append(
                open_order_report(
                    message,
                    account_id=self.account_id,
                    definition=found[0],
                    instrument=found[1],
                    record=record,
                    ts_init=now,
                ),
            )
        if not command.open_only:
            since = int(command.start.value) if command.start is not None else None
            fills = await self._fetch_fills(since)
            records = {r.dtc_client_order_id: r for r in self._store.records()}
            reports.extend(self._closed_reports(records, fills, open_ids, now).values())
        if command.instrument_id is not None:
            reports = [r for r in reports if r.instrument_id == command.instrument_id]
        self._log.info(f"Generated {len(reports)} OrderStatusReport(s)")
        return reports

    def _closed_reports(
        self,
        records: dict[str, OrderRecord],
        fills: list[DtcMessage],
        open_ids: set[str],
        now: int,
    ) -> dict[str, OrderStatusReport]:
        """Reports for stored orders with fills that no longer work at the server."""
        summaries: dict[str, FillSummary] = {}
        for message in fills:
            record = self._store.by_server_id(message.text("ServerOrderID"))
            found = self._definition_of(message)
            if record is None or found is None or record.dtc_client_order_id not in records:
                continue
            if record.server_order_id in open_ids:
                continue
            price = found[0].to_price(message.number("Price") or 0.0).as_decimal()
            quantity = Decimal(repr(message.number("Quantity") or 0.0))
            ts = message.time_ns("DateTime") or now
            prior = summaries.get(record.client_order_id)
            if prior is None:
                summaries[record.client_order_id] = FillSummary(quantity, price * quantity, ts, ts)
            else:
                summaries[record.client_order_id] = FillSummary(
                    prior.quantity + quantity,
                    prior.notional + price * quantity,
                    min(prior.first_ns, ts),
                    max(prior.last_ns, ts),
                )
        reports: dict[str, OrderStatusReport] = {}
        for client_order_id, summary in summaries.items():
            record = self._store.by_client_order_id(client_order_id)
            if record is None or record.server_order_id is None:
                continue
            instrument = self._cache.instrument(InstrumentId.from_str(record.instrument_id))
            if instrument is None:
                continue
            reports[client_order_id] = closed_order_report(
                record,
                summary,
                account_id=self.account_id,
                instrument=instrument,
                venue_order_id=VenueOrderId(record.server_order_id),
                ts_init=now,
            )
        return reports

    async def generate_fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        """Executions at Sierra Chart since ``command.start`` (else the lookback), keyed to nautilus orders."""
        now = self._clock.timestamp_ns()
        since = int(command.start.value) if command.start is not None else None
        reports: list[FillReport] = []
        for message in await self._fetch_fills(since):
            found = self._definition_of(message)
            if found is None:
                continue
            definition, instrument = found
            server_id, record = self._latest_server_id(message.text("ServerOrderID"))
            venue_order_id = VenueOrderId(server_id)
            if command.venue_order_id is not None and command.venue_order_id != venue_order_id:
                continue
            if command.instrument_id is not None and command.instrument_id != instrument.id:
                continue
            order_type = OrderType[record.order_type] if record is not None else OrderType.MARKET
            quantity = instrument.make_qty(message.number("Quantity") or 0.0)
            reports.append(
                fill_report(
                    message,
                    account_id=self.account_id,
                    definition=definition,
                    instrument=instrument,
                    venue_order_id=venue_order_id,
                    client_order_id=ClientOrderId(record.client_order_id) if record is not None else None,
                    commission=self._commission(instrument, quantity),
                    order_type=order_type,
                    ts_init=now,
                ),
            )
        self._log.info(f"Generated {len(reports)} FillReport(s)")
        return reports

    async def generate_position_status_reports(
        self, command: GeneratePositionStatusReports
    ) -> list[PositionStatusReport]:
        """Net positions at Sierra Chart; every confirmed instrument without one is reported flat."""
        now = self._clock.timestamp_ns()
        by_instrument: dict[InstrumentId, DtcMessage] = {}
        for message in await self._fetch_positions():
            found = self._definition_of(message)
            if found is not None:
                by_instrument[found[1].id] = message
        reports = []
        for instrument_id, definition in self._definitions.items():
            if command.instrument_id is not None and command.instrument_id != instrument_id:
                continue
            instrument = self._cache.instrument(instrument_id)
            if instrument is None:
                continue
            reports.append(
                position_report(
                    by_instrument.get(instrument_id),
                    account_id=self.account_id,
                    definition=definition,
                    instrument=instrument,
                    ts_init=now,
                ),
            )
        return reports

    async def _resync(self) -> None:
        """After a reconnect: apply what happened while away (fills, cancels, lost orders), then check positions."""
        async with self._resync_lock:
            try:
                await self._refresh_balance()
                snapshot_ns = self._clock.timestamp_ns()
                opens = await self._fetch_open_orders()
                fills = await self._fetch_fills(self._store.last_fill_ns or None)
            except DtcError as exc:
                self._log.warning(f"Reconciliation after reconnect interrupted: {exc}")
                return
            self.resyncs += 1
            applied = self._apply_missed_fills(fills)
            working = self._apply_open_orders(opens)
            closed = self._close_vanished(working, snapshot_ns)
            self._log.info(
                f"Reconciled after reconnect: {applied} missed fill(s), {len(working)} working, "
                f"{closed} closed while away",
            )
            if self._position_check is not None:
                self._position_check.cancel()
            self._position_check = self.create_task(self._check_positions(), log_msg="sierrachart-position-check")

    def _apply_missed_fills(self, fills: list[DtcMessage]) -> int:
        applied = 0
        for message in sorted(fills, key=lambda m: m.time_ns("DateTime") or 0):
            exec_id = message.text("UniqueExecutionID")
            if exec_id in self._emitted_exec_ids:
                continue
            server_id = message.text("ServerOrderID")
            record = self._store.by_server_id(server_id)
            tracked = self._tracked_for(ClientOrderId(record.client_order_id)) if record is not None else None
            if tracked is None:
                client_order_id = self._cache.client_order_id(VenueOrderId(server_id))
                tracked = self._tracked_for(client_order_id) if client_order_id is not None else None
            if tracked is None:
                self._log.warning(
                    f"Fill {exec_id} of unknown server order {server_id}: left to position reconciliation"
                )
                continue
            if tracked.venue_order_id is None:
                tracked.venue_order_id = VenueOrderId(
                    record.server_order_id if record and record.server_order_id else server_id
                )
            ts = message.time_ns("DateTime") or self._clock.timestamp_ns()
            if self._emit_fill(tracked, exec_id, message.number("Quantity") or 0.0, message.number("Price") or 0.0, ts):
                applied += 1
        return applied

    def _apply_open_orders(self, opens: list[DtcMessage]) -> set[ClientOrderId]:
        now = self._clock.timestamp_ns()
        working: set[ClientOrderId] = set()
        for message in opens:
            tracked = self._find(message)
            if tracked is None:
                continue
            working.add(tracked.client_order_id)
            replaced = self._bind(tracked, message)
            self._accept(tracked, now)
            self._apply_terms(tracked, message, now, venue_order_id_modified=replaced)
        return working

    def _close_vanished(self, working: set[ClientOrderId], snapshot_ns: int) -> int:
        """Orders that were working before the drop and are neither working now nor completely filled."""
        now = self._clock.timestamp_ns()
        closed = 0
        for tracked in list(self._tracked.values()):
            if tracked.closed or tracked.client_order_id in working or tracked.submitted_ns >= snapshot_ns:
                continue
            if tracked.accepted:
                self._close_canceled(tracked, False, now)
            else:
                self._reject(tracked, "order not known to Sierra Chart after reconnect (lost in the disconnect)", now)
            closed += 1
        return closed

    async def _check_positions(self) -> None:
        """Compare the server's net positions with nautilus's; align nautilus on a mismatch."""
        await asyncio.sleep(_POSITION_CHECK_DELAY_S)
        try:
            reports = await self.generate_position_status_reports(
                GeneratePositionStatusReports(
                    instrument_id=None,
                    start=None,
                    end=None,
                    command_id=UUID4(),
                    ts_init=self._clock.timestamp_ns(),
                ),
            )
        except DtcError as exc:
            self._log.warning(f"Position check after reconnect skipped: {exc}")
            return
        net: dict[InstrumentId, Decimal] = defaultdict(Decimal)
        for position in self._cache.positions_open(venue=self.venue):
            net[position.instrument_id] += position.signed_decimal_qty()
        for report in reports:
            if net.get(report.instrument_id, _ZERO) != report.signed_decimal_qty:
                self._log.error(
                    f"Position mismatch for {report.instrument_id} after reconnect: nautilus "
                    f"{net.get(report.instrument_id, _ZERO)}, Sierra Chart {report.signed_decimal_qty}; aligning",
                )
                self._send_position_status_report(report)
