"""Market memory: neighbours, no look-ahead, WAL readers, the actor in a BacktestNode, and kills."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from conftest import run_mia
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from mia_ops_helpers import memory_backtest_config
from nautilus_trader.backtest.node import BacktestNode

from mia_strategies.ops.memory import CONTEXT_FEATURES
from mia_strategies.ops.memory import MarketMemory
from mia_strategies.ops.memory import Pattern


TESTS = Path(__file__).resolve().parent
MIN = 60_000_000_000
T0 = 1_765_000_000_000_000_000


def _fill(memory: MarketMemory, features: np.ndarray, probs: np.ndarray, outcomes: np.ndarray) -> None:
    for i, (f, p, o) in enumerate(zip(features, probs, outcomes, strict=True)):
        memory.store(Pattern("ESZ25.GLBX", T0 + i * MIN, "ES.test", f, "trend", p, 5000.0))
        memory.set_outcome("ESZ25.GLBX", T0 + i * MIN, float(o), T0 + (i + 5) * MIN)
    memory.commit()


def _brute_force(features, probs, outcomes, query, query_probs, k, weight):
    mean = features.astype(np.float64).mean(axis=0)
    std = features.astype(np.float64).std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    z = (features.astype(np.float64) - mean) / std
    zq = (query - mean) / std
    d = np.sqrt(((z - zq) ** 2).sum(axis=1) + weight**2 * ((probs.astype(np.float64) - query_probs) ** 2).sum(axis=1))
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return d[order], outcomes[order]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    k=st.integers(min_value=1, max_value=12),
    weight=st.sampled_from([0.0, 0.5, 2.0]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_neighbours_match_brute_force(tmp_path_factory, n, k, weight, seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 4)).astype(np.float32)
    probs = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    outcomes = rng.normal(size=n)
    query, query_probs = rng.normal(size=4), rng.dirichlet(np.ones(3))
    with MarketMemory(tmp_path_factory.mktemp("m") / "market_memory.db") as memory:
        _fill(memory, features, probs, outcomes)
        found = memory.neighbours("ES.test", query, query_probs, k=k, as_of_ns=T0 + 10**6 * MIN, regime_weight=weight)
    distances, expected = _brute_force(features, probs, outcomes, query, query_probs, k, weight)
    assert [round(n.outcome, 12) for n in found] == [round(float(o), 12) for o in expected]
    assert np.allclose([n.distance for n in found], distances, rtol=1e-4, atol=1e-5)


def test_query_never_sees_outcomes_known_after_its_time(tmp_path):
    with MarketMemory(tmp_path / "market_memory.db") as memory:
        features = np.arange(40, dtype=np.float32).reshape(20, 2)
        _fill(memory, features, np.full((20, 3), 1 / 3, dtype=np.float32), np.arange(20, dtype=float))
        # pattern i's outcome became known at T0 + (i + 5) min: at T0 + 9 min only patterns 0..4 count
        found = memory.neighbours("ES.test", [100.0, 101.0], k=20, as_of_ns=T0 + 9 * MIN)
        assert sorted(n.ts_event for n in found) == [T0 + i * MIN for i in range(5)]
        context = memory.context("ES.test", [0.0, 1.0], k=3, as_of_ns=T0 + 9 * MIN, min_patterns=6)
        assert context.neighbours == 0 and math.isnan(context.outcome_mean)
        context = memory.context("ES.test", [0.0, 1.0], k=3, as_of_ns=T0 + 10 * MIN, min_patterns=6)
        assert context.neighbours == 3 and context.outcome_mean == pytest.approx(1.0)
        assert context.values().shape == (len(CONTEXT_FEATURES),)


def test_wal_readers_see_only_commits_and_never_block_the_writer(tmp_path):
    db = tmp_path / "market_memory.db"
    writer = MarketMemory(db, commit_every=1)
    reader = MarketMemory(db, read_only=True)
    try:
        assert reader.stats().journal_mode == "wal"
        writer.store(Pattern("ESZ25.GLBX", T0, "ES.test", np.ones(3, dtype=np.float32)))
        assert reader.stats(check=False).patterns == 0  # not committed yet
        writer.commit()
        assert reader.stats(check=False).patterns == 1
        # a reader holding a read transaction does not stop the writer from committing
        reader._db.execute("BEGIN")
        reader._db.execute("SELECT COUNT(*) FROM patterns").fetchone()
        writer.store(Pattern("ESZ25.GLBX", T0 + MIN, "ES.test", np.ones(3, dtype=np.float32)))
        writer.commit()
        writer.checkpoint()  # passive: returns although the reader is still there
        reader._db.execute("COMMIT")
        assert reader.stats(check=False).patterns == 2
    finally:
        reader.close()
        writer.close()


def test_writer_killed_mid_run_loses_nothing_it_committed(tmp_path):
    db = tmp_path / "market_memory.db"
    child = subprocess.Popen(
        [sys.executable, "-c", f"import mia_ops_helpers as h; h.memory_writer_main({str(db)!r}, '100000')"],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while len(acked) < 400:
            assert time.monotonic() < deadline, "writer too slow"
            line = child.stdout.readline()
            assert line, "writer ended early"
            acked.append(int(line))
        os.kill(child.pid, signal.SIGKILL)  # no cleanup, no final commit, no checkpoint
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in check.execute("SELECT ts_event FROM patterns")}
        with_outcome = check.execute("SELECT COUNT(*) FROM patterns WHERE outcome IS NOT NULL").fetchone()[0]
    assert set(acked) <= stored
    assert with_outcome >= len(acked) - 5
    # the memory reopens and keeps working after the crash
    with MarketMemory(db) as memory:
        assert memory.stats().integrity == "ok"
        assert len(memory.neighbours("ES.test", np.zeros(8), np.ones(3) / 3, k=5, as_of_ns=2**62)) == 5


def test_actor_stores_patterns_outcomes_and_publishes_context(roll_week_catalog, tmp_path):
    db = tmp_path / "market_memory.db"
    config, _ = memory_backtest_config(
        roll_week_catalog,
        db,
        tmp_path / "bt",
        start="2025-12-09T14:30:00Z",
        end="2025-12-09T20:00:00Z",
        horizon_bars=3,
        min_patterns=20,
        neighbours=5,
        commit_every=10,
    )
    node = BacktestNode(configs=[config])
    node.build()
    engine = node.get_engine(config.id)
    try:
        node.run()
        feeder, memory_actor = engine.trader.actors()
        closes = dict(feeder.closes)
        contexts = list(feeder.contexts)
        features, probs = dict(feeder.features), dict(feeder.probs)
    finally:
        node.dispose()
    (series,) = closes.values()
    assert len(series) > 100
    with sqlite3.connect(db) as check:
        query = "SELECT ts_event, close, outcome, outcome_ts, regime FROM patterns ORDER BY ts_event"
        rows = check.execute(query).fetchall()
    assert [r[0] for r in rows] == [ts for ts, _ in series]  # one pattern per bar, nothing lost at stop
    by_ts = {ts: i for i, (ts, _) in enumerate(series)}
    for ts, close, outcome, outcome_ts, regime in rows:
        i = by_ts[ts]
        assert close == series[i][1] and regime in ("trend", "range", "defensive")
        if i + 3 < len(series):
            assert outcome == pytest.approx(math.log(series[i + 3][1] / series[i][1]))
            assert outcome_ts == series[i + 3][0]
        else:
            assert outcome is None  # the future was not seen
    # context: published once 20 outcomes were known before the bar, equal to a query of the stored memory
    assert contexts and all(c.feature_set == "memory:ES.test" for c in contexts)
    first = contexts[0]
    times = [ts for ts, _ in series]
    before_first = times[times.index(first.ts_event) - 1]
    assert sum(1 for r in rows if r[3] is not None and r[3] < first.ts_event) >= 20
    assert sum(1 for r in rows if r[3] is not None and r[3] < before_first) < 20
    with MarketMemory(db, read_only=True) as memory:
        for published in (contexts[0], contexts[len(contexts) // 2], contexts[-1]):
            ts = published.ts_event
            previous = times[times.index(ts) - 1]
            again = memory.context(
                "ES.test",
                features[ts],
                probs[previous],
                k=5,
                as_of_ns=ts - 1,
                regime_weight=1.0,
                min_patterns=20,
            )
            assert np.allclose(again.values(), published.values, rtol=1e-6, equal_nan=True)
    assert int(contexts[-1].values[4]) == 5
    assert memory_actor.stored == len(rows)


def test_memory_actor_killed_mid_backtest_keeps_every_committed_pattern(roll_week_catalog, tmp_path):
    db = tmp_path / "market_memory.db"
    args = [str(roll_week_catalog), str(db), str(tmp_path / "bt"), "2025-12-08T00:00:00Z", "2025-12-12T20:00:00Z", "3"]
    child = subprocess.Popen(
        [sys.executable, "-c", f"import mia_ops_helpers as h; h.memory_backtest_main(*{args!r})"],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen = 0
    try:
        deadline = time.monotonic() + 120
        while seen < 300:
            assert child.poll() is None, "the backtest ended before it could be killed"
            assert time.monotonic() < deadline, "the backtest is too slow"
            if db.exists():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as reader:
                        seen = reader.execute("SELECT COUNT(*) FROM patterns").fetchone()[0]
                except sqlite3.OperationalError:
                    pass  # schema not created yet
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        after = check.execute("SELECT COUNT(*) FROM patterns").fetchone()[0]
        ts = [r[0] for r in check.execute("SELECT ts_event FROM patterns ORDER BY ts_event")]
    assert after >= seen  # every pattern a reader saw committed is still there
    assert len(ts) == len(set(ts)) and after < 5000  # killed mid-run, not after it finished


def test_mia_memory_stats_and_vacuum(tmp_path):
    db = tmp_path / "market_memory.db"
    rng = np.random.default_rng(1)
    with MarketMemory(db) as memory:
        _fill(memory, rng.normal(size=(300, 6)).astype(np.float32), np.full((300, 3), 1 / 3), rng.normal(size=300))
        memory.prune(100)
    result = run_mia("memory", "stats", "--path", str(db), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "patterns" in result.stdout and "100" in result.stdout and "ES.test" in result.stdout
    assert "integrity" in result.stdout and "ok" in result.stdout
    result = run_mia("memory", "vacuum", "--path", str(db), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "vacuumed" in result.stdout
    with MarketMemory(db, read_only=True) as memory:
        stats = memory.stats()
    assert stats.patterns == 100 and stats.integrity == "ok" and stats.wal_bytes == 0
    missing = run_mia("memory", "stats", "--path", str(tmp_path / "nope.db"), timeout=120)
    assert missing.returncode == 2 and "no market memory here" in missing.stderr


def test_shipped_mia_config_is_valid():
    result = run_mia("config", "check", str(REPO / "config" / "mia_config.yaml"), timeout=120)
    assert result.returncode == 0, result.stderr
