"""The asyncio IQConnect client against the simulator on real sockets: handshake, lookups, faults."""

import asyncio
import time
from collections.abc import Awaitable
from collections.abc import Callable

import pytest

from adapters.iqfeed.client import AdminClient
from adapters.iqfeed.client import ConnectionOptions
from adapters.iqfeed.client import IQFeedConnectionError
from adapters.iqfeed.client import IQFeedConnectionLost
from adapters.iqfeed.client import IQFeedInvalidParametersError
from adapters.iqfeed.client import IQFeedInvalidSymbolError
from adapters.iqfeed.client import IQFeedNoDataError
from adapters.iqfeed.client import IQFeedProtocolError
from adapters.iqfeed.client import IQFeedSyntaxError
from adapters.iqfeed.client import IQFeedTimeoutError
from adapters.iqfeed.client import IQFeedUnauthorizedError
from adapters.iqfeed.client import Level1Client
from adapters.iqfeed.client import Level1Handlers
from adapters.iqfeed.client import LookupClient
from adapters.iqfeed.client import ReconnectPolicy
from adapters.iqfeed.client import TokenBucket
from adapters.iqfeed.constants import LEVEL1_UPDATE_FIELDS
from adapters.iqfeed.simulator import IQFeedSimulator
from adapters.iqfeed.simulator import SimulatorConfig
from adapters.iqfeed.simulator import SimulatorSource
from adapters.iqfeed.simulator import build_simulator


pytestmark = pytest.mark.timeout(60)
FAST = ConnectionOptions(reconnect=ReconnectPolicy(0.05, 0.2), handshake_timeout=2.0, stale_after=1.0)


def run(markets, body: Callable[[IQFeedSimulator], Awaitable[None]], rate: float = 30.0, **config) -> None:
    """Run ``body(simulator)`` on a fresh loop with a simulator on free ports."""

    async def main() -> None:
        sim = build_simulator(markets, SimulatorSource(rate=rate), SimulatorConfig(**config))
        await sim.start()
        try:
            await asyncio.wait_for(body(sim), 45)
        finally:
            await sim.close()

    asyncio.run(main())


async def _lookup(sim: IQFeedSimulator, **kwargs) -> LookupClient:
    client = LookupClient("127.0.0.1", sim.ports["lookup"], options=FAST, **kwargs)
    await client.start()
    return client


def _es(sim: IQFeedSimulator) -> str:
    return sorted(s for s in sim.market.universe.specs if s.startswith("@ES"))[0]


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_lookup_errors_are_typed_and_always_end_with_the_terminator(markets):
    async def body(sim):
        es = _es(sim)
        for _ in range(10):  # some history
            sim.market.trade(es, sim.market.book(es).ask, 1, 1)
        client = await _lookup(sim)
        rows = await client.request(f"HTX,{es},5,1,{{rid}},100")
        assert 1 <= len(rows) <= 5 and rows[0].count(",") == 12  # LH stripped; 12 fields + trailing comma
        sim.market.universe.unauthorized.add("SPY")
        cases = [
            ("HTX,@NOPE,5,0,{rid},100", IQFeedInvalidSymbolError),
            (f"HTX,{es},0,0,{{rid}},100", IQFeedNoDataError),
            ("HTX,SPY,5,0,{rid},100", IQFeedUnauthorizedError),
            (f"HIX,{es},60,5,1,{{rid}},100,z,0", IQFeedSyntaxError),
            (f"HTX,{es},5,1,{{rid}},100,1,2,3", IQFeedInvalidParametersError),
        ]
        for command, error in cases:
            with pytest.raises(error):
                await client.request(command)
        # after every error the terminator was consumed: the next request gets its own rows only
        assert len(await client.request(f"HTX,{es},3,1,{{rid}},100")) == 3
        assert client.stats.late == 0 and client.unattributed == 0
        await client.stop()

    run(markets, body)


def test_a_slow_reply_times_out_and_its_late_lines_are_dropped(markets):
    async def body(sim):
        await asyncio.sleep(0.3)
        client = await _lookup(sim)
        es = _es(sim)
        sim.lookup_delay = 0.6
        with pytest.raises(IQFeedTimeoutError):
            await client.request(f"HTX,{es},5,1,{{rid}},100", timeout=0.2)
        sim.lookup_delay = 0.0
        rows = await client.request(f"HTX,{es},2,1,{{rid}},100", timeout=5)  # answered after the late reply
        assert len(rows) == 2
        assert client.stats.late >= 2  # the timed-out request's rows and its terminator
        assert client.stats.handler_errors == 0 and client.is_connected
        await client.stop()

    run(markets, body)


def test_pending_requests_fail_at_once_on_disconnect_and_the_client_reconnects(markets):
    async def body(sim):
        client = await _lookup(sim, request_timeout=30)
        es = _es(sim)
        sim.lookup_delay = 5.0
        pending = asyncio.ensure_future(client.request(f"HTX,{es},5,1,{{rid}},100"))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        sim.disconnect_all()
        with pytest.raises(IQFeedConnectionLost):
            await pending
        assert time.monotonic() - started < 1.0  # failed at once, not after the 30 s timeout
        sim.lookup_delay = 0.0
        await _until(lambda: client.stats.connects >= 2)
        assert len(await client.request(f"HTX,{es},1,1,{{rid}},100")) == 1
        await client.stop()

    run(markets, body)


def test_reconnect_backs_off_while_iqconnect_is_down_then_rewatches(markets):
    async def body(sim):
        got: list[list[str]] = []
        client = Level1Client(
            "127.0.0.1", sim.ports["level1"], Level1Handlers(update=got.append), LEVEL1_UPDATE_FIELDS, FAST
        )
        await client.start()
        es = _es(sim)
        client.watch(es)
        await _until(lambda: len(got) > 5)
        await sim.stop_listening()
        await asyncio.sleep(1.0)
        assert not client.is_connected
        got.clear()
        await sim.resume_listening()
        await _until(lambda: client.is_connected and len(got) > 5)
        commands = [line for port, line in sim.commands if port == "level1"]
        assert commands.count(f"w{es}") == 2
        assert sum(c.startswith("S,SELECT UPDATE FIELDS,") for c in commands) == 2
        assert got[0][0] == "P" and got[0][1] == es  # the re-watch's summary first
        await client.stop()

    run(markets, body)


def test_lines_split_across_writes_parse_the_same(markets):
    async def body(sim):
        es = _es(sim)
        book = sim.market.book(es)
        for i in range(30):
            sim.market.trade(es, book.bid + i % 3, 1 + i % 4, 1 + i % 2)
        client = await _lookup(sim)
        whole = await client.request(f"HTX,{es},30,1,{{rid}},100")
        sim.fragment = True
        split = await client.request(f"HTX,{es},30,1,{{rid}},100")
        with pytest.raises(IQFeedInvalidSymbolError):
            await client.request("HTX,@NOPE,5,0,{rid},100")
        assert split == whole and len(whole) == 30
        assert client.stats.unknown == 0 and client.stats.handler_errors == 0
        await client.stop()

    run(markets, body, rate=0)


def test_an_iqconnect_without_protocol_62_is_refused_and_an_unsolicited_greeting_is_not(markets):
    async def old(sim):
        with pytest.raises(IQFeedProtocolError, match=r"6\.2"):
            await LookupClient("127.0.0.1", sim.ports["lookup"], options=FAST).start()

    run(markets, old, protocols=("5.0", "5.1", "5.2", "6.0", "6.1"))

    async def greeting(sim):
        stats: list[list[str]] = []
        admin = AdminClient("127.0.0.1", sim.ports["admin"], on_stats=stats.append, options=FAST)
        await admin.start()  # the port announces 6.0 first, then answers 6.2
        assert admin.protocol == "6.2"
        await _until(lambda: len(stats) >= 1, 3.0)
        assert admin.server_connected is True
        await admin.stop()

    run(markets, greeting, default_protocol="6.0")


def test_a_silent_feed_is_stale_and_reconnected(markets):
    async def body(sim):
        states: list[str] = []
        client = Level1Client(
            "127.0.0.1",
            sim.ports["level1"],
            Level1Handlers(update=lambda f: None),
            LEVEL1_UPDATE_FIELDS,
            FAST,
            on_state=lambda port, state: states.append(state),
        )
        await client.start()
        sim.mute("level1")
        await _until(lambda: "stale" in states, 5.0)
        sim.mute("level1", False)
        await _until(lambda: client.stats.connects >= 2, 5.0)
        assert states[:1] == ["connected"] and "disconnected" in states
        await client.stop()

    run(markets, body)


def test_a_delayed_service_is_reported_and_a_real_time_one_is_not(markets):
    async def body(sim):
        client = Level1Client(
            "127.0.0.1", sim.ports["level1"], Level1Handlers(update=lambda f: None), LEVEL1_UPDATE_FIELDS, FAST
        )
        await client.start()
        await _until(lambda: client.service is not None, 3.0)
        seen.append((client.service, client.delayed))
        await client.stop()

    seen: list[tuple[str | None, bool]] = []
    run(markets, body, delayed=True)
    run(markets, body)
    assert seen == [("delayed", True), ("real_time", False)]


def test_unreachable_iqconnect_fails_fast(markets):
    async def body() -> None:
        with pytest.raises(IQFeedConnectionError, match="cannot reach IQConnect level1 port"):
            await Level1Client(
                "127.0.0.1", 1, Level1Handlers(update=lambda f: None), LEVEL1_UPDATE_FIELDS, FAST
            ).start()

    asyncio.run(body())


def test_token_bucket_paces_lookups():
    async def body() -> float:
        bucket = TokenBucket(rate=50.0, burst=5)
        started = time.monotonic()
        for _ in range(15):
            await bucket.acquire()
        return time.monotonic() - started

    elapsed = asyncio.run(body())
    assert 0.18 <= elapsed < 1.0  # 5 at once, then 10 more at 50/s


def test_requests_need_a_request_id_placeholder(markets):
    async def body(sim):
        client = await _lookup(sim)
        with pytest.raises(ValueError, match="rid"):
            await client.request("HTX,@ESZ25,5")
        await client.stop()

    run(markets, body, rate=0)


def test_a_reply_read_in_the_same_chunk_as_an_unwanted_one_is_not_lost():
    # Arrange: a terse IQConnect that answers the field selection with the default layout and the
    # selected one in a single write, so the client reads both lines before its handshake resumes
    async def body() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                text = line.decode().strip()
                if text.startswith("S,SET PROTOCOL"):
                    writer.write(b"S,CURRENT PROTOCOL,6.2\r\n")
                elif text.startswith("S,SELECT UPDATE FIELDS,"):
                    default = "S,CURRENT UPDATE FIELDNAMES,Symbol,Last\r\n"
                    selected = "S,CURRENT UPDATE FIELDNAMES,Symbol," + text.split(",", 2)[2] + "\r\n"
                    writer.write((default + selected).encode())
                elif text == "S,REQUEST FUNDAMENTAL FIELDNAMES":
                    writer.write(b"S,FUNDAMENTAL FIELDNAMES,Symbol,Exchange ID\r\n")
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Level1Client("127.0.0.1", port, Level1Handlers(update=lambda fields: None), LEVEL1_UPDATE_FIELDS, FAST)

        # Act
        await asyncio.wait_for(client.start(), 5.0)

        # Assert: the handshake saw the selected layout (before the fix it waited for a reply it had dropped)
        assert client.is_connected
        assert client.fieldnames == ("Symbol", *LEVEL1_UPDATE_FIELDS)
        await client.stop()
        server.close()
        await server.wait_closed()

    asyncio.run(body())
