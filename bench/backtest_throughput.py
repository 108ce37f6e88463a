"""Throughput of `mia backtest`'s engine against a bare nautilus engine on the same data, same run.

Both sides load the same quotes and trades from the catalog and process them in a nautilus backtest:
MIA runs the full BacktestNode with ``--strategy`` (default ``atr_breakout``: the plumbing every run
pays, i.e. bars, brackets, rolls, MAE/MFE, bar-rule regimes, alert and operator actors, run folder;
``mia`` adds the feature, risk and router costs, see ``bench/strategy.py``) on ES and MNQ; the
baseline is a bare ``BacktestEngine`` with an empty strategy. Each side's time covers
catalog loading plus the run, so the ratio measures MIA's overhead on top of nautilus. Runs alternate
(MIA, bare, MIA, bare, ...) so machine noise hits both alike; medians are reported.

    .venv/bin/python bench/backtest_throughput.py [--catalog DIR] [--repeat 3] [--strategy atr_breakout]
"""

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.config import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.trading.strategy import Strategy


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.demo import generate_demo_catalog  # noqa: E402
from mia_strategies.assembly import strategy_parts  # noqa: E402
from mia_strategies.backtest import plan_backtest  # noqa: E402
from mia_strategies.backtest import run_backtest  # noqa: E402
from mia_strategies.config import load_backtest  # noqa: E402
from mia_strategies.config import load_markets  # noqa: E402


class EmptyStrategy(Strategy):
    """Does nothing: the engine's own cost of replaying the data."""


def bare_run(catalog_path: Path, plan_data: list) -> tuple[int, float]:
    """Load the plan's data configs directly and replay them in a bare engine."""
    started = time.perf_counter()
    catalog = ParquetDataCatalog(str(catalog_path))
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_venue(
        venue=Venue("GLBX"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(100_000, USD)],
        default_leverage=Decimal(1),
    )
    ids = sorted({cfg.instrument_id for cfg in plan_data if cfg.instrument_id})
    for instrument in catalog.instruments(instrument_ids=ids):
        engine.add_instrument(instrument)
    count = 0
    for cfg in plan_data:
        kwargs = {"start": cfg.start_time, "end": cfg.end_time}
        if cfg.data_cls is QuoteTick:
            data = catalog.quote_ticks(instrument_ids=[cfg.instrument_id], **kwargs)
        elif cfg.data_cls is TradeTick:
            data = catalog.trade_ticks(instrument_ids=[cfg.instrument_id], **kwargs)
        else:
            data = catalog.bars(bar_types=cfg.bar_types, **kwargs)
        engine.add_data(data)
        count += len(data)
    engine.add_strategy(EmptyStrategy(StrategyConfig()))
    engine.run()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=None, help="catalog to use (default: a fresh demo)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategy", choices=["atr_breakout", "mia"], default="atr_breakout")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        catalog_path = args.catalog
        if catalog_path is None:
            catalog_path = Path(tmp) / "demo"
            t0 = time.perf_counter()
            demo = generate_demo_catalog(catalog_path, load_markets(ROOT / "config" / "markets.yaml"))
            print(f"demo catalog: {demo.quotes + demo.trades:,} ticks in {time.perf_counter() - t0:.1f} s")
        cfg, base = load_backtest(ROOT / "config" / "backtest.yaml")
        mia_rates: list[float] = []
        bare_rates: list[float] = []
        events = 0
        for i in range(args.repeat):
            plan = plan_backtest(cfg, base, catalog=catalog_path, out=Path(tmp) / f"run{i}")
            strategy = plan.strategy.model_copy(update={"strategy": args.strategy})
            parts = strategy_parts(strategy, base, plan.slots, plan.markets.venue, plan.staging_dir)
            plan = dataclasses.replace(plan, strategy=strategy, parts=parts)
            t0 = time.perf_counter()
            outcome = run_backtest(plan)
            mia_elapsed = time.perf_counter() - t0
            events = int(outcome.summary["total_events"])
            mia_rates.append(events / mia_elapsed)
            bare_events, bare_elapsed = bare_run(catalog_path, plan.data)
            bare_rates.append(bare_events / bare_elapsed)
            print(
                f"run {i + 1}: mia {events:,} events {mia_elapsed:.2f} s ({events / mia_elapsed:,.0f}/s, "
                f"{outcome.summary['trades']} trades) | bare {bare_events:,} events {bare_elapsed:.2f} s "
                f"({bare_events / bare_elapsed:,.0f}/s)",
            )
        mia_med = statistics.median(mia_rates)
        bare_med = statistics.median(bare_rates)
        result = {
            "events": events,
            "mia_events_per_second": round(mia_med),
            "bare_events_per_second": round(bare_med),
            "ratio_mia_to_bare": round(mia_med / bare_med, 3),
            "repeat": args.repeat,
            "strategy": args.strategy,
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
