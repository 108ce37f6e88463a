"""Market memory (method 7): a SQLite file of compact per-bar patterns and what followed them.

After each bar the node stores one *pattern* per instrument: the inference features (the
``FeatureVector`` values), the regime probabilities and the bar's close. When ``horizon_bars`` more
bars of the same contract have closed, the pattern's *outcome* is filled in: the log return of the
close over that horizon. A nearest-neighbour query then finds the past patterns most similar to the
present one and summarises what followed them; those summaries are extra context features.

Why SQLite, and how it stays safe:

- One file, no server, readable by ``mia memory stats``, the dashboard and research while the node
  writes: the database runs in WAL mode, so readers never block the writer or each other.
- A commit is durable against a crash of the process (``synchronous=NORMAL`` in WAL mode) or also
  against a power cut (``FULL``). The writer commits every ``commit_every`` bars (default 1), so a
  killed node loses at most the bar in progress; WAL checkpoints run every ``checkpoint_every``
  commits (``PASSIVE``: they never wait on readers).
- No look-ahead: a query made at time *t* only sees patterns whose outcome was known at *t*
  (``outcome_ts <= t``), so a memory filled by a later live run cannot leak into an earlier backtest.

Patterns are shared by feature set, not by contract: ``ES.training`` patterns of ESZ25 help ESH26
after the roll, while outcomes are always computed within one contract (a roll is not a return).

Storage per pattern: two float32 blobs (features, regime probabilities) plus a few scalars, about
``4 * (features + regimes) + 80`` bytes.
"""

import math
import sqlite3
import threading
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np


SCHEMA_VERSION = 1
#: Names of the context features a query returns, in order.
CONTEXT_FEATURES: tuple[str, ...] = (
    "mem_outcome_mean",
    "mem_outcome_std",
    "mem_up_fraction",
    "mem_distance_mean",
    "mem_neighbours",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS patterns (
    instrument_id TEXT NOT NULL,
    ts_event INTEGER NOT NULL,
    feature_set TEXT NOT NULL,
    features BLOB NOT NULL,
    regime TEXT NOT NULL DEFAULT '',
    regime_probs BLOB,
    close REAL,
    outcome REAL,
    outcome_ts INTEGER,
    PRIMARY KEY (instrument_id, ts_event)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS patterns_by_set ON patterns (feature_set, outcome_ts);
"""


def _blob(values: Sequence[float] | np.ndarray | None) -> bytes | None:
    if values is None:
        return None
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def _array(blob: bytes | None) -> np.ndarray:
    if not blob:
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(blob, dtype="<f4").copy()


@dataclass(frozen=True)
class Pattern:
    """One bar of one instrument: what the model saw and the regime it was in."""

    instrument_id: str
    ts_event: int
    feature_set: str
    features: np.ndarray
    regime: str = ""
    regime_probs: np.ndarray | None = None
    close: float | None = None


@dataclass(frozen=True)
class Neighbour:
    """A past pattern close to the query, with what followed it."""

    instrument_id: str
    ts_event: int
    distance: float
    outcome: float
    regime: str


@dataclass(frozen=True)
class MemoryContext:
    """Summary of the neighbours' outcomes: the extra features handed to the strategy."""

    outcome_mean: float
    outcome_std: float
    up_fraction: float
    distance_mean: float
    neighbours: int

    def values(self) -> np.ndarray:
        """In :data:`CONTEXT_FEATURES` order (NaN when there were no neighbours)."""
        return np.array(
            [self.outcome_mean, self.outcome_std, self.up_fraction, self.distance_mean, float(self.neighbours)],
            dtype=np.float64,
        )

    @classmethod
    def empty(cls) -> "MemoryContext":
        """No usable history yet."""
        return cls(math.nan, math.nan, math.nan, math.nan, 0)


@dataclass(frozen=True)
class MemoryStats:
    """What ``mia memory stats`` prints."""

    path: str
    size_bytes: int
    wal_bytes: int
    patterns: int
    with_outcome: int
    feature_sets: dict[str, int]
    instruments: dict[str, int]
    first_ts: int | None
    last_ts: int | None
    integrity: str
    journal_mode: str


class _Index:
    """In-memory copy of one feature set's patterns that have outcomes, for fast neighbour queries.

    Rows live in numpy arrays that grow by doubling (amortised O(1) per bar), with running
    per-feature means and variances (Welford) so the usual query, over every row, standardises
    without a pass over the data. Rows arrive in outcome-time order, so the rows known at a time
    are a prefix, found by binary search; if an older memory is extended out of order, queries fall
    back to a mask.
    """

    def __init__(self) -> None:
        self.n = 0
        self.features = np.empty((0, 0), dtype=np.float32)
        self.probs = np.empty((0, 0), dtype=np.float32)
        self.outcomes = np.empty(0, dtype=np.float64)
        self.outcome_ts = np.empty(0, dtype=np.int64)
        self.keys: list[tuple[str, int, str]] = []
        self.count = np.zeros(0, dtype=np.float64)
        self.mean = np.zeros(0, dtype=np.float64)
        self.m2 = np.zeros(0, dtype=np.float64)
        self.has_nan = False
        self.in_order = True

    def _reserve(self, rows: int, width: int, prob_width: int) -> None:
        capacity, have_width = self.features.shape
        have_probs = self.probs.shape[1]
        if rows <= capacity and width <= have_width and prob_width <= have_probs:
            return
        new_capacity = max(rows, 2 * capacity, 1024) if rows > capacity else capacity
        new_width, new_probs = max(width, have_width), max(prob_width, have_probs)
        if new_width > have_width and self.n:
            self.has_nan = True  # older rows lack the new columns
        features = np.full((new_capacity, new_width), np.nan, dtype=np.float32)
        features[: self.n, :have_width] = self.features[: self.n]
        probs = np.zeros((new_capacity, new_probs), dtype=np.float32)
        probs[: self.n, :have_probs] = self.probs[: self.n]
        outcomes = np.zeros(new_capacity, dtype=np.float64)
        outcomes[: self.n] = self.outcomes[: self.n]
        outcome_ts = np.zeros(new_capacity, dtype=np.int64)
        outcome_ts[: self.n] = self.outcome_ts[: self.n]
        self.features, self.probs, self.outcomes, self.outcome_ts = features, probs, outcomes, outcome_ts
        grow = new_width - self.count.size
        if grow > 0:
            self.count = np.concatenate([self.count, np.zeros(grow)])
            self.mean = np.concatenate([self.mean, np.zeros(grow)])
            self.m2 = np.concatenate([self.m2, np.zeros(grow)])

    def add(self, key: tuple[str, int, str], features: np.ndarray, probs: np.ndarray, outcome: float, ts: int) -> None:
        self._reserve(self.n + 1, features.size, probs.size)
        i = self.n
        self.features[i] = np.nan
        self.features[i, : features.size] = features
        self.probs[i] = 0.0
        self.probs[i, : probs.size] = probs
        self.outcomes[i] = outcome
        if i and ts < self.outcome_ts[i - 1]:
            self.in_order = False
        self.outcome_ts[i] = ts
        self.keys.append(key)
        self.n += 1
        row = self.features[i].astype(np.float64)
        finite = np.isfinite(row)
        if not finite.all():
            self.has_nan = True
        cols = np.flatnonzero(finite)
        count = self.count[cols] + 1.0
        delta = row[cols] - self.mean[cols]
        self.mean[cols] += delta / count
        self.m2[cols] += delta * (row[cols] - self.mean[cols])
        self.count[cols] = count

    def rows_known(self, as_of_ns: int) -> slice | np.ndarray:
        """Rows whose outcome was known at ``as_of_ns``: a prefix slice, or indices when out of order."""
        ts = self.outcome_ts[: self.n]
        if self.in_order:
            return slice(0, int(np.searchsorted(ts, as_of_ns, side="right")))
        return np.flatnonzero(ts <= as_of_ns)

    def known_count(self, as_of_ns: int) -> int:
        """How many outcomes were known at ``as_of_ns``."""
        rows = self.rows_known(as_of_ns)
        return rows.stop if isinstance(rows, slice) else int(rows.size)

    def stats(self, rows: slice | np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and standard deviation over ``rows`` (running values when all rows)."""
        if isinstance(rows, slice) and rows.stop == self.n and width <= self.count.size:
            count = self.count[:width]
            mean = np.where(count > 0, self.mean[:width], 0.0)
            var = np.where(count > 0, self.m2[:width] / np.maximum(count, 1.0), 0.0)
        else:
            x = self.features[rows, :width].astype(np.float64)
            finite = np.isfinite(x)
            counts = np.maximum(finite.sum(axis=0), 1)
            mean = np.where(finite, x, 0.0).sum(axis=0) / counts
            var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=0) / counts
        std = np.where(var > 1e-24, np.sqrt(np.maximum(var, 0.0)), 1.0)
        return mean, std


class MarketMemory:
    """The ``market_memory.db`` store: write patterns and outcomes, query neighbours, maintain.

    Parameters
    ----------
    path : Path
        The SQLite file (created with its folder when missing unless ``read_only``).
    synchronous : {"NORMAL", "FULL"}, default "NORMAL"
        NORMAL survives a process crash; FULL also a power cut (one fsync per commit).
    commit_every : int, default 1
        ``maybe_commit`` commits after this many calls (bars).
    checkpoint_every : int, default 1000
        Commits between passive WAL checkpoints.
    read_only : bool, default False
        Open for reading only (``mia memory stats``, the dashboard).
    timeout_s : float, default 10.0
        How long to wait for a lock held by another connection.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        commit_every: int = 1,
        checkpoint_every: int = 1000,
        read_only: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self.commit_every = max(1, commit_every)
        self.checkpoint_every = max(1, checkpoint_every)
        self.read_only = read_only
        self._uncommitted = 0
        self._commits = 0
        self._indexes: dict[str, _Index] = {}
        self._loaded: set[str] = set()
        self._lock = threading.RLock()
        if read_only:
            if not self.path.exists():
                from mia_strategies.errors import ConfigError

                raise ConfigError(f"{self.path}: no market memory here (a node with the memory actor creates it)")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            self._db.execute("BEGIN")
        self._db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is pending, checkpoint, close."""
        with self._lock:
            if not self.read_only:
                self.commit()
                self.checkpoint()
            self._db.close()

    def __enter__(self) -> "MarketMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------------

    def store(self, pattern: Pattern) -> None:
        """Insert or update the pattern of (instrument, bar); an existing outcome is kept."""
        with self._lock:
            self._db.execute(
                """
                INSERT INTO patterns (instrument_id, ts_event, feature_set, features, regime, regime_probs, close)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (instrument_id, ts_event) DO UPDATE SET
                    feature_set = excluded.feature_set,
                    features = excluded.features,
                    regime = excluded.regime,
                    regime_probs = excluded.regime_probs,
                    close = COALESCE(excluded.close, patterns.close)
                """,
                (
                    pattern.instrument_id,
                    int(pattern.ts_event),
                    pattern.feature_set,
                    _blob(pattern.features),
                    pattern.regime,
                    _blob(pattern.regime_probs),
                    None if pattern.close is None or not math.isfinite(pattern.close) else float(pattern.close),
                ),
            )
            self._uncommitted += 1

    def set_outcome(self, instrument_id: str, ts_event: int, outcome: float, outcome_ts: int) -> bool:
        """Record what followed a pattern; add it to the neighbour index. False if there is no such pattern."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE patterns SET outcome = ?, outcome_ts = ? WHERE instrument_id = ? AND ts_event = ? "
                "RETURNING feature_set, features, regime_probs, regime",
                (float(outcome), int(outcome_ts), instrument_id, int(ts_event)),
            )
            row = cursor.fetchone()
            cursor.close()
            if row is None:
                return False
            feature_set, features, probs, regime = row
            if feature_set in self._loaded:
                self._indexes[feature_set].add(
                    (instrument_id, int(ts_event), str(regime)),
                    _array(features),
                    _array(probs),
                    float(outcome),
                    int(outcome_ts),
                )
            self._uncommitted += 1
            return True

    def maybe_commit(self) -> bool:
        """Count one bar; commit when ``commit_every`` bars are pending. True when it committed."""
        with self._lock:
            if self._uncommitted and self._uncommitted >= self.commit_every:
                self.commit()
                return True
            return False

    def commit(self) -> None:
        """Make everything written so far durable; checkpoint the WAL every ``checkpoint_every`` commits."""
        with self._lock:
            if self.read_only:
                return
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._uncommitted = 0
            self._commits += 1
            if self._commits % self.checkpoint_every == 0:
                self.checkpoint()

    def checkpoint(self, mode: Literal["PASSIVE", "TRUNCATE"] = "PASSIVE") -> tuple[int, int, int]:
        """Copy the WAL into the database file (PASSIVE never waits on readers)."""
        with self._lock:
            if self.read_only:
                return (0, 0, 0)
            self._db.execute("COMMIT")
            try:
                row = self._db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            finally:
                self._db.execute("BEGIN")
            return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    # -- querying ----------------------------------------------------------------------------------

    def _index(self, feature_set: str) -> _Index:
        """The in-memory index of a feature set, loaded once from the file."""
        if feature_set not in self._loaded:
            index = _Index()
            rows = self._db.execute(
                "SELECT instrument_id, ts_event, features, regime_probs, outcome, outcome_ts, regime FROM patterns "
                "WHERE feature_set = ? AND outcome IS NOT NULL ORDER BY outcome_ts",
                (feature_set,),
            )
            for instrument_id, ts, features, probs, outcome, outcome_ts, regime in rows:
                index.add(
                    (instrument_id, int(ts), regime), _array(features), _array(probs), float(outcome), int(outcome_ts)
                )
            self._indexes[feature_set] = index
            self._loaded.add(feature_set)
        return self._indexes[feature_set]

    def neighbours(
        self,
        feature_set: str,
        features: Sequence[float] | np.ndarray,
        regime_probs: Sequence[float] | np.ndarray | None = None,
        *,
        k: int = 10,
        as_of_ns: int,
        regime_weight: float = 1.0,
    ) -> list[Neighbour]:
        """The ``k`` past patterns nearest to the query among those whose outcome was known at ``as_of_ns``.

        Distance: Euclidean over the features standardised by the eligible patterns' mean and std
        (a NaN feature contributes nothing), plus ``regime_weight`` times the Euclidean distance of
        the regime probabilities.
        """
        with self._lock:
            index = self._index(feature_set)
            query = np.asarray(features, dtype=np.float64).ravel()
            probs_q = np.asarray(regime_probs if regime_probs is not None else [], dtype=np.float64).ravel()
            if index.n == 0 or query.size == 0:
                return []
            index._reserve(index.n, query.size, probs_q.size)
            rows = index.rows_known(as_of_ns)
            ids = np.arange(index.n)[rows]
            if ids.size == 0:
                return []
            width = query.size
            mean, std = index.stats(rows, width)
            x = index.features[rows, :width]
            if index.has_nan:
                x = np.where(np.isfinite(x), x, mean.astype(np.float32))
            q = np.where(np.isfinite(query), query, mean)
            diff = (x - q.astype(np.float32)) * (1.0 / std).astype(np.float32)
            dist2 = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
            if probs_q.size and regime_weight > 0:
                dp = index.probs[rows, : probs_q.size].astype(np.float64) - probs_q
                dist2 = dist2 + regime_weight**2 * np.einsum("ij,ij->i", dp, dp)
            distance = np.sqrt(dist2)
            k = min(k, ids.size)
            nearest = np.argpartition(distance, k - 1)[:k] if k < ids.size else np.arange(ids.size)
            nearest = nearest[np.lexsort((ids[nearest], distance[nearest]))]
            outcomes = index.outcomes
            result = []
            for j in nearest:
                row = int(ids[j])
                instrument_id, ts, regime = index.keys[row]
                result.append(Neighbour(instrument_id, ts, float(distance[j]), float(outcomes[row]), regime))
            return result

    def context(
        self,
        feature_set: str,
        features: Sequence[float] | np.ndarray,
        regime_probs: Sequence[float] | np.ndarray | None = None,
        *,
        k: int = 10,
        as_of_ns: int,
        regime_weight: float = 1.0,
        min_patterns: int = 1,
    ) -> MemoryContext:
        """Summarise the neighbours' outcomes; empty until ``min_patterns`` patterns are eligible."""
        with self._lock:
            index = self._index(feature_set)
            known = index.known_count(as_of_ns)
            if known < min_patterns:
                return MemoryContext.empty()
            found = self.neighbours(
                feature_set,
                features,
                regime_probs,
                k=k,
                as_of_ns=as_of_ns,
                regime_weight=regime_weight,
            )
        if not found:
            return MemoryContext.empty()
        outcomes = np.array([n.outcome for n in found])
        return MemoryContext(
            outcome_mean=float(outcomes.mean()),
            outcome_std=float(outcomes.std(ddof=0)),
            up_fraction=float(np.mean(outcomes > 0)),
            distance_mean=float(np.mean([n.distance for n in found])),
            neighbours=len(found),
        )

    # -- maintenance -------------------------------------------------------------------------------

    @contextmanager
    def _autocommit(self) -> Iterator[None]:
        """Leave the open write transaction for statements that cannot run inside one (VACUUM)."""
        if self.read_only:
            yield
            return
        self._db.execute("COMMIT")
        try:
            yield
        finally:
            self._db.execute("BEGIN")

    def prune(self, max_patterns: int) -> int:
        """Delete the oldest patterns beyond ``max_patterns``; return how many were deleted."""
        with self._lock:
            total = int(self._db.execute("SELECT COUNT(*) FROM patterns").fetchone()[0])
            excess = total - max_patterns
            if excess <= 0:
                return 0
            cutoff = self._db.execute(
                "SELECT ts_event FROM patterns ORDER BY ts_event LIMIT 1 OFFSET ?",
                (excess - 1,),
            ).fetchone()[0]
            deleted = self._db.execute("DELETE FROM patterns WHERE ts_event <= ?", (cutoff,)).rowcount
            self._loaded.clear()
            self._indexes.clear()
            self.commit()
            return int(deleted)

    def vacuum(self) -> tuple[int, int]:
        """Checkpoint and rebuild the file compactly; return (bytes before, bytes after) incl. the WAL."""
        with self._lock:
            before = _size(self.path)
            self.commit()
            with self._autocommit():
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return before, _size(self.path)

    def stats(self, check: bool = True) -> MemoryStats:
        """Counts, time range, sizes and (optionally) SQLite's integrity check."""
        with self._lock:
            db = self._db
            patterns, with_outcome, first, last = db.execute(
                "SELECT COUNT(*), COUNT(outcome), MIN(ts_event), MAX(ts_event) FROM patterns",
            ).fetchone()
            sets = dict(db.execute("SELECT feature_set, COUNT(*) FROM patterns GROUP BY feature_set ORDER BY 1"))
            instruments = dict(db.execute("SELECT instrument_id, COUNT(*) FROM patterns GROUP BY 1 ORDER BY 1"))
            integrity = str(db.execute("PRAGMA quick_check").fetchone()[0]) if check else "not checked"
            journal = str(db.execute("PRAGMA journal_mode").fetchone()[0])
        wal = Path(f"{self.path}-wal")
        return MemoryStats(
            path=str(self.path),
            size_bytes=self.path.stat().st_size if self.path.exists() else 0,
            wal_bytes=wal.stat().st_size if wal.exists() else 0,
            patterns=int(patterns),
            with_outcome=int(with_outcome),
            feature_sets={str(k): int(v) for k, v in sets.items()},
            instruments={str(k): int(v) for k, v in instruments.items()},
            first_ts=int(first) if first is not None else None,
            last_ts=int(last) if last is not None else None,
            integrity=integrity,
            journal_mode=journal,
        )


def _size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            total += candidate.stat().st_size
    return total


__all__ = [
    "CONTEXT_FEATURES",
    "SCHEMA_VERSION",
    "MarketMemory",
    "MemoryContext",
    "MemoryStats",
    "Neighbour",
    "Pattern",
]
