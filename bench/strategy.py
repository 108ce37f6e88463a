"""Throughput of the full MIA strategy with the risk actor against a bare nautilus engine, same run.

Both sides replay the same quotes and trades of the demo catalog (ES and MNQ, six Globex days, the
December roll). The MIA side is ``mia backtest`` itself (``plan_backtest`` + ``run_backtest`` with the
shipped ``config/``): the feature actor, the regime source (HMM models where fitted, else the bar-rule
regimes), the risk actor and the MIA router strategy, every journal and the run folder written; the
bare side is a ``BacktestEngine`` with an empty strategy (``bench/backtest_throughput.py``). Each
side's time includes loading the data from the catalog. Runs alternate (MIA, bare, ...) so machine
noise hits both alike; medians are reported. ``--days`` shortens the demo catalog on a slow machine.

    .venv/bin/python bench/strategy.py [--catalog DIR] [--repeat 3] [--days 6]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backtest_throughput import bare_run  # noqa: E402

from catalog.demo import generate_demo_catalog  # noqa: E402
from mia_strategies.backtest import plan_backtest  # noqa: E402
from mia_strategies.backtest import run_backtest  # noqa: E402
from mia_strategies.config import load_backtest  # noqa: E402
from mia_strategies.config import load_markets  # noqa: E402
from mia_strategies.risk.journal import risk_event_summary  # noqa: E402
from mia_strategies.risk.journal import risk_event_table  # noqa: E402


def mia_run(catalog_path: Path, out: Path) -> tuple[int, float, int, dict, str]:
    """Run ``mia backtest`` on the catalog; return events, seconds, trades, risk events, strategy name."""
    started = time.perf_counter()
    cfg, base = load_backtest(ROOT / "config" / "backtest.yaml")
    plan = plan_backtest(cfg, base, catalog=catalog_path, out=out)
    outcome = run_backtest(plan)
    elapsed = time.perf_counter() - started
    summary = risk_event_summary(risk_event_table(outcome.out_dir))
    return (
        int(outcome.summary["total_events"]),
        elapsed,
        len(outcome.trades),
        summary.to_dict(orient="index"),
        type(outcome.strategy).__name__,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=None, help="catalog to use (default: a fresh demo)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=int, default=6, help="trading days of the generated demo catalog")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        catalog_path = args.catalog
        if catalog_path is None:
            catalog_path = Path(tmp) / "demo"
            t0 = time.perf_counter()
            markets = load_markets(ROOT / "config" / "markets.yaml")
            demo = generate_demo_catalog(catalog_path, markets, trading_days=args.days)
            print(f"demo catalog: {demo.quotes + demo.trades:,} ticks in {time.perf_counter() - t0:.1f} s")
        cfg, base = load_backtest(ROOT / "config" / "backtest.yaml")
        plan_data = plan_backtest(cfg, base, catalog=catalog_path, out=Path(tmp) / "plan").data
        mia_rates: list[float] = []
        bare_rates: list[float] = []
        events = trades = 0
        risk_events: dict = {}
        strategy = ""
        for i in range(args.repeat):
            events, mia_elapsed, trades, risk_events, strategy = mia_run(catalog_path, Path(tmp) / f"run{i}")
            mia_rates.append(events / mia_elapsed)
            bare_events, bare_elapsed = bare_run(catalog_path, plan_data)
            bare_rates.append(bare_events / bare_elapsed)
            print(
                f"run {i + 1}: mia {events:,} events {mia_elapsed:.2f} s ({events / mia_elapsed:,.0f}/s, "
                f"{trades} trades) | bare {bare_events:,} events {bare_elapsed:.2f} s "
                f"({bare_events / bare_elapsed:,.0f}/s)",
            )
        mia_med = statistics.median(mia_rates)
        bare_med = statistics.median(bare_rates)
        result = {
            "strategy": strategy,
            "events": events,
            "trades": trades,
            "mia_strategy_events_per_second": round(mia_med),
            "bare_events_per_second": round(bare_med),
            "ratio_mia_to_bare": round(mia_med / bare_med, 3),
            "repeat": args.repeat,
            "risk_events_per_root": risk_events,
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
