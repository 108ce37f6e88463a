"""Parity: the same strategy over the same ticks in a backtest and through the DTC simulator sends the same
orders, and (with the latency below the ticks' spacing) gets the same fills.

The live side is a real TradingNode with the Sierra Chart execution client and the simulator on real sockets,
driven in lock step: each quote first moves the simulator's market (the exchange sees it first, as in a
backtest where the matching engine processes a tick before the strategy does), the node settles, then the
strategy gets the tick and the node settles again. Where fills may differ (see docs/sierrachart.md): the
backtest delays orders by its latency model, so an order fills against the quote in force when it arrives,
while the lock-step replay delivers it before the next tick; the two only differ when two ticks are closer
than the latency (1 µs here; the closest ticks of this data are 0.5 ms apart).
"""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.model.data import BarType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator.feeds import load_catalog_ticks
from catalog.demo import generate_demo_catalog
from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.config import FillModelSettings
from mia_strategies.config import VenueSettings
from tests.sierrachart_helpers import MARKETS_FILE
from tests.sierrachart_helpers import REPO
from tests.sierrachart_helpers import TickBracket
from tests.sierrachart_helpers import TickBracketConfig
from tests.sierrachart_helpers import run_async
from tests.sierrachart_helpers import sim_config
from tests.sierrachart_helpers import start_rig


STRATEGY = ("tests.sierrachart_helpers:TickBracket", "tests.sierrachart_helpers:TickBracketConfig")
PARAMS = {"every_quotes": 30, "stop_points": 2.0, "target_points": 2.0, "flat_minutes_before_close": 0}


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory, markets) -> Path:
    """One demo day of ES quotes, with 1-minute bars instead of trade prints.

    Without trade ticks both sides fill from quotes only: nautilus 1.221 applies every trade print to
    its L1 book before ``QuoteBookGuard`` restores the quote, so in a backtest a print at a resting
    limit's price fills it (see docs/sierrachart.md, "Parity"); the DTC simulator, like Sierra Chart,
    needs the market to trade through.
    """
    root = tmp_path_factory.mktemp("parity")
    generate_demo_catalog(root / "demo", markets, roots=("ES",), trading_days=1, intensity=0.03, seed=3)
    demo = ParquetDataCatalog(str(root / "demo"))
    instrument = demo.instruments()[0]
    trades = demo.trade_ticks(instrument_ids=[instrument.id.value])
    frame = pd.DataFrame(
        {"price": [t.price.as_double() for t in trades], "size": [t.size.as_double() for t in trades]},
        index=pd.to_datetime([t.ts_event for t in trades], utc=True),
    )
    ohlc = frame["price"].resample("1min", label="right", closed="left").ohlc().dropna()
    ohlc["volume"] = frame["size"].resample("1min", label="right", closed="left").sum().reindex(ohlc.index)
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    bars = BarDataWrangler(bar_type, instrument).process(ohlc)
    path = root / "catalog"
    catalog = ParquetDataCatalog(str(path))
    catalog.write_data([instrument])
    catalog.write_data(demo.quote_ticks(instrument_ids=[instrument.id.value]))
    catalog.write_data(bars)
    return path


def _backtest(catalog: Path, out: Path) -> tuple[list, list, list]:
    config = BacktestConfig(
        catalog=catalog,
        instruments=["ES"],
        venue=VenueSettings(latency_ms=0.001, fill_model=FillModelSettings(prob_fill_on_limit=1.0, prob_slippage=0.0)),
        markets_file=MARKETS_FILE,
    )
    plan = plan_backtest(config, REPO / "config", out=out)
    plan = replace(plan, strategy_impl=STRATEGY, strategy_extra=PARAMS)
    outcome = run_backtest(plan)
    strategy: TickBracket = outcome.strategy
    fills = sorted(
        (strategy.order_index[r.client_order_id], r.side, r.quantity, r.price) for r in outcome.fills.itertuples()
    )
    return plan.slots, strategy.sent, fills


def test_backtest_and_simulator_send_the_same_orders_and_get_the_same_fills(one_day: Path, tmp_path: Path) -> None:
    slots, backtest_orders, backtest_fills = _backtest(one_day, tmp_path / "backtest")
    assert len(backtest_orders) >= 9, "the data must make the strategy trade a few times"
    ticks = load_catalog_ticks(one_day, [s.instrument_id for s in slots])
    live: dict[str, list] = {}

    async def scenario() -> None:
        settings = sim_config(
            [slots[0].instrument_id],
            limit_fill_price="market",  # a limit the quote gaps through fills at the better touch, as in nautilus
            depth_limited_fills=False,  # the backtest's CME fill model fills the whole order at the touch
            stop_trigger="quote",  # nautilus triggers stops on the quote (trade_execution off with quotes)
            emit_pending_open=False,
        )
        async with DtcSimulator(settings) as sim:
            strategy = TickBracket(
                TickBracketConfig(slots=slots, trade_size={"ES": 1}, venue="GLBX", **PARAMS),  # type: ignore[arg-type]
            )
            rig = await start_rig(sim, instrument_ids=[slots[0].instrument_id], strategies=[strategy])
            symbol = rig.symbol(slots[0].instrument_id)
            for tick in ticks:
                # the exchange sees the quote first (as a backtest's matching engine does), then the strategy
                sim.quote(
                    symbol,
                    tick.bid_price.as_double(),
                    tick.bid_size.as_double(),
                    tick.ask_price.as_double(),
                    tick.ask_size.as_double(),
                )
                await rig.lockstep()
                rig.data.push(tick)
                await rig.lockstep()
            live["orders"] = list(strategy.sent)
            live["fills"] = sorted(
                (
                    strategy.order_index[f.client_order_id.value],
                    f.order_side.name,
                    f.last_qty.as_double(),
                    f.last_px.as_double(),
                )
                for o in rig.cache.orders()
                for f in o.events
                if isinstance(f, OrderFilled)
            )
            live["positions"] = [p.signed_qty for p in rig.cache.positions_open()]
            await rig.stop()

    run_async(scenario, timeout=150)
    assert live["orders"] == backtest_orders  # same decisions, same quote, same prices, in the same order
    assert live["fills"] == backtest_fills  # and, with the latency below the tick spacing, the same fills
    assert len(live["fills"]) >= 2 * (len(live["orders"]) // 3) - 1  # every bracket entered and (but the last) exited
