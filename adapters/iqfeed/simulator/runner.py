"""Build a simulator from a source (generated path or catalog) and run it on its own thread.

A ``TradingNode`` owns the main thread and its event loop, so tests and ``mia paper --simulate``
run the simulator on a background thread with its own loop; :class:`SimulatorThread` gives a
blocking, thread-safe handle on it (ports, hooks, kill and restart). ``mia iqfeed-sim`` runs the
same simulator in the foreground instead.
"""

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from adapters.iqfeed.simulator.market import GeneratedFeed
from adapters.iqfeed.simulator.market import Market
from adapters.iqfeed.simulator.market import ReplayFeed
from adapters.iqfeed.simulator.market import default_universe
from adapters.iqfeed.simulator.market import load_catalog_history
from adapters.iqfeed.simulator.market import wall_clock
from adapters.iqfeed.simulator.server import Feed
from adapters.iqfeed.simulator.server import IQFeedSimulator
from adapters.iqfeed.simulator.server import SimulatorConfig
from mia_strategies.config import MarketsConfig
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import parse_contract_symbol


T = TypeVar("T")


@dataclass(frozen=True)
class SimulatorSource:
    """What the simulator serves.

    ``catalog``: its futures trades become history (as they are, for ``mia ingest iqfeed``); with
    ``replay`` its ticks are also streamed live as today's active contracts of each root, paced by
    ``speed``. Without ``replay`` (or without a catalog) a seeded random walk of ``rate`` events
    per second per symbol drives the live feed (``rate`` 0: nothing moves unless pushed).
    """

    roots: tuple[str, ...] = ("ES", "MNQ")
    catalog: Path | None = None
    replay: bool = False
    speed: float = 1.0
    rate: float = 20.0
    seed: int = 7


def build_simulator(
    markets: MarketsConfig,
    source: SimulatorSource | None = None,
    config: SimulatorConfig | None = None,
    clock: Callable[[], int] = wall_clock,
) -> IQFeedSimulator:
    """A simulator for ``source`` (call inside the event loop that will run it)."""
    source = source or SimulatorSource()
    now = clock()
    universe = default_universe(markets, now, source.roots)
    market = Market(universe, clock=clock, seed=source.seed)
    feed: Feed | None = None
    if source.catalog is not None:
        loaded = load_catalog_history(source.catalog, market, markets)
        if source.replay:
            mapping = _replay_mapping(loaded, markets, now)
            feed = ReplayFeed.from_catalog(source.catalog, mapping, speed=source.speed, loop_forever=True)
    if feed is None and source.rate > 0:
        feed = GeneratedFeed(rate=source.rate, seed=source.seed)
    return IQFeedSimulator(market, config or SimulatorConfig(seed=source.seed), feed)


def _replay_mapping(symbols: Sequence[str], markets: MarketsConfig, now_ns: int) -> dict[str, str]:
    """Each root's first catalog contract streams as today's active contract of that root."""
    mapping: dict[str, str] = {}
    for symbol in symbols:
        ref = parse_contract_symbol(symbol.lstrip("@"), markets)
        target = f"@{active_contract(ref.root, now_ns, markets).symbol}"
        if target not in mapping.values():
            mapping[f"{ref.symbol}.{markets.venue}"] = target
    return mapping


class SimulatorThread:
    """A simulator running on its own thread and event loop, with blocking thread-safe calls."""

    def __init__(self, factory: Callable[[], IQFeedSimulator]) -> None:
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="iqfeed-simulator", daemon=True)
        self.simulator: IQFeedSimulator | None = None
        self.ports: dict[str, int] = {}

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, timeout: float = 10.0) -> dict[str, int]:
        """Start the thread, build the simulator in it and listen; return the ports."""
        self._thread.start()

        async def boot() -> dict[str, int]:
            self.simulator = self._factory()
            return await self.simulator.start()

        self.ports = self.run(boot, timeout)
        return self.ports

    def run(self, coro_fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run ``coro_fn()`` on the simulator's loop and wait for its result."""

        async def wrapper() -> T:
            return await coro_fn()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[IQFeedSimulator], T], timeout: float = 10.0) -> T:
        """Call ``fn(simulator)`` on the simulator's loop (hooks must run there)."""

        async def invoke() -> T:
            assert self.simulator is not None
            return fn(self.simulator)

        return self.run(invoke, timeout)

    def stop_listening(self) -> None:
        """Kill IQConnect: close every socket and stop accepting (the market keeps moving)."""
        self.run(lambda: self._sim().stop_listening())

    def resume_listening(self) -> None:
        """Bring IQConnect back on the same ports."""
        self.run(lambda: self._sim().resume_listening())

    def _sim(self) -> IQFeedSimulator:
        assert self.simulator is not None
        return self.simulator

    def stop(self, timeout: float = 10.0) -> None:
        """Close the simulator, stop the loop and join the thread."""
        if self._thread.is_alive():
            if self.simulator is not None:
                with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                    self.run(lambda: self._sim().close(), timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> "SimulatorThread":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
