"""Feature pipeline cost against the bare nautilus engine replaying the same data, measured in the same run.

Three engine runs per repeat, alternated so machine noise hits them alike (medians reported):

- bare: a ``BacktestEngine`` replaying the plan's quotes and trades, with an actor that subscribes to
  the same quotes, trades and 1-minute bars and does nothing (the engine's own processing + dispatch);
- features (training set, 375 features) and features (inference set, 151 features): the same engine
  with the feature actor instead.

Online cost = feature run - bare run (``engine.run()`` only; loading is identical and excluded). The
time inside ``on_bar`` is measured directly: it includes applying the bar's queued ticks (the actor
queues ticks with no Python code per tick and applies them in one compiled call per bar); the rest,
divided by the ticks, is what a tick costs outside it. The goal (issue 3) is that the full online
feature set costs less than the bare engine's own processing of the same ticks:
``(features - bare) / bare < 1``. The compiled kernels are loaded (or compiled, on a fresh install)
once before the timed runs, as the actor does in ``on_start``.

Offline: ``mia features build``'s replay (catalog load + replay) of the training set against the bare
engine loading and running the same data.

    .venv/bin/python bench/features.py [--days 2] [--intensity 1.0] [--repeat 3] [--catalog DIR]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nautilus_trader.backtest.engine import BacktestEngine  # noqa: E402
from nautilus_trader.backtest.node import BacktestNode  # noqa: E402
from nautilus_trader.common.actor import Actor  # noqa: E402
from nautilus_trader.config import ActorConfig  # noqa: E402
from nautilus_trader.config import BacktestEngineConfig  # noqa: E402
from nautilus_trader.config import DataEngineConfig  # noqa: E402
from nautilus_trader.config import LoggingConfig  # noqa: E402
from nautilus_trader.model.currencies import USD  # noqa: E402
from nautilus_trader.model.data import BarType  # noqa: E402
from nautilus_trader.model.data import CustomData  # noqa: E402
from nautilus_trader.model.enums import AccountType  # noqa: E402
from nautilus_trader.model.enums import OmsType  # noqa: E402
from nautilus_trader.model.identifiers import ClientId  # noqa: E402
from nautilus_trader.model.identifiers import Venue  # noqa: E402
from nautilus_trader.model.objects import Money  # noqa: E402
from nautilus_trader.persistence.catalog import ParquetDataCatalog  # noqa: E402

from catalog.demo import generate_demo_catalog  # noqa: E402
from mia_strategies.actors.features import FeatureActor  # noqa: E402
from mia_strategies.actors.features import FeatureActorConfig  # noqa: E402
from mia_strategies.config import load_backtest  # noqa: E402
from mia_strategies.config import load_markets  # noqa: E402
from mia_strategies.features.engine import FeatureHub  # noqa: E402
from mia_strategies.features.sets import load_feature_sets  # noqa: E402
from research.features import FEATURE_CLIENT_ID  # noqa: E402
from research.features import build_features  # noqa: E402
from research.features import plan_features  # noqa: E402


class SubscribeOnlyConfig(ActorConfig, frozen=True):
    """The bar types whose instruments to subscribe."""

    bar_types: list[str]


class SubscribeOnly(Actor):
    """Subscribes to what the feature actor subscribes to and does nothing: the engine's own cost."""

    def on_start(self) -> None:
        for text in self.config.bar_types:
            bar_type = BarType.from_str(text)
            self.subscribe_quote_ticks(bar_type.instrument_id)
            self.subscribe_trade_ticks(bar_type.instrument_id)
            self.subscribe_bars(bar_type)


class TimedFeatureActor(FeatureActor):
    """The feature actor with its bar handler timed (per-bar cost)."""

    bar_seconds = 0.0
    bars = 0

    def on_bar(self, bar: Any) -> None:
        started = time.perf_counter()
        super().on_bar(bar)
        TimedFeatureActor.bar_seconds += time.perf_counter() - started
        TimedFeatureActor.bars += 1


def load_plan_data(plan: Any) -> tuple[list[Any], list[tuple[list[Any], str | None]]]:
    """The plan's instruments and data, loaded once (nautilus's own loader)."""
    ids = sorted({b.instrument_id for b in plan.bars})
    instruments = ParquetDataCatalog(str(plan.catalog_path)).instruments(instrument_ids=ids)
    data = []
    for config in plan.data:
        result = BacktestNode.load_data_config(config, plan.start_ns, plan.end_ns)
        items = list(result.data or [])
        data.append((items, config.client_id))
    return instruments, data


def run_engine(
    plan: Any, instruments: list[Any], data: list[tuple[list[Any], str | None]], actor: Actor
) -> tuple[float, int]:
    """``engine.run()`` seconds and events for one actor over the plan's data."""
    engine = BacktestEngine(
        BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
            data_engine=DataEngineConfig(time_bars_build_with_no_updates=False, time_bars_timestamp_on_close=True),
        ),
    )
    engine.add_venue(
        venue=Venue("GLBX"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(100_000, USD)],
    )
    for instrument in instruments:
        engine.add_instrument(instrument)
    events = 0
    for items, client_id in data:
        if not items:
            continue
        if client_id:
            engine.add_data(
                items,
                client_id=ClientId(client_id) if isinstance(items[0], CustomData) else ClientId(FEATURE_CLIENT_ID),
            )
        else:
            engine.add_data(items)
        events += len(items)
    engine.add_actor(actor)
    started = time.perf_counter()
    engine.run(start=plan.start_ns, end=plan.end_ns)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=None, help="catalog to use (default: a fresh demo)")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    markets = load_markets(ROOT / "config" / "markets.yaml")
    feature_sets = load_feature_sets(ROOT / "config" / "feature_sets.yaml")
    cfg, base = load_backtest(ROOT / "config" / "backtest.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        catalog = args.catalog
        if catalog is None:
            catalog = Path(tmp) / "demo"
            generate_demo_catalog(catalog, markets, trading_days=args.days, intensity=args.intensity)
        plans = {
            name: plan_features(cfg, base, feature_sets, catalog=catalog, set_name=name)
            for name in ("training", "inference")
        }
        plan = plans["training"]
        warm = FeatureHub(feature_sets, {r: f"{r}.training" for r in plan.set_by_root}, markets)
        for b in plan.bars:
            warm.register(b.instrument_id)
        print(f"kernels ready in {warm.warm_up():.2f} s (compiled on a fresh install, else loaded from the cache)")
        instruments, data = load_plan_data(plan)
        bar_types = [b.bar_type for b in plan.bars]
        runs: dict[str, list[float]] = {"bare": [], "training": [], "inference": []}
        per_bar: dict[str, list[float]] = {"training": [], "inference": []}
        events = bars = 0
        offline: list[float] = []
        bare_with_load: list[float] = []
        for i in range(args.repeat):
            elapsed, events = run_engine(
                plan, instruments, data, SubscribeOnly(SubscribeOnlyConfig(bar_types=bar_types))
            )
            runs["bare"].append(elapsed)
            for name, p in plans.items():
                TimedFeatureActor.bar_seconds, TimedFeatureActor.bars = 0.0, 0
                actor = TimedFeatureActor(
                    FeatureActorConfig(bar_types=bar_types, feature_sets=dict(p.set_by_root), subscribe_custom=False),
                )
                elapsed, _ = run_engine(plan, instruments, data, actor)
                runs[name].append(elapsed)
                bars = TimedFeatureActor.bars
                per_bar[name].append(TimedFeatureActor.bar_seconds / max(bars, 1))
            started = time.perf_counter()
            result = build_features(plan, feature_sets, markets)
            offline.append(time.perf_counter() - started)
            started = time.perf_counter()
            inst, dat = load_plan_data(plan)
            run_engine(plan, inst, dat, SubscribeOnly(SubscribeOnlyConfig(bar_types=bar_types)))
            bare_with_load.append(time.perf_counter() - started)
            print(
                f"run {i + 1}: bare {runs['bare'][-1]:.2f} s | training {runs['training'][-1]:.2f} s | "
                f"inference {runs['inference'][-1]:.2f} s | offline build {offline[-1]:.2f} s "
                f"({len(result.rows):,} bars) vs bare load+run {bare_with_load[-1]:.2f} s",
            )
        med = {k: statistics.median(v) for k, v in runs.items()}
        ticks = events
        report: dict[str, Any] = {"events": events, "decision_bars": bars, "bare_engine_s": round(med["bare"], 3)}
        for name in ("training", "inference"):
            extra = med[name] - med["bare"]
            bar_s = statistics.median(per_bar[name])
            tick_us = max(0.0, extra - bar_s * bars) / ticks * 1e6
            report[name] = {
                "features": len(feature_sets.resolve(f"ES.{name}").names),
                "engine_s": round(med[name], 3),
                "overhead_vs_bare": round(extra / med["bare"], 3),
                "per_bar_us": round(bar_s * 1e6, 1),
                "per_tick_us": round(tick_us, 2),
                "goal_met": extra < med["bare"],
            }
        off = statistics.median(offline)
        bare_all = statistics.median(bare_with_load)
        report["offline"] = {
            "build_s": round(off, 3),
            "bars_per_s": round(bars / off),
            "events_per_s": round(events / off),
            "bare_engine_load_and_run_s": round(bare_all, 3),
            "ratio_build_vs_bare": round(off / bare_all, 3),
        }
        print(json.dumps(report, indent=2))
        for name in ("training", "inference"):
            r = report[name]
            print(
                f"{name}: {r['features']} features, online cost {r['overhead_vs_bare']:.2f}x the bare engine's own "
                f"processing ({r['per_bar_us']:.0f} us per bar with its ticks, {r['per_tick_us']:.2f} us per tick "
                "outside on_bar): "
                f"goal {'met' if r['goal_met'] else 'NOT met'}",
            )
        o = report["offline"]
        print(
            f"offline: {o['bars_per_s']:,} bars/s ({o['events_per_s']:,} events/s), "
            f"{o['ratio_build_vs_bare']:.2f}x the bare engine's load + replay time",
        )


if __name__ == "__main__":
    main()
