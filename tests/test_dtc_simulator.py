"""The DTC server simulator against the protocol reference: wire behaviour over raw sockets, then the
trade service's matching, rejects, cancel/replace, OCO, brackets, time in force and scaling.
"""

import asyncio
import json
import time
from typing import Any

import pytest

from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator import SimExchange
from adapters.sierrachart.simulator import SimulatorConfig
from adapters.sierrachart.simulator import protocol as p


# -- raw sockets -----------------------------------------------------------------------------------


class Raw:
    """A bare DTC peer: bytes in, JSON out, no adapter code involved."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""

    @classmethod
    async def connect(cls, sim: DtcSimulator) -> "Raw":
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\x00")

    async def recv(self, timeout: float = 2.0) -> dict[str, Any]:
        while b"\x00" not in self.buffer:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.buffer += data
        frame, _, self.buffer = self.buffer.partition(b"\x00")
        return json.loads(frame)

    async def recv_type(self, kind: int, timeout: float = 2.0) -> dict[str, Any]:
        while True:
            message = await self.recv(timeout)
            if message["Type"] == kind:
                return message

    async def closed(self, timeout: float = 3.0) -> bool:
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except (ConnectionError, TimeoutError):
            return True


def run(scenario: Any, timeout: float = 20.0) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


def test_automatic_encoding_answers_with_the_documented_bytes_then_speaks_json() -> None:
    async def scenario() -> None:
        async with DtcSimulator() as sim:
            peer = await Raw.connect(sim)
            peer.writer.write(bytes.fromhex("10000600080000000200000044544300"))
            assert (await peer.reader.readexactly(16)).hex(" ") == "10 00 07 00 08 00 00 00 02 00 00 00 44 54 43 00"
            peer.send({"Type": 400, "RequestID": 9})  # before logon: ignored and recorded
            peer.send({"Type": 1, "ProtocolVersion": 8, "HeartbeatIntervalInSeconds": 10, "TradeMode": 2})
            logon = await peer.recv()
            assert logon["Type"] == 2 and logon["Result"] == 1 and logon["TradingIsSupported"] == 1
            assert sim.received_of(400)[0]["RequestID"] == 9
            peer.send({"Type": 400, "RequestID": 1})
            assert (await peer.recv())["TradeAccount"] == "Sim1"
            assert (await peer.recv())["MessageNumber"] == 2

    run(scenario)


def test_json_mode_answers_a_json_encoding_request_and_auto_sends_definitions() -> None:
    async def scenario() -> None:
        async with DtcSimulator(SimulatorConfig(encoding_mode="json", auto_send_security_definitions=True)) as sim:
            peer = await Raw.connect(sim)
            peer.send({"Type": 6, "ProtocolVersion": 8, "Encoding": 2, "ProtocolType": "DTC"})
            assert (await peer.recv()) == {"Type": 7, "ProtocolVersion": 8, "Encoding": 2, "ProtocolType": "DTC"}
            peer.send({"Type": 1, "ProtocolVersion": 8, "HeartbeatIntervalInSeconds": 10})
            await peer.recv_type(2)
            auto = await peer.recv_type(507)
            assert auto["RequestID"] == p.AUTO_SECURITY_DEFINITION_REQUEST_ID

    run(scenario)


def test_invalid_json_gets_a_logoff_and_a_silent_client_is_dropped() -> None:
    async def scenario() -> None:
        async with DtcSimulator(SimulatorConfig(encoding_mode="json")) as sim:
            peer = await Raw.connect(sim)
            peer.writer.write(b"{oops\x00")
            assert (await peer.recv()) == {"Type": 5, "Reason": "Invalid message", "DoNotReconnect": 0}
            assert await peer.closed()
            silent = await Raw.connect(sim)
            silent.send({"Type": 1, "ProtocolVersion": 8, "HeartbeatIntervalInSeconds": 1})
            await silent.recv_type(2)
            started = time.monotonic()
            assert await silent.closed(timeout=5.0)  # nothing sent for 2 x 1 s
            assert 1.5 < time.monotonic() - started < 4.5

    run(scenario)


def test_bad_credentials_and_forced_refusals() -> None:
    async def scenario() -> None:
        config = SimulatorConfig(encoding_mode="json", require_auth=True, username="u", password="pw")
        async with DtcSimulator(config) as sim:
            peer = await Raw.connect(sim)
            peer.send({"Type": 1, "Username": "u", "Password": "nope", "HeartbeatIntervalInSeconds": 10})
            refused = await peer.recv()
            assert refused["Result"] == p.LOGON_ERROR and refused["ResultText"] == "Invalid username or password"
            assert await peer.closed()
            sim.refuse_logons(p.LOGON_ERROR_NO_RECONNECT, "go away")
            peer = await Raw.connect(sim)
            peer.send({"Type": 1, "Username": "u", "Password": "pw", "HeartbeatIntervalInSeconds": 10})
            assert (await peer.recv())["Result"] == p.LOGON_ERROR_NO_RECONNECT
            sim.set_allow_trading(False)
            peer = await Raw.connect(sim)
            peer.send({"Type": 1, "Username": "u", "Password": "pw", "HeartbeatIntervalInSeconds": 10})
            logon = await peer.recv()
            assert logon["Result"] == 1 and logon["TradingIsSupported"] == 0 and logon["OCOOrdersSupported"] == 0

    run(scenario)


def test_disconnect_after_a_chosen_message_and_restart_with_state() -> None:
    async def scenario() -> None:
        async with DtcSimulator(SimulatorConfig(encoding_mode="json")) as sim:
            peer = await Raw.connect(sim)
            peer.send({"Type": 1, "HeartbeatIntervalInSeconds": 10})
            await peer.recv_type(2)
            sim.quote("ESZ25-CME", 5000.0, 5, 5000.25, 5)
            sim.disconnect_after(lambda m: m.get("OrderUpdateReason") == p.REASON_NEW_ORDER_ACCEPTED)
            peer.send(
                {
                    "Type": 208,
                    "Symbol": "ESZ25-CME",
                    "TradeAccount": "Sim1",
                    "ClientOrderID": "A",
                    "OrderType": 1,
                    "BuySell": 1,
                    "Quantity": 1,
                    "TimeInForce": 2,
                }
            )
            accepted = await peer.recv_type(301)
            while accepted["OrderUpdateReason"] != p.REASON_NEW_ORDER_ACCEPTED:
                accepted = await peer.recv_type(301)
            assert await peer.closed()  # the fill happened after the drop: the client never saw it
            assert sim.orders[accepted["ServerOrderID"]].status == p.STATUS_FILLED
            await sim.restart(keep_state=True)
            peer = await Raw.connect(sim)
            peer.send({"Type": 1, "HeartbeatIntervalInSeconds": 10})
            await peer.recv_type(2)
            peer.send({"Type": 303, "RequestID": 4, "TradeAccount": "Sim1", "NumberOfDays": 1})
            fill = await peer.recv_type(304)
            assert fill["ServerOrderID"] == accepted["ServerOrderID"] and fill["UniqueExecutionID"] == "E1"
            assert "ClientOrderID" not in fill  # the fills history carries only the server id

    run(scenario)


# -- the trade service ------------------------------------------------------------------------------


class Service:
    """A SimExchange with its published messages captured."""

    def __init__(self, **overrides: Any) -> None:
        config = SimulatorConfig()
        for key, value in overrides.items():
            setattr(config, key, value)
        self.published: list[dict[str, Any]] = []
        self.clock_ns = 1_763_683_200 * 10**9
        self.exchange = SimExchange(config, self.published.append, clock=lambda: self.clock_ns)

    def order(self, **fields: Any) -> dict[str, Any]:
        message = {
            "Type": 208,
            "Symbol": "MNQZ25-CME",
            "TradeAccount": "Sim1",
            "TimeInForce": 2,
            "Quantity": 1,
            "BuySell": 1,
        }
        message.update(fields)
        before = len(self.published)
        self.exchange.submit_single(message)
        return self.published[before:][-1] if len(self.published) > before else {}

    def updates(self, client_order_id: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.published
            if m["Type"] == 301 and (client_order_id is None or m.get("ClientOrderID") == client_order_id)
        ]

    def last(self, client_order_id: str) -> dict[str, Any]:
        return self.updates(client_order_id)[-1]


def test_new_order_accepted_partially_then_fully_filled_with_vwap_and_positions() -> None:
    service = Service(queue_model="touch")
    ex = service.exchange
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.5, 5)
    service.order(ClientOrderID="O-1", OrderType=2, Price1=21000.25, Quantity=3, TimeInForce=1)
    pending, accepted = service.updates("O-1")
    assert (pending["OrderStatus"], pending["OrderUpdateReason"]) == (p.STATUS_PENDING_OPEN, p.REASON_GENERAL_UPDATE)
    assert (accepted["OrderStatus"], accepted["OrderUpdateReason"], accepted["ServerOrderID"]) == (4, 2, "1001")
    ex.trade("MNQZ25-CME", 21000.25, 1)  # touch fills one at the limit
    partial = service.last("O-1")
    assert (
        partial["OrderStatus"],
        partial["OrderUpdateReason"],
        partial["LastFillQuantity"],
        partial["LastFillExecutionID"],
    ) == (10, 5, 1.0, "E1")
    assert partial["LastFillDateTime"] == service.clock_ns // 10**6  # milliseconds, current header
    assert service.published[-2]["Type"] == 306 and service.published[-2]["Quantity"] == 1.0  # position after the fill
    assert service.published[-1]["Type"] == 600 and service.published[-1]["Unsolicited"] == 1
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)  # ask drops below the limit: rest fills at the market
    done = service.last("O-1")
    assert (done["OrderStatus"], done["OrderUpdateReason"], done["FilledQuantity"], done["RemainingQuantity"]) == (
        7,
        4,
        3.0,
        0.0,
    )
    assert done["AverageFillPrice"] == pytest.approx((21000.25 + 2 * 21000.0) / 3)
    assert ex.positions[("Sim1", "MNQZ25-CME")].quantity == 3


@pytest.mark.parametrize(
    ("fields", "setup", "text"),
    [
        ({}, lambda s: setattr(s.exchange.config, "allow_trading", False), "Allow Trading is disabled"),
        ({"TradeAccount": "Live9"}, None, "Unknown trade account: Live9"),
        ({}, lambda s: s.exchange.config.disabled_accounts.add("Sim1"), "Trading is disabled for trade account Sim1"),
        ({"ClientOrderID": ""}, None, "Duplicate ClientOrderID"),
        ({"Symbol": "XXXZ25-CME"}, None, "Symbol not found: XXXZ25-CME"),
        ({"Quantity": 1.5}, None, "Invalid order quantity"),
        ({"Quantity": 0}, None, "Invalid order quantity"),
        ({"TimeInForce": 5}, None, "Unsupported order type / time in force"),
        ({"OrderType": 2}, None, "Missing price"),
        ({"OrderType": 2, "Price1": 21000.1}, None, "Price not a multiple of tick size"),
        (
            {"OrderType": 3, "Price1": 20990.0},
            lambda s: setattr(s.exchange.config, "reject_stop_through_market", True),
            "Stop price is on wrong side of market",
        ),
        ({"OrderType": 1}, lambda s: s.exchange.market.clear(), "No market data for symbol"),
    ],
)
def test_new_order_rejects_follow_the_reference_table(fields: dict[str, Any], setup: Any, text: str) -> None:
    service = Service()
    service.exchange.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    if setup is not None:
        setup(service)
    message = {"ClientOrderID": "R-1", "OrderType": 1, **fields}
    reject = service.order(**message)
    assert reject["OrderStatus"] == p.STATUS_REJECTED and reject["OrderUpdateReason"] == p.REASON_NEW_ORDER_REJECTED
    assert text in reject["InfoText"] and "ServerOrderID" not in reject


def test_duplicate_client_order_ids_are_rejected_until_the_session_closes() -> None:
    service = Service()
    service.exchange.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    service.order(ClientOrderID="D", OrderType=2, Price1=20990.0, TimeInForce=1)
    assert service.order(ClientOrderID="D", OrderType=2, Price1=20990.0)["InfoText"] == "Duplicate ClientOrderID"
    service.exchange.session_close()
    expired = [m for m in service.updates("D") if m.get("InfoText") == "Expired"]
    assert expired and expired[0]["OrderStatus"] == p.STATUS_CANCELED
    assert (
        service.order(ClientOrderID="D", OrderType=2, Price1=20990.0)["OrderUpdateReason"]
        == p.REASON_NEW_ORDER_ACCEPTED
    )


def test_cancel_and_its_rejects() -> None:
    service = Service()
    ex = service.exchange
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    service.order(ClientOrderID="C", OrderType=2, Price1=20990.0)
    ex.cancel({"ServerOrderID": "1001", "ClientOrderID": "C", "TradeAccount": "Sim1"})
    pending, canceled = service.updates("C")[-2:]
    assert pending["OrderStatus"] == p.STATUS_PENDING_CANCEL and canceled["OrderStatus"] == p.STATUS_CANCELED
    ex.cancel({"ServerOrderID": "1001", "ClientOrderID": "C"})
    assert service.last("C")["OrderUpdateReason"] == p.REASON_CANCEL_REJECTED and service.last("C")["OrderStatus"] == 8
    ex.cancel({"ServerOrderID": "9999", "ClientOrderID": "X"})
    unknown = service.last("X")
    assert (
        unknown["OrderStatus"] == p.STATUS_REJECTED and "ServerOrderID" not in unknown and "9999" in unknown["InfoText"]
    )
    service.order(ClientOrderID="M", OrderType=2, Price1=20990.0)
    ex.cancel({"ServerOrderID": "1002", "ClientOrderID": "wrong"})
    assert service.last("M")["InfoText"] == "ClientOrderID does not match"


def test_cancel_replace_semantics_including_the_stop_limit_offset_rule() -> None:
    service = Service(replace_changes_server_order_id=True)
    ex = service.exchange
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    service.order(ClientOrderID="S", OrderType=4, BuySell=1, Price1=21010.0, Price2=21012.0, Quantity=2)
    ex.cancel_replace(
        {"ServerOrderID": "1001", "ClientOrderID": "S", "Price1": 21020.0, "Price2": 99999.0, "Quantity": 0}
    )
    replaced = service.last("S")
    assert replaced["OrderUpdateReason"] == p.REASON_CANCEL_REPLACE_COMPLETE
    assert (replaced["Price1"], replaced["Price2"], replaced["OrderQuantity"]) == (21020.0, 21022.0, 2.0)  # offset kept
    assert (replaced["PreviousServerOrderID"], replaced["ServerOrderID"]) == ("1001", "1002")
    ex.cancel_replace(
        {"ServerOrderID": "1002", "ClientOrderID": "S", "Quantity": 3, "Price1IsSet": 0, "Price2IsSet": 0}
    )
    assert service.last("S")["OrderQuantity"] == 3.0 and service.last("S")["Price1"] == 21020.0
    ex.cancel_replace({"ServerOrderID": "1003", "TimeInForce": 1})
    assert service.last("S")["InfoText"] == "Time in force cannot be changed"
    service.order(ClientOrderID="L", OrderType=2, BuySell=1, Price1=20990.0, Quantity=1)
    server_id = service.last("L")["ServerOrderID"]
    ex.cancel_replace({"ServerOrderID": server_id, "Price1": 21000.0})  # now marketable: fills at the ask
    assert service.last("L")["OrderStatus"] == p.STATUS_FILLED
    ex.cancel_replace({"ServerOrderID": service.last("L")["ServerOrderID"], "Price1": 20995.0})
    assert service.last("L")["OrderUpdateReason"] == p.REASON_CANCEL_REPLACE_REJECTED
    assert service.last("L")["InfoText"] == "Order already filled"


def test_oco_fill_cancels_the_other_leg_and_partial_fills_reduce_it() -> None:
    service = Service()
    ex = service.exchange
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    ex.submit_oco(
        {
            "Type": 201,
            "Symbol": "MNQZ25-CME",
            "TradeAccount": "Sim1",
            "TimeInForce": 2,
            "PartialFillHandling": 1,
            "ClientOrderID_1": "TP",
            "OrderType_1": 2,
            "BuySell_1": 2,
            "Price1_1": 21050.0,
            "Quantity_1": 3,
            "ClientOrderID_2": "SL",
            "OrderType_2": 3,
            "BuySell_2": 2,
            "Price1_2": 20950.0,
            "Quantity_2": 3,
        }
    )
    assert service.last("TP")["OCOLinkedOrderServerOrderID"] == service.last("SL")["ServerOrderID"]
    ex.quote("MNQZ25-CME", 21050.0, 1, 21050.25, 5)  # one lot of the target
    assert (
        service.last("SL")["OrderQuantity"] == 2.0
        and service.last("SL")["OrderUpdateReason"] == p.REASON_GENERAL_UPDATE
    )
    ex.quote("MNQZ25-CME", 21050.0, 5, 21050.25, 5)
    assert service.last("TP")["OrderStatus"] == p.STATUS_FILLED
    assert service.last("SL")["OrderStatus"] == p.STATUS_CANCELED
    ex.submit_oco(
        {
            "Type": 201,
            "Symbol": "MNQZ25-CME",
            "TradeAccount": "Sim1",
            "ClientOrderID_1": "A",
            "OrderType_1": 2,
            "BuySell_1": 2,
            "Price1_1": 21050.1,
            "Quantity_1": 1,
            "ClientOrderID_2": "B",
            "OrderType_2": 3,
            "BuySell_2": 2,
            "Price1_2": 20950.0,
            "Quantity_2": 1,
        }
    )
    assert service.last("A")["OrderUpdateReason"] == p.REASON_NEW_ORDER_REJECTED
    assert service.last("B")["OrderUpdateReason"] == p.REASON_NEW_ORDER_REJECTED  # both legs rejected together


def test_bracket_children_wait_for_the_parent_and_follow_its_fills() -> None:
    service = Service(depth_limited_fills=True)
    ex = service.exchange
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    service.order(ClientOrderID="P", OrderType=2, BuySell=1, Price1=20990.0, Quantity=2, IsParentOrder=1)
    ex.submit_oco(
        {
            "Type": 201,
            "Symbol": "MNQZ25-CME",
            "TradeAccount": "Sim1",
            "ParentTriggerClientOrderID": "P",
            "ClientOrderID_1": "T",
            "OrderType_1": 2,
            "BuySell_1": 2,
            "Price1_1": 21050.0,
            "Quantity_1": 2,
            "ClientOrderID_2": "S",
            "OrderType_2": 3,
            "BuySell_2": 2,
            "Price1_2": 20950.0,
            "Quantity_2": 2,
        }
    )
    assert (
        service.last("T")["OrderStatus"] == p.STATUS_PENDING_CHILD
        and service.last("T")["ParentServerOrderID"] == "1001"
    )
    ex.quote("MNQZ25-CME", 20989.75, 5, 20990.0, 1)  # the parent fills one of two
    assert (service.last("T")["OrderStatus"], service.last("T")["OrderQuantity"]) == (p.STATUS_OPEN, 1.0)
    ex.quote("MNQZ25-CME", 20989.75, 5, 20990.0, 5)
    assert service.last("S")["OrderQuantity"] == 2.0
    ex.cancel({"ServerOrderID": "1002"})  # canceling one exit cancels its OCO sibling
    assert service.last("S")["OrderStatus"] == p.STATUS_CANCELED
    service.order(ClientOrderID="P2", OrderType=2, BuySell=1, Price1=20900.0, Quantity=1, IsParentOrder=1)
    ex.submit_oco(
        {
            "Type": 201,
            "Symbol": "MNQZ25-CME",
            "TradeAccount": "Sim1",
            "ParentTriggerClientOrderID": "P2",
            "ClientOrderID_1": "T2",
            "OrderType_1": 2,
            "BuySell_1": 2,
            "Price1_1": 21050.0,
            "Quantity_1": 1,
            "ClientOrderID_2": "S2",
            "OrderType_2": 3,
            "BuySell_2": 2,
            "Price1_2": 20850.0,
            "Quantity_2": 1,
        }
    )
    ex.cancel({"ServerOrderID": service.last("P2")["ServerOrderID"]})  # an unfilled parent takes its children along
    assert (
        service.last("T2")["OrderStatus"] == p.STATUS_CANCELED
        and service.last("S2")["OrderStatus"] == p.STATUS_CANCELED
    )


def test_time_in_force_ioc_fok_and_gtd() -> None:
    service = Service()
    ex = service.exchange
    ex.quote("MNQZ25-CME", 20999.75, 2, 21000.0, 2)
    service.order(ClientOrderID="I", OrderType=1, Quantity=3, TimeInForce=p.TIF_IOC)
    ioc = service.last("I")
    assert (ioc["OrderStatus"], ioc["FilledQuantity"]) == (p.STATUS_CANCELED, 2.0)
    service.order(ClientOrderID="F", OrderType=1, Quantity=3, TimeInForce=p.TIF_FOK)
    fok = service.last("F")
    assert (fok["OrderStatus"], fok["FilledQuantity"], fok["InfoText"]) == (p.STATUS_CANCELED, 0.0, "FOK not filled")
    deadline = service.clock_ns // 10**9 + 60
    service.order(ClientOrderID="G", OrderType=2, Price1=20900.0, TimeInForce=p.TIF_GTD, GoodTillDateTime=deadline)
    service.clock_ns += 61 * 10**9
    ex.expire_due()
    assert service.last("G")["OrderStatus"] == p.STATUS_CANCELED and service.last("G")["InfoText"] == "Expired"


def test_queue_model_and_stop_trigger_settings() -> None:
    queued = Service(queue_model="queue")
    ex = queued.exchange
    ex.quote("MNQZ25-CME", 21000.0, 3, 21000.25, 5)
    queued.order(ClientOrderID="Q", OrderType=2, Price1=21000.0, Quantity=1)  # 3 lots queued ahead at the bid
    ex.trade("MNQZ25-CME", 21000.0, 2)
    assert queued.last("Q")["OrderStatus"] == p.STATUS_OPEN
    ex.trade("MNQZ25-CME", 21000.0, 2)  # the queue is exhausted
    assert queued.last("Q")["OrderStatus"] == p.STATUS_FILLED
    quote_stops = Service(stop_trigger="quote", slippage_ticks=1)
    ex = quote_stops.exchange
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    quote_stops.order(ClientOrderID="S", OrderType=3, BuySell=1, Price1=21001.0)
    ex.trade("MNQZ25-CME", 21002.0, 1)  # a print above the stop does not trigger in quote mode
    assert quote_stops.last("S")["OrderStatus"] == p.STATUS_OPEN
    ex.quote("MNQZ25-CME", 21000.75, 5, 21001.0, 5)
    assert quote_stops.last("S")["LastFillPrice"] == 21001.25  # the ask plus one tick of slippage


def test_scaled_symbols_put_wire_prices_on_the_integer_grid() -> None:
    service = Service()
    ex = service.exchange
    ex.quote("ESZ25-CME-SCALED", 4000.25, 5, 4000.50, 5)
    service.order(ClientOrderID="W", Symbol="ESZ25-CME-SCALED", OrderType=2, BuySell=1, Price1=400050, Quantity=1)
    filled = service.last("W")
    assert (filled["Price1"], filled["LastFillPrice"], filled["AverageFillPrice"]) == (400050, 400050, 400050)
    assert ex.positions[("Sim1", "ESZ25-CME-SCALED")].average_price == 4000.5
    assert (
        service.order(ClientOrderID="W2", Symbol="ESZ25-CME-SCALED", OrderType=2, Price1=400010)["InfoText"]
        == "Price not a multiple of tick size"
    )


def test_requests_answer_in_batches_and_reject_unknown_accounts() -> None:
    service = Service()
    ex = service.exchange
    assert ex.open_orders({"RequestID": 3})[0]["NoOrders"] == 1
    assert ex.current_positions({"RequestID": 4})[0]["NoPositions"] == 1
    assert ex.historical_fills({"RequestID": 5, "NumberOfDays": 1})[0]["NoOrderFills"] == 1
    assert ex.historical_fills({"RequestID": 6})[0]["Type"] == p.HISTORICAL_ORDER_FILLS_REJECT
    for answer in (ex.open_orders, ex.current_positions, ex.historical_fills, ex.account_balances):
        assert (
            "Unknown trade account"
            in answer({"RequestID": 7, "TradeAccount": "Nope", "NumberOfDays": 1})[0]["RejectText"]
        )
    ex.quote("MNQZ25-CME", 20999.75, 5, 21000.0, 5)
    service.order(ClientOrderID="H", OrderType=1, Quantity=2)
    start_us = (service.clock_ns - 10**9) // 1000  # Sierra reads large StartDateTime values as microseconds
    assert [f["UniqueExecutionID"] for f in ex.historical_fills({"RequestID": 8, "StartDateTime": start_us})] == ["E1"]
    balance = ex.account_balances({"RequestID": 9, "TradeAccount": "Sim1"})[0]
    assert balance["CashBalance"] == 50_000.0 and balance["MarginRequirement"] == 6000.0


def test_prices_can_follow_the_iqfeed_simulator_in_process_or_over_its_level1_port(markets: Any) -> None:
    from adapters.iqfeed.simulator import SimulatorSource
    from adapters.iqfeed.simulator import build_simulator
    from adapters.sierrachart.settings import SierraChartSettings
    from adapters.sierrachart.settings import iqfeed_symbol_map
    from adapters.sierrachart.simulator.feeds import IQFeedLevel1Feed
    from adapters.sierrachart.simulator.feeds import IQFeedMarketBridge

    async def scenario() -> None:
        settings = SierraChartSettings()
        mapping = iqfeed_symbol_map(markets, ["ES"], settings.symbol_template)
        iq_symbol, symbol = next(iter(mapping.items()))
        iqfeed = build_simulator(markets, SimulatorSource(roots=("ES",), rate=0.0))
        await iqfeed.start()
        try:
            async with (
                DtcSimulator(settings.simulator_config(markets, ["ES"], port=0)) as bridged,
                DtcSimulator(
                    settings.simulator_config(markets, ["ES"], port=0),
                ) as followed,
            ):
                iqfeed.market.listeners.append(IQFeedMarketBridge(bridged, mapping))
                feed = IQFeedLevel1Feed(followed, "127.0.0.1", iqfeed.ports["level1"], mapping)
                await feed.start()
                await asyncio.sleep(0.3)
                book = iqfeed.market.book(iq_symbol)
                iqfeed.market.quote(iq_symbol, book.bid + 4, book.bid + 5, 7, 9)
                iqfeed.market.trade(iq_symbol, book.bid, 2, 1)
                deadline = time.monotonic() + 5
                while (
                    followed.exchange.market.get(symbol) is None or followed.exchange.market[symbol].last is None
                ) and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                for sim in (bridged, followed):
                    quote = sim.exchange.market[symbol]
                    assert (quote.bid, quote.ask) == (book.bid * 0.25, (book.bid + 1) * 0.25)
                    assert (quote.bid_size, quote.ask_size, quote.last) == (7.0, 9.0, book.bid * 0.25)
                await feed.stop()
        finally:
            await iqfeed.close()

    run(scenario)
