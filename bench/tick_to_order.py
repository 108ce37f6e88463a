"""Tick-to-order latency: a Level 1 line leaving the IQConnect simulator to the order's bytes at the DTC simulator.

The path measured is the whole live pipeline of ``mia live``: the IQFeed data client reads and parses the
Level 1 line, nautilus's data engine queues it, a strategy answers the quote with an order, the risk and
execution engines queue the command, the Sierra Chart execution client encodes it as DTC JSON and writes
it, and the DTC simulator reads it. Both simulators run on one background thread (as in ``mia live
--dry-run``); the node runs on the main thread.

Baseline, measured in the same run and interleaved with the pipeline samples: the round trip of 64 bytes
through a raw TCP echo server on the same simulator thread (two socket hops and two thread hops, where the
pipeline has the same two hops plus everything nautilus does). Each sample waits for the previous one, so
the two never overlap. Read the ratio: the machines are shared and noisy.

    .venv/bin/python bench/tick_to_order.py --events 500
"""

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from adapters.iqfeed import IQFEED
from adapters.iqfeed import IQFeedLiveDataClientFactory
from adapters.iqfeed.config import IQFeedSettings
from adapters.iqfeed.simulator import SimulatorConfig as IQSimulatorConfig
from adapters.iqfeed.simulator import SimulatorSource
from adapters.iqfeed.simulator import SimulatorThread
from adapters.iqfeed.simulator import build_simulator
from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.factories import SierraChartLiveExecClientFactory
from adapters.sierrachart.settings import SierraChartSettings
from adapters.sierrachart.simulator import DtcSimulator
from mia_strategies.config import load_markets
from mia_strategies.instruments import active_contract


REPO = Path(__file__).resolve().parents[1]
MARKETS = REPO / "config" / "markets.yaml"


class PingConfig(StrategyConfig, frozen=True):
    """The instrument answered."""

    instrument_id: str


class Ping(Strategy):
    """Answers every quote with one far-away IOC limit order (canceled at once: the venue stays empty)."""

    def __init__(self, config: PingConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self.instrument_id)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        instrument = self.cache.instrument(self.instrument_id)
        price = instrument.make_price(tick.bid_price.as_double() - 100.0)
        order = self.order_factory.limit(
            self.instrument_id, OrderSide.BUY, instrument.make_qty(1), price, time_in_force=TimeInForce.IOC
        )
        self.submit_order(order)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summarize(values_ns: list[int]) -> dict[str, float]:
    """p50/p99/mean in microseconds."""
    us = [v / 1000 for v in values_ns]
    return {"p50_us": percentile(us, 50), "p99_us": percentile(us, 99), "mean_us": statistics.fmean(us), "n": len(us)}


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)


def main() -> None:
    """Run the benchmark and print the figures (and a JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500, help="measured quotes (and echo round trips)")
    parser.add_argument("--warmup", type=int, default=50, help="samples discarded first")
    parser.add_argument(
        "--pause-ms", type=float, default=20.0, help="pause between samples (risk engine: 100 orders/s)"
    )
    args = parser.parse_args()

    markets = load_markets(MARKETS)
    contract = active_contract("ES", time.time_ns(), markets)
    instrument_id = contract.instrument_id(markets.venue).value
    iq_symbol = f"@{contract.symbol}"
    thread = SimulatorThread(
        lambda: build_simulator(markets, SimulatorSource(roots=("ES",), rate=0.0), IQSimulatorConfig(host="127.0.0.1"))
    )
    ports = thread.start()
    arrivals: dict[str, Any] = {"future": None, "loop": None}

    def on_receive(message: dict[str, Any], received_ns: int) -> None:
        future = arrivals["future"]
        if message.get("Type") == 208 and future is not None:
            arrivals["loop"].call_soon_threadsafe(lambda: future.done() or future.set_result(received_ns))

    servers: dict[str, DtcSimulator] = {}

    async def start_servers() -> tuple[int, int]:
        sim = DtcSimulator(SierraChartSettings().simulator_config(markets, ["ES"], port=0))
        sim.receive_hook = on_receive
        await sim.start()
        servers["dtc"] = sim
        echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
        return sim.port, echo.sockets[0].getsockname()[1]

    dtc_port, echo_port = thread.run(start_servers)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    arrivals["loop"] = loop
    iq = IQFeedSettings()
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id="MIA-BENCH-001",
            logging=LoggingConfig(log_level="ERROR"),
            exec_engine=LiveExecEngineConfig(reconciliation=True),
            data_clients={IQFEED: iq.client_config(("ES",), host="127.0.0.1", ports=ports, markets_file=str(MARKETS))},
            exec_clients={
                markets.venue: SierraChartExecClientConfig(
                    port=dtc_port,
                    markets_file=str(MARKETS),
                    instrument_provider=InstrumentProviderConfig(
                        load_ids=frozenset({InstrumentId.from_str(instrument_id)})
                    ),
                ),
            },
            timeout_connection=20.0,
        ),
        loop=loop,
    )
    node.trader.add_strategy(Ping(PingConfig(instrument_id=instrument_id)))
    node.add_data_client_factory(IQFEED, IQFeedLiveDataClientFactory)
    node.add_exec_client_factory(markets.venue, SierraChartLiveExecClientFactory)
    node.build()
    pipeline: list[int] = []
    baseline: list[int] = []

    async def push_quote(n: int) -> int:
        assert thread.simulator is not None
        book = thread.simulator.market.book(iq_symbol)
        bid = book.bid + (1 if n % 2 else -1)
        sent = time.perf_counter_ns()  # the line is written to the session's socket inside quote()
        thread.simulator.market.quote(iq_symbol, bid, bid + 1, 10 + n % 7, 10)
        return sent

    async def measure() -> None:
        try:
            await _measure()
        finally:
            node.stop()

    async def _measure() -> None:
        while not node.trader.is_running:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # let subscriptions settle
        reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
        payload = b"x" * 64
        for n in range(args.warmup + args.events):
            await asyncio.sleep(args.pause_ms / 1000)  # stay under the risk engine's 100 orders/s
            future: asyncio.Future[int] = loop.create_future()
            arrivals["future"] = future
            sent = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(push_quote(n), thread._loop))
            received = await asyncio.wait_for(future, 5.0)
            start = time.perf_counter_ns()
            writer.write(payload)
            echoed = b""
            while len(echoed) < len(payload):
                echoed += await reader.read(65536)
            round_trip = time.perf_counter_ns() - start
            if n >= args.warmup:
                pipeline.append(received - sent)
                baseline.append(round_trip)
        writer.close()

    loop.call_soon(lambda: loop.create_task(measure()))
    try:
        node.run()
    finally:
        node.dispose()
        thread.run(servers["dtc"].stop)
        thread.stop()
    mia, raw = summarize(pipeline), summarize(baseline)
    print(f"tick-to-order over {mia['n']} quotes (after {args.warmup} warm-up)")
    for label, figures in (
        ("IQFeed sim line -> DTC sim order bytes", mia),
        ("raw TCP echo round trip (baseline)", raw),
    ):
        print(
            f"  {label:<40} p50 {figures['p50_us']:8.0f} us   p99 {figures['p99_us']:8.0f} us   "
            f"mean {figures['mean_us']:8.0f} us",
        )
    p50, p99 = mia["p50_us"] / raw["p50_us"], mia["p99_us"] / raw["p99_us"]
    print(f"  ratio pipeline / baseline: p50 {p50:.1f}x   p99 {p99:.1f}x")
    print(json.dumps({"pipeline": mia, "baseline": raw}))


if __name__ == "__main__":
    main()
