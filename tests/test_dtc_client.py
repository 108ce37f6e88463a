"""The asyncio DTC client against the simulator over real sockets: logon, batches, rejects, heartbeats,
reconnect with backoff, and the server telling it not to reconnect.
"""

import asyncio
import time
from collections.abc import Awaitable
from collections.abc import Callable

import pytest

from adapters.sierrachart.client import DtcClient
from adapters.sierrachart.client import DtcConnectionError
from adapters.sierrachart.client import DtcLogonError
from adapters.sierrachart.client import DtcRequestRejected
from adapters.sierrachart.client import LogonInfo
from adapters.sierrachart.client import ReconnectPolicy
from adapters.sierrachart.codec import DtcMessage
from adapters.sierrachart.constants import MessageType
from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator import SimulatorConfig
from adapters.sierrachart.simulator import protocol as p


FAST = ReconnectPolicy(initial_delay_secs=0.05, max_delay_secs=0.2)


class Recorder:
    """A DtcHandler that remembers everything it is told."""

    def __init__(self) -> None:
        self.messages: list[DtcMessage] = []
        self.connected: list[bool] = []
        self.disconnected: list[str] = []
        self.fatal: list[str] = []

    def on_message(self, message: DtcMessage) -> None:
        self.messages.append(message)

    async def on_connected(self, info: LogonInfo, reconnected: bool) -> None:
        self.connected.append(reconnected)

    def on_disconnected(self, reason: str) -> None:
        self.disconnected.append(reason)

    def on_fatal(self, reason: str) -> None:
        self.fatal.append(reason)


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def client_for(sim: DtcSimulator, handler: Recorder, **kwargs: object) -> DtcClient:
    options: dict[str, object] = {
        "heartbeat_interval_secs": 1,
        "reconnect": FAST,
        "connect_timeout_secs": 2.0,
        "request_timeout_secs": 2.0,
    }
    options.update(kwargs)
    return DtcClient("127.0.0.1", sim.port, handler, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["automatic", "json"])
def test_logon_reads_server_flags_and_answers_batches(mode: str) -> None:
    async def scenario() -> None:
        async with DtcSimulator(SimulatorConfig(encoding_mode=mode)) as sim:  # type: ignore[arg-type]
            client = client_for(sim, Recorder(), encoding_mode=mode)
            info = await client.connect()
            assert info.trading_supported and info.oco_supported and info.bracket_supported
            assert info.server_name == "SC DTC Server" and info.protocol_version == 8
            accounts = await client.request(
                {"Type": MessageType.TRADE_ACCOUNTS_REQUEST}, responses=(MessageType.TRADE_ACCOUNT_RESPONSE,)
            )
            assert [m.text("TradeAccount") for m in accounts] == ["Sim1", "Sim2"]
            logon = sim.received_of(p.LOGON_REQUEST)[0]
            assert logon["ProtocolVersion"] == 8 and logon["HeartbeatIntervalInSeconds"] == 1
            assert bool(sim.received_of(p.ENCODING_REQUEST)) == (mode == "automatic")
            await client.close()
            await until(lambda: sim.received_of(p.LOGOFF) != [])

    run(scenario)


def test_request_rejects_carry_the_servers_text_and_unsolicited_updates_reach_the_handler() -> None:
    async def scenario() -> None:
        async with DtcSimulator() as sim:
            handler = Recorder()
            client = client_for(sim, handler)
            await client.connect()
            with pytest.raises(DtcRequestRejected, match="Symbol not found: XXXZ25-CME"):
                await client.request(
                    {"Type": MessageType.SECURITY_DEFINITION_FOR_SYMBOL_REQUEST, "Symbol": "XXXZ25-CME"},
                    responses=(MessageType.SECURITY_DEFINITION_RESPONSE,),
                    rejects=(MessageType.SECURITY_DEFINITION_REJECT,),
                )
            definition = await client.request(
                {"Type": MessageType.SECURITY_DEFINITION_FOR_SYMBOL_REQUEST, "Symbol": "ESZ25-CME-SCALED"},
                responses=(MessageType.SECURITY_DEFINITION_RESPONSE,),
            )
            assert definition[0].number("DisplayPriceMultiplier") == pytest.approx(0.01)
            sim.quote("MNQZ25-CME", 21000.0, 5, 21000.25, 5)
            client.send(
                {
                    "Type": 208,
                    "Symbol": "MNQZ25-CME",
                    "TradeAccount": "Sim1",
                    "ClientOrderID": "C1",
                    "OrderType": 1,
                    "BuySell": 1,
                    "Quantity": 1,
                    "TimeInForce": 2,
                }
            )
            await until(lambda: any(m.integer("OrderUpdateReason") == 4 for m in handler.messages))
            kinds = [m.type for m in handler.messages]
            assert MessageType.POSITION_UPDATE in kinds and MessageType.ACCOUNT_BALANCE_UPDATE in kinds
            await client.close()

    run(scenario)


def test_logon_refusals_error_retries_and_no_reconnect_stops() -> None:
    async def scenario() -> None:
        async with DtcSimulator(SimulatorConfig(require_auth=True, username="trader", password="s3cret")) as sim:
            with pytest.raises(DtcLogonError, match="Invalid username or password") as refused:
                await client_for(sim, Recorder(), username="trader", password="wrong").connect()
            assert refused.value.result == p.LOGON_ERROR and not refused.value.no_reconnect
            sim.refuse_logons(p.LOGON_ERROR, "busy", count=1)
            client = client_for(sim, Recorder(), username="trader", password="s3cret")
            await client.connect(attempts=2)  # refused once, then logged on
            assert client.is_connected
            await client.close()
            sim.refuse_logons(p.LOGON_ERROR_NO_RECONNECT, "licence expired", count=1)
            with pytest.raises(DtcLogonError, match="licence expired") as stopped:
                await client_for(sim, Recorder(), username="trader", password="s3cret").connect(attempts=5)
            assert stopped.value.no_reconnect
            assert sim.logons == 1

    run(scenario)


def test_reconnect_new_address_moves_the_client() -> None:
    async def scenario() -> None:
        async with DtcSimulator() as first, DtcSimulator() as second:
            first.refuse_logons(p.LOGON_RECONNECT_NEW_ADDRESS, "moved", address=f"127.0.0.1:{second.port}")
            client = client_for(first, Recorder())
            await client.connect(attempts=2)
            assert client.address == ("127.0.0.1", second.port) and second.logons == 1
            await client.close()

    run(scenario)


def test_reconnects_with_backoff_after_a_reset_and_fails_pending_requests() -> None:
    async def scenario() -> None:
        async with DtcSimulator() as sim:
            handler = Recorder()
            client = client_for(sim, handler)
            await client.connect()
            sim.pause(heartbeats=False, reading=True)
            pending = asyncio.ensure_future(
                client.request(
                    {"Type": MessageType.TRADE_ACCOUNTS_REQUEST}, responses=(MessageType.TRADE_ACCOUNT_RESPONSE,)
                ),
            )
            await asyncio.sleep(0.05)
            sim.drop_connections("rst")
            sim.resume()
            with pytest.raises(DtcConnectionError):
                await pending
            await until(lambda: handler.connected == [True])
            assert handler.disconnected and client.is_connected and client.reconnects == 1
            assert sim.logons == 2
            with pytest.raises(DtcConnectionError):
                DtcClient("127.0.0.1", sim.port, Recorder()).send({"Type": 3})
            await client.close()

    run(scenario)


def test_heartbeat_loss_is_detected_and_the_client_reconnects() -> None:
    async def scenario() -> None:
        async with DtcSimulator(SimulatorConfig(heartbeat_timeout_factor=0)) as sim:
            handler = Recorder()
            client = client_for(sim, handler)
            await client.connect()
            await asyncio.sleep(1.3)
            assert sim.sent_of(p.HEARTBEAT) and sim.received_of(p.HEARTBEAT)  # both sides beat
            started = time.monotonic()
            sim.pause(heartbeats=True, reading=True)  # a hung server: the socket stays open
            await until(lambda: handler.disconnected != [], timeout=5.0)
            assert "heartbeat" in handler.disconnected[0]
            assert 1.5 < time.monotonic() - started < 4.0  # about twice the 1 s interval
            sim.resume()
            await until(lambda: handler.connected == [True], timeout=5.0)
            await client.close()

    run(scenario)


@pytest.mark.parametrize("do_not_reconnect", [True, False])
def test_server_logoff_is_obeyed(do_not_reconnect: bool) -> None:
    async def scenario() -> None:
        async with DtcSimulator() as sim:
            handler = Recorder()
            client = client_for(sim, handler)
            await client.connect()
            sim.drop_connections("logoff", reason="Sierra Chart closing", do_not_reconnect=do_not_reconnect)
            if do_not_reconnect:
                await until(lambda: handler.fatal != [])
                await asyncio.sleep(0.3)
                assert sim.logons == 1 and not client.is_connected and "DoNotReconnect" in client.fatal_reason
            else:
                await until(lambda: handler.connected == [True])
                assert sim.logons == 2 and not handler.fatal
            await client.close()

    run(scenario)


def test_gives_up_after_the_configured_attempts() -> None:
    async def scenario() -> None:
        sim = DtcSimulator()
        await sim.start()
        handler = Recorder()
        client = client_for(
            sim, handler, reconnect=ReconnectPolicy(initial_delay_secs=0.02, max_delay_secs=0.05, max_attempts=3)
        )
        await client.connect()
        await sim.stop()  # the server is gone for good
        await until(lambda: handler.fatal != [], timeout=5.0)
        assert "3 reconnect attempts failed" in handler.fatal[0]
        await client.close()

    run(scenario)


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = ReconnectPolicy(initial_delay_secs=0.5, max_delay_secs=4.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
