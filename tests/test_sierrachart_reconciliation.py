"""Disconnects, reconnects, restarts: nothing lost or doubled, through a real TradingNode and the DTC
simulator over real sockets.
"""

from pathlib import Path

from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.identifiers import InstrumentId

from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator import protocol as p
from tests.sierrachart_helpers import ES
from tests.sierrachart_helpers import LiveRig
from tests.sierrachart_helpers import Probe
from tests.sierrachart_helpers import ProbeConfig
from tests.sierrachart_helpers import run_async
from tests.sierrachart_helpers import sim_config
from tests.sierrachart_helpers import start_rig


def _accepted(client_order_id: str):
    return lambda m: (
        m.get("OrderUpdateReason") == p.REASON_NEW_ORDER_ACCEPTED and m.get("ClientOrderID") == client_order_id
    )


def _fills_in_cache(rig: LiveRig, client_order_id) -> int:
    order = rig.cache.order(client_order_id)
    return sum(1 for e in order.events if isinstance(e, OrderFilled))


def test_disconnect_between_acceptance_and_fill_reconciles_exactly_one_fill() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(limit_fill_price="limit")) as sim:
            rig = await start_rig(sim)
            alerts: list[dict] = []
            rig.node.kernel.msgbus.subscribe(topic="mia.alerts", handler=alerts.append)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            order = s.order_factory.limit(
                s.instrument_id, OrderSide.BUY, rig.instrument().make_qty(2), rig.instrument().make_price(4999.0)
            )
            sim.disconnect_after(_accepted(order.client_order_id.value))
            s.submit_order(order)
            await rig.wait(
                lambda: rig.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted"
            )
            await rig.wait(lambda: not rig.exec_client.dtc.is_connected, what="dropped")
            sim.quote(rig.symbol(), 4998.75, 10, 4999.0, 10)  # fills while the client is away
            assert sim.orders[rig.cache.order(order.client_order_id).venue_order_id.value].status == p.STATUS_FILLED
            await rig.wait(lambda: rig.exec_client.resyncs == 1, timeout=10, what="reconnect and reconciliation")
            await rig.wait(
                lambda: rig.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="fill applied"
            )
            await rig.settle(0.2)
            assert len(s.events_of(OrderFilled, order.client_order_id)) == 1
            assert _fills_in_cache(rig, order.client_order_id) == 1
            assert rig.cache.positions_open()[0].signed_qty == 2
            # the alert actor's input: the drop and the return, in that order
            kinds = [a["kind"] for a in alerts if a["source"] == "SIERRACHART"]
            assert kinds[:2] == ["disconnect", "reconnect"], kinds
            # the fills history is asked again on a second reconnect: still one fill
            sim.drop_connections("rst")
            await rig.wait(lambda: rig.exec_client.resyncs == 2, timeout=10, what="second reconciliation")
            await rig.settle(0.2)
            assert len(s.events_of(OrderFilled, order.client_order_id)) == 1
            assert rig.cache.positions_open()[0].signed_qty == 2
            await rig.stop()

    run_async(scenario)


def test_market_order_filled_in_the_same_step_as_the_dropped_acknowledgement() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            rig.quote(5000.0, 5000.25)
            order = s.order_factory.market(s.instrument_id, OrderSide.SELL, rig.instrument().make_qty(1))
            sim.disconnect_after(_accepted(order.client_order_id.value), mode="rst")
            s.submit_order(order)
            await rig.wait(lambda: rig.exec_client.resyncs == 1, timeout=10, what="reconnect")
            await rig.wait(lambda: rig.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="filled")
            await rig.settle(0.2)
            assert len(s.events_of(OrderFilled, order.client_order_id)) == 1
            assert rig.cache.positions_open()[0].signed_qty == -1
            await rig.stop()

    run_async(scenario)


def test_while_away_fills_partials_and_external_cancels_are_all_recovered() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config(limit_fill_price="limit")) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            instrument = rig.instrument()
            rig.quote(5000.0, 5000.25)
            resting = s.order_factory.limit(
                s.instrument_id, OrderSide.BUY, instrument.make_qty(2), instrument.make_price(4990.0)
            )
            partial = s.order_factory.limit(
                s.instrument_id, OrderSide.SELL, instrument.make_qty(3), instrument.make_price(5010.0)
            )
            doomed = s.order_factory.limit(
                s.instrument_id, OrderSide.BUY, instrument.make_qty(1), instrument.make_price(4980.0)
            )
            for order in (resting, partial, doomed):
                s.submit_order(order)
            await rig.wait(
                lambda: all(
                    rig.cache.order(o.client_order_id).status == OrderStatus.ACCEPTED
                    for o in (resting, partial, doomed)
                ),
                what="accepted",
            )
            rig.quote(5010.0, 5010.25, bid_size=1)  # one of three fills live
            await rig.wait(
                lambda: rig.cache.order(partial.client_order_id).status == OrderStatus.PARTIALLY_FILLED,
                what="live partial",
            )
            sim.drop_connections("rst")
            await rig.wait(lambda: not rig.exec_client.dtc.is_connected, what="dropped")
            symbol = rig.symbol()
            sim.quote(symbol, 5010.0, 1, 5010.25, 5)  # a second lot of the sell fills while away
            sim.quote(symbol, 4989.75, 5, 4990.0, 5)  # the buy limit fills completely while away
            sim.cancel_external(rig.cache.order(doomed.client_order_id).venue_order_id.value)
            await rig.wait(lambda: rig.exec_client.resyncs == 1, timeout=10, what="reconnect")
            await rig.wait(
                lambda: rig.cache.order(resting.client_order_id).status == OrderStatus.FILLED, what="resting filled"
            )
            await rig.wait(
                lambda: rig.cache.order(doomed.client_order_id).status == OrderStatus.CANCELED, what="canceled"
            )
            await rig.settle(0.2)
            partial_order = rig.cache.order(partial.client_order_id)
            assert partial_order.status == OrderStatus.PARTIALLY_FILLED and partial_order.filled_qty == 2
            assert len(s.events_of(OrderFilled, partial.client_order_id)) == 2
            assert len(s.events_of(OrderFilled, resting.client_order_id)) == 1
            assert len(s.events_of(OrderCanceled, doomed.client_order_id)) == 1
            assert rig.cache.positions_open() == []  # bought 2, sold 2
            assert sim.exchange.positions[("Sim1", symbol)].quantity == 0
            await rig.stop()

    run_async(scenario)


def test_orders_lost_in_the_drop_or_sent_while_away_are_rejected() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            instrument = rig.instrument()
            rig.quote(5000.0, 5000.25)
            sim.pause(heartbeats=False, reading=True)  # the server stops reading: the next order never arrives
            lost = s.order_factory.limit(
                s.instrument_id, OrderSide.BUY, instrument.make_qty(1), instrument.make_price(4990.0)
            )
            s.submit_order(lost)
            await rig.wait(
                lambda: rig.cache.order(lost.client_order_id).status == OrderStatus.SUBMITTED, what="submitted"
            )
            sim.drop_connections("rst")
            sim.resume()
            await rig.wait(lambda: not rig.exec_client.dtc.is_connected, what="dropped")
            away = s.order_factory.market(s.instrument_id, OrderSide.BUY, instrument.make_qty(1))
            s.submit_order(away)
            await rig.wait(lambda: s.events_of(OrderRejected, away.client_order_id), what="refused while away")
            assert "not connected" in s.events_of(OrderRejected, away.client_order_id)[0].reason
            await rig.wait(lambda: rig.exec_client.resyncs == 1, timeout=10, what="reconnect")
            await rig.wait(lambda: s.events_of(OrderRejected, lost.client_order_id), what="lost order resolved")
            assert "lost in the disconnect" in s.events_of(OrderRejected, lost.client_order_id)[0].reason
            assert not any(o.client_order_id == lost.client_order_id.value for o in sim.orders.values())
            await rig.stop()

    run_async(scenario)


def test_trading_disabled_on_reconnect_and_logoff_without_reconnect_stop_trading() -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            s = rig.strategy
            instrument = rig.instrument()
            rig.quote(5000.0, 5000.25)
            sim.set_allow_trading(False)
            sim.drop_connections("fin")
            await rig.wait(
                lambda: rig.exec_client.fatal_error is not None, timeout=10, what="trading refused after reconnect"
            )
            assert "Allow Trading" in rig.exec_client.fatal_error
            refused = s.order_factory.market(s.instrument_id, OrderSide.BUY, instrument.make_qty(1))
            s.submit_order(refused)
            await rig.wait(lambda: s.events_of(OrderRejected, refused.client_order_id), what="refused locally")
            assert "trading is off" in s.events_of(OrderRejected, refused.client_order_id)[0].reason
            assert not sim.received_of(p.SUBMIT_NEW_SINGLE_ORDER)
            await rig.stop()
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim)
            reconnects = rig.exec_client.dtc.reconnects
            sim.drop_connections("logoff", reason="Sierra Chart is closing", do_not_reconnect=True)
            await rig.wait(lambda: rig.exec_client.fatal_error is not None, timeout=10, what="no reconnect")
            assert "DoNotReconnect" in rig.exec_client.fatal_error
            await rig.settle(0.3)
            assert rig.exec_client.dtc.reconnects == reconnects and sim.logons == 1
            await rig.stop()

    run_async(scenario)


def test_restart_mid_position_recovers_position_and_working_exits(tmp_path: Path) -> None:
    state = tmp_path / "sierrachart-state.jsonl"

    async def scenario() -> None:
        async with DtcSimulator(sim_config(limit_fill_price="limit")) as sim:
            rig = await start_rig(sim, exec_overrides={"state_path": str(state)})
            s = rig.strategy
            instrument = rig.instrument()
            rig.quote(5000.0, 5000.25)
            bracket = s.order_factory.bracket(
                instrument_id=s.instrument_id,
                order_side=OrderSide.BUY,
                quantity=instrument.make_qty(2),
                sl_trigger_price=instrument.make_price(4990.0),
                tp_price=instrument.make_price(5010.0),
            )
            entry, stop, target = bracket.orders
            s.submit_order_list(bracket)
            await rig.wait(
                lambda: rig.cache.order(target.client_order_id).status == OrderStatus.ACCEPTED, what="bracket working"
            )
            await rig.wait(
                lambda: rig.cache.positions_open() and rig.cache.positions_open()[0].signed_qty == 2, what="long 2"
            )
            await rig.stop()  # keeps the exits working at the venue (cancel_orders_on_stop is off)
            assert sum(1 for o in sim.orders.values() if o.working) == 2

            claims = [InstrumentId.from_str(ES)]
            probe = Probe(ProbeConfig(instrument_id=ES, external_order_claims=claims, order_id_tag="001"))
            rig2 = await start_rig(sim, strategies=[probe], exec_overrides={"state_path": str(state)})
            await rig2.settle(0.2)
            positions = rig2.cache.positions_open()
            assert len(positions) == 1 and positions[0].signed_qty == 2
            assert positions[0].avg_px_open == 5000.25
            assert positions[0].strategy_id == probe.id
            recovered_stop = rig2.cache.order(stop.client_order_id)
            recovered_target = rig2.cache.order(target.client_order_id)
            assert recovered_stop is not None and recovered_stop.is_open and recovered_stop.strategy_id == probe.id
            assert recovered_target is not None and recovered_target.is_open
            assert recovered_target.price == instrument.make_price(5010.0)
            assert recovered_stop.trigger_price == instrument.make_price(4990.0)
            assert rig2.cache.order(entry.client_order_id).status == OrderStatus.FILLED
            assert len([e for e in rig2.cache.order(entry.client_order_id).events if isinstance(e, OrderFilled)]) == 1
            # the recovered exits keep working: the target fills, the venue cancels the stop
            rig2.quote(5010.0, 5010.25)
            await rig2.wait(
                lambda: rig2.cache.order(target.client_order_id).status == OrderStatus.FILLED, what="target fill"
            )
            await rig2.wait(
                lambda: rig2.cache.order(stop.client_order_id).status == OrderStatus.CANCELED, what="stop canceled"
            )
            await rig2.wait(lambda: rig2.cache.positions_open() == [], what="flat")
            await rig2.stop()

    run_async(scenario)


def test_cancel_orders_on_stop_leaves_nothing_working(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with DtcSimulator(sim_config()) as sim:
            rig = await start_rig(sim, exec_overrides={"cancel_orders_on_stop": True})
            s = rig.strategy
            instrument = rig.instrument()
            rig.quote(5000.0, 5000.25)
            order = s.order_factory.limit(
                s.instrument_id, OrderSide.BUY, instrument.make_qty(1), instrument.make_price(4990.0)
            )
            s.submit_order(order)
            await rig.wait(
                lambda: rig.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted"
            )
            await rig.stop()
            assert not any(o.working for o in sim.orders.values())
            assert sim.received_of(p.LOGOFF)

    run_async(scenario)
