"""The IQFeed data client inside a real nautilus TradingNode, against the simulator over real sockets."""

import time

import pandas as pd
import pytest
from iqfeed_fixtures import Collector
from iqfeed_fixtures import CollectorConfig
from iqfeed_fixtures import build_node
from iqfeed_fixtures import current_ids
from iqfeed_fixtures import data_client
from iqfeed_fixtures import run_node
from iqfeed_fixtures import simulator_thread
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import BookType

from adapters.iqfeed.simulator import SimulatorSource
from adapters.iqfeed.simulator.lookups import interval_bars
from catalog.types import NewsHeadline
from catalog.types import OptionChainSnapshot


pytestmark = pytest.mark.timeout(120)


def _book_levels(book: OrderBook, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    bids = [(lvl.price.as_double(), lvl.size()) for lvl in book.bids()[:n]]
    asks = [(lvl.price.as_double(), lvl.size()) for lvl in book.asks()[:n]]
    return bids, asks


def _sim_levels(sim, symbol: str, n: int):
    book = sim.market.book(symbol)
    tick = book.spec.tick
    bids = sorted(book.levels["B"].items(), reverse=True)[:n]
    asks = sorted(book.levels["A"].items())[:n]
    return [(p * tick, float(lvl.size)) for p, lvl in bids], [(p * tick, float(lvl.size)) for p, lvl in asks]


def test_quotes_trades_depth_bars_chain_and_news_reach_the_node(markets):
    ids = current_ids(markets)
    es, mnq = ids["ES"].value, ids["MNQ"].value
    es_bar = f"{es}-1-SECOND-LAST-EXTERNAL"
    mnq_bar = f"{mnq}-1-SECOND-LAST-EXTERNAL"
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        collector = Collector(
            CollectorConfig(
                component_id="COLLECTOR",
                quotes=[es, mnq],
                trades=[es, mnq],
                depth_by_price=[es],
                depth_by_order=[mnq],
                bars=[es_bar, mnq_bar],
                news=True,
                chain_of=es,
            ),
        )
        node = build_node(sim.ports, collector)
        headline = "ES futures rally, Nasdaq follows; traders eye CPI, Fed"

        def script(loop):
            loop.call_later(2.5, lambda: sim.call(lambda s: s.push_news(headline, ("@ES", "SPY"))))
            loop.call_later(3.5, lambda: sim.call(lambda s: s.pause_feed()))

        run_node(node, 4.5, script)
        es_sym, mnq_sym = f"@{ids['ES'].symbol}", f"@{ids['MNQ'].symbol}"
        sim_es = sim.call(lambda s: _sim_levels(s, es_sym, 5))
        sim_mnq = sim.call(lambda s: _sim_levels(s, mnq_sym, 10))
        last_quote = sim.call(lambda s: (s.market.book(es_sym).bid, s.market.book(es_sym).ask))

    # Arrange: what each subscription delivered
    quotes = {q.instrument_id.value for q in collector.quotes}
    trades = [t for t in collector.trades if t.instrument_id.value == es]
    assert quotes == {es, mnq}
    assert len(trades) > 10 and {t.instrument_id.value for t in collector.trades} == {es, mnq}
    assert all(t.trade_id.value.isdigit() for t in trades)  # TickID
    assert [int(t.trade_id.value) for t in trades] == sorted(int(t.trade_id.value) for t in trades)
    assert {t.aggressor_side.name for t in trades} <= {"BUYER", "SELLER"}
    # the last ES quote is the simulator's top of book when the feed stopped
    es_quotes = [q for q in collector.quotes if q.instrument_id.value == es]
    assert (es_quotes[-1].bid_price.as_double(), es_quotes[-1].ask_price.as_double()) == (
        last_quote[0] * 0.25,
        last_quote[1] * 0.25,
    )
    # depth: replaying the deltas rebuilds the simulator's ladder exactly (by price for ES, by order for MNQ)
    books = {es: OrderBook(ids["ES"], BookType.L2_MBP), mnq: OrderBook(ids["MNQ"], BookType.L3_MBO)}
    for deltas in collector.deltas:
        books[deltas.instrument_id.value].apply_deltas(deltas)
    assert _book_levels(books[es], 5) == sim_es
    assert _book_levels(books[mnq], 10) == sim_mnq
    # 1-second external bars of both markets, each stream on its own request id, stamped at their close
    for bar_type in (es_bar, mnq_bar):
        stream = [b for b in collector.bars if b.bar_type == BarType.from_str(bar_type)]
        assert len(stream) >= 2, bar_type
        closes = [b.ts_event for b in stream]
        assert closes == sorted(set(closes)) and all(ts % 1_000_000_000 == 0 for ts in closes)
    assert {str(b.bar_type) for b in collector.bars} == {es_bar, mnq_bar}
    # custom data: the pushed headline (commas kept) and chain snapshots with calls and puts
    news = [d for d in collector.custom if isinstance(d, NewsHeadline)]
    assert [n.headline for n in news] == [headline]
    assert news[0].instrument_id.value == es and news[0].symbols == "@ES:SPY"
    chains = [d for d in collector.custom if isinstance(d, OptionChainSnapshot)]
    assert chains and chains[0].instrument_id.value == es
    assert set(chains[0].rights.tolist()) == {1.0, -1.0} and (chains[0].strikes % 5 == 0).all()


def test_killed_iqconnect_reconnects_rewatches_and_backfills_every_bar_once(markets):
    ids = current_ids(markets)
    es = ids["ES"].value
    symbol = f"@{ids['ES'].symbol}"
    bar_type = f"{es}-1-SECOND-LAST-EXTERNAL"
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        collector = Collector(CollectorConfig(component_id="COLLECTOR", quotes=[es], trades=[es], bars=[bar_type]))
        node = build_node(sim.ports, collector)
        alerts: list[dict] = []
        node.kernel.msgbus.subscribe(topic="mia.alerts", handler=alerts.append)
        marks: dict[str, int] = {}

        def kill() -> None:
            marks["killed"] = time.time_ns()
            sim.stop_listening()

        def revive() -> None:
            sim.resume_listening()
            marks["revived"] = time.time_ns()

        def script(loop):
            loop.call_later(3.0, kill)
            loop.call_later(5.5, revive)

        run_node(node, 9.0, script)
        client = data_client(node)
        commands = sim.call(lambda s: list(s.commands))
        bars = collector.bars
        first, last = bars[0].ts_event - 1_000_000_000, bars[-1].ts_event - 1_000_000_000
        expected = sim.call(lambda s: interval_bars(s.market, symbol, 1, first, last + 999_999_999))

    closes = [b.ts_event for b in bars]
    assert len(closes) == len(set(closes)), "a bar was delivered twice"
    assert closes == sorted(closes)
    # every bar the simulator made over the run, with the disconnected seconds backfilled, none lost
    expected_closes = [int(s) + 1_000_000_000 for s in expected.start]
    assert closes == expected_closes
    assert [b.volume.as_double() for b in bars] == [float(v) for v in expected.volume]
    assert [b.close.as_double() for b in bars] == [float(c) * 0.25 for c in expected.close]
    assert any(marks["killed"] < c < marks["revived"] for c in closes), "the outage was not backfilled"
    # the client reconnected every port and watched again (Level 1 and bars)
    assert client.level1.stats.connects >= 2 and client.bars.stats.connects >= 2
    assert sum(1 for port, line in commands if port == "level1" and line == f"w{symbol}") >= 2
    assert sum(1 for port, line in commands if port == "level1" and line.startswith("S,SELECT UPDATE FIELDS")) >= 2
    rewatch = [line for port, line in commands if port == "bars" and line.startswith(f"BW,{symbol},1,")]
    assert len(rewatch) >= 2 and rewatch[-1].split(",")[3] != ""  # resumed from the last bar it had
    assert client.level1.stats.disconnects >= 2  # the kill, then the node's own stop
    assert any(q.ts_init > marks["revived"] for q in collector.quotes), "quotes did not resume"
    # people are told: a disconnect alert for the Level 1 port, then a reconnect (the alert actor's input)
    level1 = [(a["kind"], a["fields"]["port"]) for a in alerts if a["source"] == "IQFEED"]
    assert ("disconnect", "level1") in level1 and ("reconnect", "level1") in level1
    assert level1.index(("disconnect", "level1")) < level1.index(("reconnect", "level1"))


def test_server_side_disconnect_fails_nothing_and_data_resumes(markets):
    ids = current_ids(markets)
    es = ids["ES"].value
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        collector = Collector(CollectorConfig(component_id="COLLECTOR", quotes=[es], trades=[es]))
        node = build_node(sim.ports, collector)
        marks: dict[str, int] = {}

        def drop() -> None:
            marks["dropped"] = time.time_ns()
            sim.call(lambda s: s.disconnect_all())

        run_node(node, 5.0, lambda loop: loop.call_later(2.0, drop))
        client = data_client(node)

    assert client.level1.stats.disconnects >= 1 and client.level1.stats.connects >= 2
    assert any(t.ts_init > marks["dropped"] + 200_000_000 for t in collector.trades)
    tick_ids = [int(t.trade_id.value) for t in collector.trades]
    assert len(tick_ids) == len(set(tick_ids)), "a trade was delivered twice after the reconnect"


def test_malformed_and_unknown_lines_are_counted_and_skipped(markets):
    ids = current_ids(markets)
    es = ids["ES"].value
    symbol = f"@{ids['ES'].symbol}"
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        collector = Collector(CollectorConfig(component_id="COLLECTOR", quotes=[es], trades=[es], depth_by_price=[es]))
        node = build_node(sim.ports, collector)

        def garbage() -> None:
            def push(s):
                s.push_raw("level1", f"Q,{symbol},not-a-price,5,6800.25,7,,,6800.00,3,,,1,100,Cba,")
                s.push_raw("level1", "Q,@ESZ99,1,1,1,1")
                s.push_raw("level1", "ZZ,what is this,")
                s.push_raw("level1", "S,SOMETHING NEW,1,2,")
                s.push_raw("depth", f"8,{symbol},B,not-a-price,5,1,2,10:00:00.000000,2025-01-01,")
                s.push_raw("depth", "%%%")
                s.push_raw("bars", "B1,BC,@ESZ26,garbage")
                s.push_raw("lookup", "NOBODY,LH,2025-01-01,")

            sim.call(push)

        run_node(node, 4.0, lambda loop: loop.call_later(1.5, garbage))
        client = data_client(node)
        stats = client.stats()
        pushed_at = time.time_ns()

    assert stats["level1_parser"]["malformed"] >= 1
    assert stats["level1_parser"]["unknown_symbol"] >= 1
    assert stats["level2_parser"]["malformed"] >= 1
    assert stats["ports"]["level1"]["unknown"] >= 1
    assert stats["ports"]["depth"]["unknown"] >= 1
    assert stats["unattributed_lookup_lines"] >= 1
    assert stats["ports"]["level1"]["handler_errors"] == 0 and stats["ports"]["depth"]["handler_errors"] == 0
    assert client.level1.stats.connects == 1  # nothing above broke the connection
    late = [q for q in collector.quotes if q.ts_init > pushed_at - 2_000_000_000]
    assert late, "the client stopped parsing after the garbage"


def test_server_state_and_stale_feed_are_surfaced(markets):
    ids = current_ids(markets)
    es = ids["ES"].value
    with simulator_thread(markets, SimulatorSource(rate=20)) as sim:
        collector = Collector(CollectorConfig(component_id="COLLECTOR", quotes=[es]))
        node = build_node(sim.ports, collector, stale_after_secs=1.0, handshake_timeout_secs=1.0, use_admin_port=False)
        states: list[dict[str, str]] = []
        seen: dict[str, bool] = {}

        def snapshot() -> None:
            states.append(dict(data_client(node).feed_state))

        def watch(loop) -> None:
            """Unmute as soon as the feed was declared stale; stop once it reconnected."""
            client = data_client(node)
            if not seen.get("stale") and client.level1.stats.stale >= 1:
                seen["stale"] = True
                sim.call(lambda s: s.mute("level1", False))
            elif seen.get("stale") and client.level1.stats.connects >= 2 and client.level1.is_connected:
                node.stop()
                return
            loop.call_later(0.1, lambda: watch(loop))

        def script(loop):
            loop.call_later(1.5, lambda: sim.call(lambda s: s.push_system("level1", "S,SERVER DISCONNECTED")))
            loop.call_later(2.0, snapshot)
            loop.call_later(2.2, lambda: sim.call(lambda s: s.push_system("level1", "S,SERVER CONNECTED")))
            loop.call_later(2.6, snapshot)
            loop.call_later(2.8, lambda: sim.call(lambda s: s.mute("level1")))
            loop.call_later(2.9, lambda: watch(loop))

        run_node(node, 25.0, script)
        client = data_client(node)

    assert states[0]["server"] == "disconnected"
    assert states[0]["service"] == "real_time"  # IQConnect's S,CUST: not a delayed login
    assert states[1]["server"] == "connected"
    assert client.level1.stats.stale >= 1
    assert client.level1.stats.connects >= 2


def test_history_requests_return_ticks_and_close_stamped_bars(markets):
    ids = current_ids(markets)
    es = ids["ES"].value
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        collector = Collector(CollectorConfig(component_id="COLLECTOR"))
        node = build_node(sim.ports, collector)

        def request(loop) -> None:
            now = pd.Timestamp.now(tz="UTC")
            collector.request_trade_ticks(ids["ES"], start=now - pd.Timedelta(seconds=5), end=now)
            collector.request_bars(
                BarType.from_str(f"{es}-1-SECOND-LAST-EXTERNAL"), start=now - pd.Timedelta(seconds=5), end=now
            )

        time.sleep(3.0)  # let the simulator build some history
        run_node(node, 3.0, lambda loop: loop.call_later(1.0, lambda: request(loop)))

    trades = [d for d in collector.responses if type(d).__name__ == "TradeTick"]
    bars = [d for d in collector.responses if type(d).__name__ == "Bar"]
    assert len(trades) > 10 and all(t.instrument_id.value == es for t in trades)
    assert [t.ts_event for t in trades] == sorted(t.ts_event for t in trades)
    assert len(bars) >= 3 and all(b.ts_event % 1_000_000_000 == 0 for b in bars)
