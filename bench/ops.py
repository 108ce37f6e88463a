"""Cost of the operations layer (issue 8), each part against a baseline measured in the same run.

- Alerts: ``AlertManager.submit`` per alert (rule lookup, de-duplication, rate limit, one queue put
  per channel) against a bare ``queue.Queue.put_nowait`` of the same alerts, which is the least any
  hand-off to a worker thread can cost; duplicates within the window are timed separately.
- Market memory: writing a pattern and its outcome per bar (committed every 1,000 bars) and a
  10-nearest-neighbour query, against a numpy brute-force search (standardise, squared distance,
  ``argpartition``) over the same patterns; at several store sizes.
- Actors in a backtest: ``mia backtest`` on the demo catalog with the operations actors removed
  (baseline), with the alert and operator-control actors it runs by default, and with the market
  memory added too (``mia.market_memory_in_backtest``). Runs alternate so machine noise hits every
  variant alike; the fastest of ``--repeat`` runs is reported.
- Dashboard: reading a run folder (``load_run``) against plain pandas reads of the same CSV and
  JSON-lines files, then building every figure and serialising it to JSON (one browser redraw).

    .venv/bin/python bench/ops.py [--catalog DIR] [--days 2] [--repeat 2] [--sizes 1000,10000]
"""

import argparse
import dataclasses
import logging
import queue
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.demo import generate_demo_catalog  # noqa: E402
from mia_strategies.backtest import BacktestPlan  # noqa: E402
from mia_strategies.backtest import plan_backtest  # noqa: E402
from mia_strategies.backtest import run_backtest  # noqa: E402
from mia_strategies.config import BacktestConfig  # noqa: E402
from mia_strategies.config import load_markets  # noqa: E402


OPS_ACTORS = {
    "alerts": "mia_strategies.actors.alerts:AlertActor",
    "control": "mia_strategies.ops.control:OperatorControlActor",
    "memory": "mia_strategies.actors.memory:MarketMemoryActor",
}


def alerts_submit(count: int) -> dict[str, float]:
    """Microseconds per submitted alert, per duplicate, and per bare queue put (the baseline)."""
    from mia_strategies.ops.alerts import Alert
    from mia_strategies.ops.alerts import AlertManager
    from mia_strategies.ops.alerts import AlertsConfig
    from mia_strategies.ops.alerts import LogChannel
    from mia_strategies.ops.alerts import LogSettings
    from mia_strategies.ops.alerts import Priority

    alerts = [Alert(kind="slippage", priority=Priority.WARNING, title=f"fill {i}") for i in range(count)]
    bare: queue.Queue[Alert] = queue.Queue(maxsize=count + 10)
    started = time.perf_counter()
    for alert in alerts:
        bare.put_nowait(alert)
    baseline = (time.perf_counter() - started) / count
    config = AlertsConfig().model_copy(update={"queue_size": count + 10})
    manager = AlertManager(config, channels=[LogChannel(LogSettings(min_priority="urgent"))]).start()
    try:
        started = time.perf_counter()
        for alert in alerts:
            manager.submit(alert)
        submit = (time.perf_counter() - started) / count
        repeats = alerts[: min(count, 2000)]
        started = time.perf_counter()
        for alert in repeats:  # the same alerts again, inside the de-duplication window
            manager.submit(alert)
        duplicate = (time.perf_counter() - started) / len(repeats)
    finally:
        manager.close(timeout=10)
    return {"submit_us": submit * 1e6, "duplicate_us": duplicate * 1e6, "queue_put_us": baseline * 1e6}


def memory_query(size: int, dims: int = 16, k: int = 10) -> dict[str, float]:
    """Per-bar write cost and neighbour-query latency of ``MarketMemory`` against numpy brute force."""
    from mia_strategies.ops.memory import MarketMemory
    from mia_strategies.ops.memory import Pattern

    rng = np.random.default_rng(1)
    features = rng.normal(size=(size, dims)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(3), size=size).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp, MarketMemory(Path(tmp) / "m.db", commit_every=1000) as memory:
        started = time.perf_counter()
        for i in range(size):
            memory.store(Pattern("ESZ25.GLBX", i, "ES.bench", features[i], "trend", probabilities[i], 5000.0))
            memory.set_outcome("ESZ25.GLBX", i, float(rng.normal()), i + 5)
            memory.maybe_commit()
        memory.commit()
        write = (time.perf_counter() - started) / size
        probe = rng.normal(size=dims)
        reps = 20 if size <= 10_000 else 5
        memory.neighbours("ES.bench", probe, probabilities[0], k=k, as_of_ns=2**62)  # builds the index
        started = time.perf_counter()
        for _ in range(reps):
            memory.neighbours("ES.bench", probe, probabilities[0], k=k, as_of_ns=2**62)
        query = (time.perf_counter() - started) / reps
    values = features.astype(np.float64)
    started = time.perf_counter()
    for _ in range(reps):
        mean, std = values.mean(axis=0), values.std(axis=0)
        distance = (((values - mean) / std - (probe - mean) / std) ** 2).sum(axis=1)
        np.argpartition(distance, k)[:k]
    brute = (time.perf_counter() - started) / reps
    return {"write_us": write * 1e6, "query_ms": query * 1e3, "numpy_ms": brute * 1e3}


def _variant(plan: BacktestPlan, name: str) -> BacktestPlan:
    """The plan with the operations actors of ``name``: none, alerts + control, or those and memory."""
    assert plan.parts is not None
    ops = set(OPS_ACTORS.values())
    actors = [a for a in plan.parts.actors if a.actor_path not in ops]
    if name != "baseline":
        actors += [a for a in plan.parts.actors if a.actor_path in (OPS_ACTORS["alerts"], OPS_ACTORS["control"])]
    if name == "ops+memory":
        from mia_strategies.actors.memory import memory_actor_config
        from mia_strategies.ops.settings import load_mia_config

        settings = load_mia_config(ROOT / "config" / "mia_config.yaml").memory
        bar_types = sorted({s.bar_type for s in plan.slots})
        actors.insert(len(actors) - 2, memory_actor_config(settings, bar_types, plan.staging_dir / "market_memory.db"))
    return dataclasses.replace(plan, parts=dataclasses.replace(plan.parts, actors=actors))


def backtest_overhead(catalog: Path, start: str, end: str, repeat: int) -> dict[str, float]:
    """Fastest wall time of ``mia backtest`` per variant (plans built outside the timing)."""
    times: dict[str, list[float]] = {"baseline": [], "ops": [], "ops+memory": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeat):
            for name in times:
                out = Path(tmp) / f"{name}-{rep}"
                plan = plan_backtest(BacktestConfig(start=start, end=end), ROOT / "config", catalog=catalog, out=out)
                plan = _variant(plan, name)
                started = time.perf_counter()
                run_backtest(plan)
                times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def dashboard_redraw(run_dir: Path) -> dict[str, float]:
    """Milliseconds to read the folder (vs plain ``read_csv``), build every figure, serialise them."""
    import pandas as pd
    import plotly.io as pio

    from mia_strategies.dashboard.data import RUN_FILES
    from mia_strategies.dashboard.data import load_run
    from mia_strategies.dashboard.figures import build_all

    def best(action: Callable[[], object], reps: int = 3) -> float:
        timings = []
        for _ in range(reps):
            started = time.perf_counter()
            action()
            timings.append(time.perf_counter() - started)
        return min(timings) * 1e3

    data = load_run(run_dir)
    figures = build_all(data)
    csvs = [run_dir / name for name in RUN_FILES if name.endswith(".csv") and (run_dir / name).exists()]
    jsonl = [run_dir / name for name in RUN_FILES if name.endswith(".jsonl") and (run_dir / name).exists()]
    return {
        "read_csv_ms": best(lambda: [pd.read_csv(p) for p in csvs] + [pd.read_json(p, lines=True) for p in jsonl]),
        "load_ms": best(lambda: load_run(run_dir)),
        "figures_ms": best(lambda: build_all(data)),
        "json_ms": best(lambda: [pio.to_json(f) for f in figures.values()]),
        "figures": len(figures),
        "equity_points": len(data.equity),
        "trades": len(data.trades),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=None, help="catalog to use (default: a fresh demo)")
    parser.add_argument("--days", type=int, default=2, help="Globex days of the backtest (from 2025-12-08)")
    parser.add_argument("--repeat", type=int, default=2, help="backtest runs per variant (fastest kept)")
    parser.add_argument("--alerts", type=int, default=20_000, help="alerts submitted")
    parser.add_argument("--sizes", default="1000,10000,100000", help="market-memory sizes, comma-separated")
    args = parser.parse_args()
    # the backtest's alert actor logs every alert to ``mia.alerts``: keep it off the console (still formatted)
    logging.getLogger("mia.alerts").addHandler(logging.NullHandler())
    logging.getLogger("mia.alerts").propagate = False
    start = "2025-12-08"
    end = str(np.datetime64(start) + np.timedelta64(args.days, "D"))

    a = alerts_submit(args.alerts)
    print(
        f"alerts: submit {a['submit_us']:.1f} us/alert, duplicate {a['duplicate_us']:.1f} us "
        f"(baseline queue.put_nowait {a['queue_put_us']:.2f} us, {a['submit_us'] / a['queue_put_us']:.1f}x)",
    )
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        m = memory_query(size)
        print(
            f"memory n={size:,}: write {m['write_us']:.0f} us/bar, 10-NN query {m['query_ms']:.2f} ms "
            f"(baseline numpy brute force {m['numpy_ms']:.2f} ms, {m['query_ms'] / m['numpy_ms']:.2f}x)",
        )

    with tempfile.TemporaryDirectory() as tmp:
        catalog = args.catalog
        if catalog is None:
            catalog = Path(tmp) / "demo"
            generate_demo_catalog(catalog, load_markets(ROOT / "config" / "markets.yaml"), trading_days=args.days + 2)
        b = backtest_overhead(catalog, start, end, args.repeat)
        base = b["baseline"]
        print(
            f"mia backtest ES+MNQ {start}..{end}: without ops actors {base:.2f} s; + alerts and control "
            f"{b['ops']:.2f} s ({b['ops'] / base:.2f}x); + market memory {b['ops+memory']:.2f} s "
            f"({b['ops+memory'] / base:.2f}x)",
        )
        run_dir = Path(tmp) / "run"
        run_backtest(plan_backtest(BacktestConfig(start=start, end=end), ROOT / "config", catalog=catalog, out=run_dir))
        d = dashboard_redraw(run_dir)
        print(
            f"dashboard redraw ({d['equity_points']:,} equity points, {d['trades']} trades): load_run "
            f"{d['load_ms']:.0f} ms (baseline plain pandas reads of its files {d['read_csv_ms']:.0f} ms), "
            f"{d['figures']} figures {d['figures_ms']:.0f} ms, JSON {d['json_ms']:.0f} ms",
        )


if __name__ == "__main__":
    main()
