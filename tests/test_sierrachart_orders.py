"""Order life cycles through a real nautilus TradingNode, the Sierra Chart execution client and the DTC
simulator over real sockets: every order type, partial fills, cancel, cancel-replace, OCO, brackets
held at the venue, and rejects carrying the server's text.
"""

from decimal import Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import CancelAllOrders
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderAccepted
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.orders import LimitOrder
from nautilus_trader.model.orders import OrderList

from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator import protocol as p
from tests.sierrachart_helpers import LiveRig
from tests.sierrachart_helpers import run_async
from tests.sierrachart_helpers import sim_config
from tests.sierrachart_helpers import start_rig


def _qty(rig: LiveRig, n: int):
    return rig.instrument().make_qty(n)


def _px(rig: LiveRig, value: float):
    return rig.instrument().make_price(value)


def _oco_pair(
    rig: LiveRig, first: tuple[OrderSide, float], second: tuple[OrderSide, float], quantity: int
) -> tuple[LimitOrder, LimitOrder]:
    """Two limit orders linked one-cancels-other (nautilus's factory builds OCO only inside brackets)."""
    s = rig.strategy
    ids = [s.order_factory.generate_client_order_id(), s.order_factory.generate_client_order_id()]
    list_id = s.order_factory.generate_order_list_id()
    legs = []
    for n, (side, price) in enumerate((first, second)):
        legs.append(
            LimitOrder(
                trader_id=s.trader_id,
                strategy_id=s.id,
                instrument_id=s.instrument_id,
                client_order_id=ids[n],
                order_side=side,
                quantity=_qty(rig, quantity),
                price=_px(rig, price),
                init_id=UUID4(),
                ts_init=s.clock.timestamp_ns(),
                contingency_type=ContingencyType.OCO,
                order_list_id=list_id,
                linked_order_ids=[ids[1 - n]],
            ),
        )
    return legs[0], legs[1]


def _sim_order(rig: LiveRig, client_order_id) -> object:
    definition = rig.exec_client.definition(rig.instrument().id)
    assert definition is not None
    for order in rig.sim.orders.values():
        if order.client_order_id == client_order_id.value:
            return order
    raise AssertionError(f"simulator never saw {client_order_id}")


def test_market_order_fills_and_opens_position_with_reported_account() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            order = s.order_factory.market(s.instrument_id, OrderSide.BUY, _qty(rig, 2))
            s.submit_order(order)
            await rig.wait(
                lambda: rig.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="market fill"
            )
            await rig.settle()
            fills = s.events_of(OrderFilled, order.client_order_id)
            assert len(fills) == 1
            assert fills[0].last_px == _px(rig, 5000.25)
            assert fills[0].trade_id.value.startswith("E")
            assert fills[0].commission.as_decimal() == Decimal("4.50")  # ES 2.25 per contract, as in the backtest
            position = rig.cache.positions_open()[0]
            assert position.signed_qty == 2
            account = rig.cache.account_for_venue(rig.exec_client.venue)
            server_cash = sim.exchange.balance_update("Sim1")["CashBalance"]
            assert server_cash == 99995.50
            if not account.calculate_account_state:  # reported by the server, not computed by nautilus
                assert account.balance_total().as_decimal() == Decimal("99995.50")
            # else: a backtest in this test process registered GLBX as a calculated issuer (process-global in
            # nautilus), so nautilus also books the commission itself; `mia live` runs in its own process.
            assert (
                rig.cache.order(order.client_order_id).venue_order_id.value
                == _sim_order(rig, order.client_order_id).server_order_id
            )
            await rig.stop()

    run_async(scenario)


def test_limit_stop_stop_limit_and_if_touched_orders_rest_then_fill_at_the_venue() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(limit_fill_price="limit")) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            limit = s.order_factory.limit(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 4999.0))
            stop = s.order_factory.stop_market(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 5002.0))
            stop_limit = s.order_factory.stop_limit(
                s.instrument_id, OrderSide.SELL, _qty(rig, 1), _px(rig, 4997.0), _px(rig, 4998.0)
            )
            for order in (limit, stop, stop_limit):
                s.submit_order(order)
            await rig.wait(
                lambda: all(
                    rig.cache.order(o.client_order_id).status == OrderStatus.ACCEPTED for o in (limit, stop, stop_limit)
                ),
                what="accepted",
            )
            assert sum(1 for o in sim.orders.values() if o.working) == 3
            rig.quote(4998.75, 4999.0)  # ask reaches the buy limit
            await rig.wait(lambda: rig.cache.order(limit.client_order_id).is_closed, what="limit fill")
            assert s.events_of(OrderFilled, limit.client_order_id)[0].last_px == _px(rig, 4999.0)
            rig.quote(5002.0, 5002.25)
            rig.trade(5002.0)  # last trade at the stop: the buy stop triggers and fills at the ask
            await rig.wait(lambda: rig.cache.order(stop.client_order_id).is_closed, what="stop fill")
            assert s.events_of(OrderFilled, stop.client_order_id)[0].last_px == _px(rig, 5002.25)
            rig.quote(4998.5, 4998.75)
            rig.trade(4998.5)  # above the sell stop: not triggered
            await rig.settle()
            assert not rig.cache.order(stop_limit.client_order_id).is_closed
            rig.quote(4998.25, 4998.5)
            rig.trade(4998.0)  # sell stop-limit triggers at 4998, bid 4998.25 >= limit 4997 fills at the bid
            await rig.wait(lambda: rig.cache.order(stop_limit.client_order_id).is_closed, what="stop-limit fill")
            assert s.events_of(OrderFilled, stop_limit.client_order_id)[0].last_px == _px(rig, 4998.25)
            assert rig.cache.positions_open()[0].signed_qty == 1
            touched = s.order_factory.market_if_touched(s.instrument_id, OrderSide.SELL, _qty(rig, 1), _px(rig, 5000.0))
            s.submit_order(touched)
            await rig.wait(
                lambda: rig.cache.order(touched.client_order_id).status == OrderStatus.ACCEPTED, what="MIT accepted"
            )
            rig.quote(5000.0, 5000.25)
            rig.trade(5000.0)  # touched: the sell becomes a market order at the bid
            await rig.wait(lambda: rig.cache.order(touched.client_order_id).is_closed, what="MIT fill")
            assert s.events_of(OrderFilled, touched.client_order_id)[0].last_px == _px(rig, 5000.0)
            assert rig.cache.positions_open() == []
            await rig.stop()

    run_async(scenario)


def test_partial_fills_follow_the_displayed_size() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(depth_limited_fills=True)) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25, ask_size=1)
            order = s.order_factory.market(s.instrument_id, OrderSide.BUY, _qty(rig, 3))
            s.submit_order(order)
            await rig.wait(
                lambda: rig.cache.order(order.client_order_id).status == OrderStatus.PARTIALLY_FILLED, what="partial"
            )
            rig.quote(5000.25, 5000.5, ask_size=1)
            rig.quote(5000.5, 5000.75, ask_size=4)
            await rig.wait(lambda: rig.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="filled")
            fills = s.events_of(OrderFilled, order.client_order_id)
            assert [(f.last_qty.as_double(), f.last_px.as_double()) for f in fills] == [
                (1, 5000.25),
                (1, 5000.5),
                (1, 5000.75),
            ]
            assert len({f.trade_id for f in fills}) == 3
            assert rig.cache.order(order.client_order_id).avg_px == 5000.5
            await rig.stop()

    run_async(scenario)


def test_cancel_and_cancel_replace_including_a_server_order_id_change() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(replace_changes_server_order_id=True, limit_fill_price="limit")) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            first = s.order_factory.limit(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 4990.0))
            second = s.order_factory.limit(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 4991.0))
            s.submit_order(first)
            s.submit_order(second)
            await rig.wait(
                lambda: rig.cache.order(second.client_order_id).status == OrderStatus.ACCEPTED, what="accepted"
            )
            s.cancel_order(rig.cache.order(first.client_order_id))
            await rig.wait(
                lambda: rig.cache.order(first.client_order_id).status == OrderStatus.CANCELED, what="canceled"
            )
            old_venue_id = rig.cache.order(second.client_order_id).venue_order_id
            s.modify_order(rig.cache.order(second.client_order_id), quantity=_qty(rig, 2), price=_px(rig, 4995.0))
            await rig.wait(lambda: s.events_of(OrderUpdated, second.client_order_id), what="updated")
            modified = rig.cache.order(second.client_order_id)
            assert modified.quantity == 2 and modified.price == _px(rig, 4995.0)
            assert modified.venue_order_id != old_venue_id  # the server renumbered it
            s.modify_order(modified, price=_px(rig, 4994.0))
            await rig.wait(
                lambda: rig.cache.order(second.client_order_id).price == _px(rig, 4994.0), what="second update"
            )
            rig.quote(4993.0, 4994.0, ask_size=5)
            await rig.wait(
                lambda: rig.cache.order(second.client_order_id).status == OrderStatus.FILLED, what="fill at new price"
            )
            assert s.events_of(OrderFilled, second.client_order_id)[0].last_px == _px(rig, 4994.0)
            # a replace the server refuses surfaces its text as a modify reject
            third = s.order_factory.limit(s.instrument_id, OrderSide.SELL, _qty(rig, 1), _px(rig, 5010.0))
            s.submit_order(third)
            await rig.wait(
                lambda: rig.cache.order(third.client_order_id).status == OrderStatus.ACCEPTED, what="third accepted"
            )
            sim.config.max_order_quantity = 5
            s.modify_order(rig.cache.order(third.client_order_id), quantity=_qty(rig, 9))
            await rig.wait(lambda: s.events_of(OrderModifyRejected, third.client_order_id), what="modify reject")
            assert s.events_of(OrderModifyRejected, third.client_order_id)[0].reason == "Invalid order quantity"
            await rig.stop()

    run_async(scenario)


def test_cancel_all_by_side_then_a_cancel_all_not_sent_by_a_strategy() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            buys = [
                s.order_factory.limit(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, p))
                for p in (4990.0, 4991.0)
            ]
            sell = s.order_factory.limit(s.instrument_id, OrderSide.SELL, _qty(rig, 1), _px(rig, 5010.0))
            for order in (*buys, sell):
                s.submit_order(order)
            await rig.wait(
                lambda: all(rig.cache.order(o.client_order_id).status == OrderStatus.ACCEPTED for o in (*buys, sell)),
                what="accepted",
            )
            s.cancel_all_orders(s.instrument_id, order_side=OrderSide.BUY)
            await rig.wait(
                lambda: all(rig.cache.order(o.client_order_id).status == OrderStatus.CANCELED for o in buys),
                what="buys canceled",
            )
            await rig.settle()
            assert rig.cache.order(sell.client_order_id).status == OrderStatus.ACCEPTED  # the other side stays
            assert [o.client_order_id for o in sim.exchange.working_orders()] == [sell.client_order_id.value]
            # a cancel-all that does not come from a strategy (a risk actor's, an operator's): nothing is
            # marked PENDING_CANCEL beforehand, and the open order must still be canceled
            command = CancelAllOrders(
                trader_id=s.trader_id,
                strategy_id=s.id,
                instrument_id=s.instrument_id,
                order_side=OrderSide.NO_ORDER_SIDE,
                command_id=UUID4(),
                ts_init=s.clock.timestamp_ns(),
            )
            rig.node.kernel.exec_engine.execute(command)
            await rig.wait(
                lambda: rig.cache.order(sell.client_order_id).status == OrderStatus.CANCELED, what="sell canceled"
            )
            await rig.settle()
            assert sim.exchange.working_orders() == []
            assert not s.events_of(OrderFilled)
            await rig.stop()

    run_async(scenario)


def test_rejects_surface_the_servers_text() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(max_order_quantity=10)) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            too_big = s.order_factory.market(s.instrument_id, OrderSide.BUY, _qty(rig, 20))
            s.submit_order(too_big)
            await rig.wait(lambda: s.events_of(OrderRejected, too_big.client_order_id), what="quantity reject")
            assert s.events_of(OrderRejected, too_big.client_order_id)[0].reason == "Invalid order quantity"
            symbol = rig.symbol()
            spec = sim.config.symbols.pop(symbol)  # the service stops knowing the symbol
            unknown = s.order_factory.limit(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 4990.0))
            s.submit_order(unknown)
            await rig.wait(lambda: s.events_of(OrderRejected, unknown.client_order_id), what="symbol reject")
            assert s.events_of(OrderRejected, unknown.client_order_id)[0].reason == f"Symbol not found: {symbol}"
            sim.config.symbols[symbol] = spec
            sim.set_allow_trading(False)
            refused = s.order_factory.limit(s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 4990.0))
            s.submit_order(refused)
            await rig.wait(lambda: s.events_of(OrderRejected, refused.client_order_id), what="trading-disabled reject")
            assert "Allow Trading is disabled" in s.events_of(OrderRejected, refused.client_order_id)[0].reason
            assert rig.cache.positions_open() == []
            await rig.stop()

    run_async(scenario)


def test_bracket_exits_live_at_the_venue_and_the_target_cancels_the_stop() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(limit_fill_price="limit")) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            bracket: OrderList = s.order_factory.bracket(
                instrument_id=s.instrument_id,
                order_side=OrderSide.BUY,
                quantity=_qty(rig, 1),
                sl_trigger_price=_px(rig, 4990.0),
                tp_price=_px(rig, 5010.0),
            )
            entry, stop, target = bracket.orders
            s.submit_order_list(bracket)
            await rig.wait(
                lambda: rig.cache.order(entry.client_order_id).status == OrderStatus.FILLED, what="entry fill"
            )
            await rig.wait(
                lambda: all(rig.cache.order(o.client_order_id).status == OrderStatus.ACCEPTED for o in (stop, target)),
                what="exits working",
            )
            sim_stop = _sim_order(rig, stop.client_order_id)
            sim_target = _sim_order(rig, target.client_order_id)
            parent = _sim_order(rig, entry.client_order_id)
            assert sim_stop.parent_id == parent.server_order_id and sim_target.parent_id == parent.server_order_id
            assert sim_stop.oco_link == sim_target.server_order_id and sim_stop.status == p.STATUS_OPEN
            assert rig.cache.positions_open()[0].signed_qty == 1
            rig.quote(5010.0, 5010.25)  # bid reaches the sell target
            await rig.wait(
                lambda: rig.cache.order(target.client_order_id).status == OrderStatus.FILLED, what="target fill"
            )
            await rig.wait(
                lambda: rig.cache.order(stop.client_order_id).status == OrderStatus.CANCELED,
                what="stop canceled by the venue",
            )
            assert s.events_of(OrderFilled, target.client_order_id)[0].last_px == _px(rig, 5010.0)
            assert rig.cache.positions_open() == []
            assert not any(o.working for o in sim.orders.values())
            await rig.stop()

    run_async(scenario)


def test_bracket_stop_exit_and_oco_pair_reduce_each_other() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(limit_fill_price="limit")) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            bracket = s.order_factory.bracket(
                instrument_id=s.instrument_id,
                order_side=OrderSide.SELL,
                quantity=_qty(rig, 2),
                sl_trigger_price=_px(rig, 5005.0),
                tp_price=_px(rig, 4990.0),
                entry_order_type=OrderType.LIMIT,
                entry_price=_px(rig, 5001.0),
            )
            entry, stop, target = bracket.orders
            s.submit_order_list(bracket)
            await rig.wait(
                lambda: rig.cache.order(stop.client_order_id).status == OrderStatus.ACCEPTED, what="child accepted"
            )
            assert _sim_order(rig, stop.client_order_id).status == p.STATUS_PENDING_CHILD  # held until the entry fills
            rig.quote(5001.0, 5001.25)  # sell entry at 5001 fills
            await rig.wait(
                lambda: rig.cache.order(entry.client_order_id).status == OrderStatus.FILLED, what="entry fill"
            )
            rig.quote(5005.0, 5005.25)
            rig.trade(5005.0)  # buy stop triggers at the market
            await rig.wait(lambda: rig.cache.order(stop.client_order_id).status == OrderStatus.FILLED, what="stop fill")
            await rig.wait(
                lambda: rig.cache.order(target.client_order_id).status == OrderStatus.CANCELED, what="target canceled"
            )
            assert s.events_of(OrderFilled, stop.client_order_id)[0].last_px == _px(rig, 5005.25)
            assert rig.cache.positions_open() == []
            # a plain OCO pair: a partial fill of one leg reduces the other, a full fill cancels it
            upper, lower = _oco_pair(rig, (OrderSide.SELL, 5010.0), (OrderSide.BUY, 4995.0), 3)
            s.submit_order_list(OrderList(upper.order_list_id, [upper, lower]))
            await rig.wait(
                lambda: rig.cache.order(lower.client_order_id).status == OrderStatus.ACCEPTED, what="oco accepted"
            )
            rig.quote(4994.0, 4995.0, ask_size=1)  # one lot of the buy leg fills
            await rig.wait(lambda: rig.cache.order(upper.client_order_id).quantity == 2, what="other leg reduced")
            rig.quote(4994.0, 4995.0, ask_size=5)
            await rig.wait(
                lambda: rig.cache.order(upper.client_order_id).status == OrderStatus.CANCELED, what="other leg canceled"
            )
            assert rig.cache.order(lower.client_order_id).status == OrderStatus.FILLED
            await rig.stop()

    run_async(scenario)


def test_day_orders_expire_at_the_session_close() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            order = s.order_factory.limit(
                s.instrument_id, OrderSide.BUY, _qty(rig, 1), _px(rig, 4990.0), time_in_force=TimeInForce.DAY
            )
            s.submit_order(order)
            await rig.wait(
                lambda: rig.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted"
            )
            sim.session_close()
            await rig.wait(lambda: rig.cache.order(order.client_order_id).status == OrderStatus.EXPIRED, what="expired")
            assert s.events_of(OrderExpired, order.client_order_id)
            assert not s.events_of(OrderCanceled, order.client_order_id)
            assert len(s.events_of(OrderAccepted, order.client_order_id)) == 1
            await rig.stop()

    run_async(scenario)


def test_duplicated_fill_and_fill_before_ack_are_applied_once() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(duplicate_next_fill=True, fill_before_ack=True)) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            order = s.order_factory.market(s.instrument_id, OrderSide.SELL, _qty(rig, 1))
            s.submit_order(order)
            await rig.wait(lambda: rig.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="fill")
            await rig.settle()
            assert len(s.events_of(OrderFilled, order.client_order_id)) == 1
            assert len(s.events_of(OrderAccepted, order.client_order_id)) == 1
            assert rig.cache.positions_open()[0].signed_qty == -1
            assert len(sim.sent_of(p.ORDER_UPDATE)) >= 3  # fill, its duplicate, the late acknowledgement
            await rig.stop()

    run_async(scenario)
