"""Offline feature build: replay a catalog range through the feature hub, exactly as a backtest feeds the actor.

``plan_features`` resolves what a backtest of the same range would load: for every root the
contracts the roll calendar makes active (with their warm-up), their quotes and trades (or external
bars), plus the reference series, option chains, news and macro events the catalog holds. The same
plan yields the ``BacktestDataConfig`` list and the actor configuration for a ``BacktestNode``
(``feature_data_configs`` / ``feature_actor_config``) and drives ``build_features``, which loads each
config with nautilus's own loader (``BacktestNode.load_data_config``), merges the streams in the
engine's order (stable by ``ts_init``, configs in order) and plays them through a ``FeatureHub``:

- internal time bars are built from trades like nautilus's aggregator: a bar closing at ``T``
  holds the ticks with ``T - step < ts_init <= T``, is emitted after every event stamped ``T`` and
  before the first event after ``T``, and only when it received a tick;
- ticks reach the hub before the bar they belong to; reference bars and custom data configs come
  first in the list, so at equal timestamps they precede the decision bar, as in the backtest.

That is what the parity tests compare against the actor running inside a ``BacktestNode``.
Results go to the catalog as ``FeatureVector`` data and to Parquet (one column per feature) for
research.
"""

import datetime as dt
import heapq
import json
import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import BacktestDataConfig
from nautilus_trader.config import BacktestVenueConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.identifiers import InstrumentId

from catalog.store import StagedCatalog
from catalog.store import file_intervals
from catalog.types import FeatureVector
from mia_strategies.config import BacktestConfig
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.feed import bar_input
from mia_strategies.features.feed import feed_custom
from mia_strategies.features.feed import feed_depth
from mia_strategies.features.feed import feed_history
from mia_strategies.features.feed import feed_tick
from mia_strategies.features.history import custom_types_in
from mia_strategies.features.history import depth_instruments_in
from mia_strategies.features.history import load_history
from mia_strategies.features.history import reference_bar_types_in
from mia_strategies.features.sets import FeatureSets


#: Client id custom data is loaded under in a backtest (nautilus requires one).
FEATURE_CLIENT_ID = "MIA-FEATURES"
_BAR_RE = re.compile(
    r"^(?P<iid>[^-]+)-(?P<step>\d+)-(?P<agg>SECOND|MINUTE|HOUR)-(?P<price>[A-Z]+)-INTERNAL(?:@(?P<src>.+))?$"
)
_STEP_NS = {"SECOND": 1_000_000_000, "MINUTE": 60_000_000_000, "HOUR": 3_600_000_000_000}


@dataclass(frozen=True)
class DecisionBar:
    """A contract's decision bar type and the window in which it is the active contract."""

    root: str
    instrument_id: str
    bar_type: str
    active_from_ns: int
    active_to_ns: int


@dataclass(frozen=True)
class FeaturePlan:
    """Everything an offline build (or a backtest with the feature actor) loads and computes."""

    catalog_path: Path
    start_ns: int
    end_ns: int
    bars: list[DecisionBar]
    data: list[BacktestDataConfig]
    reference_bar_types: list[str]
    set_by_root: dict[str, str]
    macro_calendar: Path | None = None
    history_days: float = 0.0
    #: Contracts whose 10-level book snapshots the catalog holds: replayed offline, subscribed online.
    depth_instruments: list[str] = field(default_factory=list)

    @property
    def roots(self) -> list[str]:
        """Roots in the plan, in order."""
        return list(dict.fromkeys(b.root for b in self.bars))


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def feature_data_configs(
    catalog_path: Path,
    start_ns: int,
    end_ns: int,
    reference_bar_types: list[str],
) -> list[BacktestDataConfig]:
    """Reference-bar and custom-data configs for a backtest of ``[start, end]``; put them BEFORE the contract data."""
    path = str(Path(catalog_path).resolve())
    common: dict[str, Any] = {"catalog_path": path, "start_time": start_ns, "end_time": end_ns}
    configs: list[BacktestDataConfig] = []
    for bar_type in reference_bar_types:
        configs.append(BacktestDataConfig(data_cls=Bar, bar_types=[bar_type], **common))
    for cls in custom_types_in(Path(catalog_path)):
        configs.append(
            BacktestDataConfig(data_cls=f"catalog.types:{cls.__name__}", client_id=FEATURE_CLIENT_ID, **common),
        )
    return configs


def reference_venue_configs(reference_bar_types: list[str], trading_venue: str = "GLBX") -> list[BacktestVenueConfig]:
    """Data-only venues for the reference instruments (nautilus needs a venue for every bar it replays)."""
    venues = sorted({BarTypeText(b).venue for b in reference_bar_types} - {trading_venue})
    return [
        BacktestVenueConfig(
            name=venue,
            oms_type="NETTING",
            account_type="CASH",
            base_currency="USD",
            starting_balances=["1 USD"],
        )
        for venue in venues
    ]


@dataclass(frozen=True)
class BarTypeText:
    """The parts of a bar type string the build needs."""

    text: str

    @property
    def instrument_id(self) -> str:
        """``ESZ25.GLBX`` of ``ESZ25.GLBX-1-MINUTE-LAST-INTERNAL``."""
        return self.text.split("-", 1)[0]

    @property
    def venue(self) -> str:
        """``GLBX`` of ``ESZ25.GLBX-...``."""
        return self.instrument_id.rsplit(".", 1)[-1]


def feature_actor_config(plan: FeaturePlan, *, keep_vectors: bool = False, **overrides: Any) -> ImportableActorConfig:
    """The feature actor's configuration for a backtest of ``plan`` (the lead adds it before the strategy)."""
    config: dict[str, Any] = {
        "bar_types": [b.bar_type for b in plan.bars],
        "feature_sets": dict(plan.set_by_root),
        "reference_bar_types": list(plan.reference_bar_types),
        "macro_calendar": str(plan.macro_calendar) if plan.macro_calendar else None,
        "history_catalog": str(Path(plan.catalog_path).resolve()) if plan.history_days > 0 else None,
        "history_days": plan.history_days,
        "subscribe_depth": bool(plan.depth_instruments),
        "keep_vectors": keep_vectors,
    }
    config.update(overrides)
    return ImportableActorConfig(
        actor_path="mia_strategies.actors.features:FeatureActor",
        config_path="mia_strategies.actors.features:FeatureActorConfig",
        config=config,
    )


def plan_features(
    config: BacktestConfig,
    config_base: Path,
    feature_sets: FeatureSets,
    *,
    catalog: Path | None = None,
    instruments: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    set_name: str = "training",
    macro_calendar: Path | None = None,
    history_days: float = 0.0,
) -> FeaturePlan:
    """The offline build's plan: the backtest planner's contracts and data, plus reference and custom data."""
    from mia_strategies.backtest import plan_backtest

    plan = plan_backtest(config, config_base, catalog=catalog, instruments=instruments, start=start, end=end)
    set_by_root: dict[str, str] = {}
    for root in plan.roots:
        qualified = set_name if "." in set_name else f"{root}.{set_name}"
        feature_sets.resolve(qualified)  # one-line error when the set is not defined
        set_by_root[root] = qualified
    wanted = feature_sets.params.crossmarket
    candidates = {wanted.vix_bar_type, wanted.vix3m_bar_type, wanted.vix9d_bar_type}
    candidates |= {wanted.etf_bar_types[r] for r in plan.roots if r in wanted.etf_bar_types}
    references = reference_bar_types_in(plan.catalog_path, candidates)
    extra = feature_data_configs(plan.catalog_path, plan.start_ns, plan.end_ns, references)
    bars = [DecisionBar(s.root, s.instrument_id, s.bar_type, s.active_from_ns, s.active_to_ns) for s in plan.slots]
    depth_ids = depth_instruments_in(plan.catalog_path, [b.instrument_id for b in bars])
    depth = [
        BacktestDataConfig(
            catalog_path=str(Path(plan.catalog_path).resolve()),
            data_cls=OrderBookDepth10,
            instrument_ids=depth_ids,
            start_time=plan.start_ns,
            end_time=plan.end_ns,
        )
    ]
    return FeaturePlan(
        catalog_path=plan.catalog_path,
        start_ns=plan.start_ns,
        end_ns=plan.end_ns,
        bars=bars,
        data=extra + list(plan.data) + (depth if depth_ids else []),
        reference_bar_types=references,
        set_by_root=set_by_root,
        macro_calendar=macro_calendar,
        history_days=history_days,
        depth_instruments=depth_ids,
    )


# -- the replay ---------------------------------------------------------------------------------------


@dataclass
class _Builder:
    """An internal time bar in the making (nautilus ``TimeBarAggregator`` semantics)."""

    bar_type: str
    instrument_id: str
    step_ns: int
    close_ns: int = 0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: float = 0.0
    count: int = 0

    def add(self, ts: int, open_: float, high: float, low: float, close: float, volume: float) -> bool:
        """Add a tick (open = high = low = close = price) or a source bar; True when it opens a new bar."""
        first = self.count == 0
        if first:
            self.close_ns = -(-ts // self.step_ns) * self.step_ns
            self.open, self.high, self.low = open_, high, low
        else:
            self.high = max(self.high, high)
            self.low = min(self.low, low)
        self.close = close
        self.volume += volume
        self.count += 1
        return first

    def take(self) -> BarInput:
        """The finished bar, stamped at its close; the builder is empty again."""
        bar = BarInput(self.close_ns, self.close_ns, self.open, self.high, self.low, self.close, self.volume)
        self.count = 0
        self.volume = 0.0
        return bar


@dataclass
class BuildResult:
    """The vectors of an offline build, per decision bar, in emission order."""

    rows: list[tuple[str, str, int, int, np.ndarray]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    events: int = 0
    hub: FeatureHub | None = None

    def frame(self, plan: FeaturePlan, feature_sets: FeatureSets) -> pd.DataFrame:
        """One row per vector: ts, instrument, root, set, active flag, then one column per feature."""
        if not self.rows:
            return pd.DataFrame()
        frames = []
        windows = {b.instrument_id: b for b in plan.bars}
        for set_name in dict.fromkeys(r[1] for r in self.rows):
            names = list(feature_sets.resolve(set_name).names)
            rows = [r for r in self.rows if r[1] == set_name]
            values = np.vstack([r[4] for r in rows])
            meta = pd.DataFrame(
                {
                    "ts_event": pd.to_datetime([r[2] for r in rows], unit="ns", utc=True),
                    "ts_init": np.array([r[3] for r in rows], dtype=np.int64),
                    "instrument_id": [r[0] for r in rows],
                    "root": [windows[r[0]].root for r in rows],
                    "feature_set": set_name,
                    "active": [windows[r[0]].active_from_ns <= r[2] < windows[r[0]].active_to_ns for r in rows],
                },
            )
            frames.append(pd.concat([meta, pd.DataFrame(values, columns=names)], axis=1))
        return pd.concat(frames, ignore_index=True)


def _load(config: BacktestDataConfig, start_ns: int, end_ns: int) -> list[Any]:
    """Load one config exactly as ``BacktestNode`` does for a run of ``[start, end]``."""
    result = BacktestNode.load_data_config(config, _iso(start_ns), _iso(end_ns))
    return list(result.data or [])


def _keyed(items: list[Any], order: int) -> Iterator[tuple[int, int, int, Any]]:
    """``(ts_init, config order, position, item)`` for the merge (a function: no late binding of ``order``)."""
    for i, x in enumerate(items):
        yield int(x.ts_init), order, i, x


def _merged(plan: FeaturePlan) -> Iterator[Any]:
    """Every loaded object, by ``ts_init``, ties in config order (the engine's stable sort)."""
    streams = []
    for order, config in enumerate(plan.data):
        items = _load(config, plan.start_ns, plan.end_ns)
        items.sort(key=lambda x: x.ts_init)  # stable, like the engine's sort of everything it was given
        streams.append(_keyed(items, order))
    for _, _, _, item in heapq.merge(*streams, key=lambda t: (t[0], t[1], t[2])):
        if plan.start_ns <= item.ts_init <= plan.end_ns:
            yield item


class _Replay:
    """The offline event loop: ticks and bars to the hub, internal bars emitted when their timer would fire."""

    def __init__(self, plan: FeaturePlan, hub: FeatureHub, result: BuildResult) -> None:
        self._hub = hub
        self._result = result
        self._decision = {b.bar_type: b for b in plan.bars}
        self._reference = set(plan.reference_bar_types)
        self._trade_builders: dict[str, list[_Builder]] = {}
        self._bar_builders: dict[str, list[_Builder]] = {}
        self._pending: list[_Builder] = []
        for b in plan.bars:
            match = _BAR_RE.match(b.bar_type)
            if match is None:
                continue
            builder = _Builder(b.bar_type, b.instrument_id, int(match["step"]) * _STEP_NS[match["agg"]])
            if match["src"]:
                self._bar_builders.setdefault(f"{match['iid']}-{match['src']}", []).append(builder)
            else:
                self._trade_builders.setdefault(match["iid"], []).append(builder)

    def run(self, items: Iterator[Any]) -> None:
        """A timer at ``T`` fires after every event stamped ``<= T`` and before the first one after it."""
        last = None
        for item in items:
            ts = int(item.ts_init)
            if self._pending:
                self._fire_before(ts)
            self._dispatch(item)
            self._result.events += 1
            last = ts
        if last is not None and self._pending:
            self._fire_before(last + 1)  # the engine's last timers: those at or before the last event

    def _fire_before(self, ts: int) -> None:
        due = [b for b in self._pending if b.close_ns < ts]
        if not due:
            return
        due.sort(key=lambda b: (b.close_ns, b.bar_type))
        for builder in due:
            self._pending.remove(builder)
            self._decide(builder.bar_type, builder.instrument_id, builder.take())

    def _dispatch(self, item: Any) -> None:
        hub = self._hub
        if isinstance(item, QuoteTick):
            feed_tick(hub, item)
        elif isinstance(item, TradeTick):
            price = item.price.as_double()
            size = item.size.as_double()
            for builder in self._trade_builders.get(item.instrument_id.value, ()):
                if builder.add(int(item.ts_init), price, price, price, price, size):
                    self._pending.append(builder)
            feed_tick(hub, item)
        elif isinstance(item, Bar):
            key = str(item.bar_type)
            decision = self._decision.get(key)
            if decision is not None:
                self._decide(key, decision.instrument_id, bar_input(item))
            elif key in self._reference:
                hub.on_reference_bar(key, bar_input(item))
            for builder in self._bar_builders.get(key, ()):
                b = bar_input(item)
                if builder.add(int(item.ts_init), b.open, b.high, b.low, b.close, b.volume):
                    self._pending.append(builder)
        elif isinstance(item, OrderBookDepth10):
            feed_depth(hub, item)
        elif isinstance(item, CustomData):
            feed_custom(hub, item.data)
        else:
            feed_custom(hub, item)

    def _decide(self, bar_type: str, instrument_id: str, bar: BarInput) -> None:
        values = self._hub.on_bar(instrument_id, bar)
        if values is not None:
            set_name = self._hub.instruments[instrument_id].feature_set.name
            self._result.rows.append((instrument_id, set_name, bar.ts_event, bar.ts_init, values.copy()))


def build_features(
    plan: FeaturePlan,
    feature_sets: FeatureSets,
    markets: MarketsConfig,
    on_progress: Callable[[int], None] | None = None,
) -> BuildResult:
    """Replay the plan's data through a fresh hub; return every decision bar's vector."""
    from catalog.macro import load_macro_calendar

    events = load_macro_calendar(plan.macro_calendar) if plan.macro_calendar else []
    hub = FeatureHub(feature_sets, plan.set_by_root, markets, events)
    for b in plan.bars:
        hub.register(b.instrument_id)
    result = BuildResult(hub=hub)
    if plan.history_days > 0:
        feed_history(hub, load_history(plan.catalog_path, plan.start_ns, plan.history_days, plan.reference_bar_types))
    _Replay(plan, hub, result).run(_progress(_merged(plan), on_progress))
    result.warnings = hub.drain_warnings()
    return result


def _progress(items: Iterator[Any], callback: Callable[[int], None] | None) -> Iterator[Any]:
    for i, item in enumerate(items, start=1):
        if callback is not None and i % 100_000 == 0:
            callback(i)
        yield item


# -- outputs -----------------------------------------------------------------------------------------


def write_feature_vectors(result: BuildResult, catalog_path: Path) -> int:
    """Write the vectors into the catalog as ``FeatureVector`` data (atomic; refuses overlaps)."""
    if not result.rows:
        return 0
    by_instrument: dict[str, list[FeatureVector]] = {}
    for instrument_id, set_name, ts_event, ts_init, values in result.rows:
        by_instrument.setdefault(instrument_id, []).append(
            FeatureVector(
                instrument_id=InstrumentId.from_str(instrument_id),
                feature_set=set_name,
                values=values,
                ts_event=ts_event,
                ts_init=ts_init,
            ),
        )
    for instrument_id, vectors in by_instrument.items():
        existing = file_intervals(catalog_path, "custom_feature_vector", instrument_id)
        lo, hi = vectors[0].ts_init, vectors[-1].ts_init
        if any(a <= hi and lo <= b for a, b in existing):
            raise CatalogError(
                f"catalog {catalog_path} already holds feature vectors of {instrument_id} in "
                f"{_iso(lo)}..{_iso(hi)}: build into another catalog or delete "
                f"data/custom_feature_vector/{instrument_id}",
            )
    with StagedCatalog(catalog_path) as staged:
        for vectors in by_instrument.values():
            staged.catalog.write_data(sorted(vectors, key=lambda v: v.ts_init))
        staged.commit()
    return len(result.rows)


def write_parquet(frame: pd.DataFrame, path: Path, metadata: dict[str, Any]) -> None:
    """Write the research frame to one Parquet file (atomic rename), with the build's metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"mia.features"] = json.dumps(metadata, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_feature_parquet(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A research frame written by ``write_parquet`` and its build metadata."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: feature file not found (build it with `mia features build`)")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"mia.features", b"{}")
    return table.to_pandas(), json.loads(raw)


def build_metadata(plan: FeaturePlan, feature_sets: FeatureSets, result: BuildResult) -> dict[str, Any]:
    """What produced a build: catalog, range, sets with fingerprints, counts."""
    return {
        "catalog": str(plan.catalog_path),
        "start": _iso(plan.start_ns),
        "end": _iso(plan.end_ns),
        "sets": {
            root: {"name": name, "fingerprint": feature_sets.resolve(name).fingerprint}
            for root, name in plan.set_by_root.items()
        },
        "contracts": [b.instrument_id for b in plan.bars],
        "reference_bar_types": plan.reference_bar_types,
        "depth_instruments": plan.depth_instruments,
        "vectors": len(result.rows),
        "events": result.events,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


# -- online: the same plan inside a BacktestNode ------------------------------------------------------


@dataclass(frozen=True)
class OnlineRun:
    """What the feature actor published in a backtest, and the engine's event count."""

    vectors: list[FeatureVector]
    iterations: int
    elapsed_s: float


def feature_backtest_run_config(
    plan: FeaturePlan,
    actors: list[ImportableActorConfig],
    *,
    log_level: str = "ERROR",
) -> Any:
    """A ``BacktestRunConfig`` replaying ``plan`` with ``actors`` and no strategy (venues for reference data)."""
    from nautilus_trader.config import BacktestEngineConfig
    from nautilus_trader.config import BacktestRunConfig
    from nautilus_trader.config import DataEngineConfig
    from nautilus_trader.config import LoggingConfig

    venues = [
        BacktestVenueConfig(
            name="GLBX",
            oms_type="NETTING",
            account_type="MARGIN",
            base_currency="USD",
            starting_balances=["100000 USD"],
            bar_execution=False,
        ),
        *reference_venue_configs(plan.reference_bar_types),
    ]
    engine = BacktestEngineConfig(
        trader_id="MIA-FEATURES-001",
        logging=LoggingConfig(log_level=log_level, bypass_logging=log_level == "ERROR"),
        data_engine=DataEngineConfig(time_bars_build_with_no_updates=False, time_bars_timestamp_on_close=True),
        actors=actors,
    )
    return BacktestRunConfig(
        engine=engine,
        venues=venues,
        data=plan.data,
        start=_iso(plan.start_ns),
        end=_iso(plan.end_ns),
        dispose_on_completion=False,
    )


def run_feature_backtest(
    plan: FeaturePlan, extra_actors: list[ImportableActorConfig] | None = None, **actor_overrides: Any
) -> OnlineRun:
    """Run the feature actor over ``plan`` in a real ``BacktestNode``; return every vector it published."""
    import time

    run_config = feature_backtest_run_config(
        plan,
        [feature_actor_config(plan, keep_vectors=True, **actor_overrides), *(extra_actors or [])],
    )
    node = BacktestNode(configs=[run_config])
    started = time.perf_counter()
    try:
        results = node.run()
        elapsed = time.perf_counter() - started
        engine = node.get_engine(run_config.id)
        if engine is None or not results:
            raise RuntimeError("the nautilus backtest engine failed (see its error above)")
        actor = next(a for a in engine.trader.actors() if type(a).__name__ == "FeatureActor")
        vectors = list(actor.vectors)  # type: ignore[attr-defined]
        iterations = int(results[0].iterations)
    finally:
        node.dispose()
    return OnlineRun(vectors, iterations, elapsed)


@dataclass(frozen=True)
class ParityReport:
    """Offline against online vectors: keys missing on either side and values that differ."""

    compared: int
    only_offline: list[tuple[str, int]]
    only_online: list[tuple[str, int]]
    mismatches: list[tuple[str, int, str, float, float]]

    @property
    def ok(self) -> bool:
        """Same bars on both sides and every value equal within the tolerance (NaN equals NaN)."""
        return not (self.only_offline or self.only_online or self.mismatches)


def compare_vectors(
    offline: BuildResult,
    online: list[FeatureVector],
    feature_sets: FeatureSets,
    tolerance: float = 1e-9,
) -> ParityReport:
    """Compare every feature of every bar: ``|a - b| <= tolerance * max(1, |a|)``, NaN only against NaN."""
    off = {(r[0], r[2]): (r[1], r[4]) for r in offline.rows}
    on = {(v.instrument_id.value, int(v.ts_event)): (v.feature_set, np.asarray(v.values)) for v in online}
    mismatches: list[tuple[str, int, str, float, float]] = []
    common = sorted(off.keys() & on.keys())
    for key in common:
        set_name, a = off[key]
        set_online, b = on[key]
        names = feature_sets.resolve(set_name).names
        if set_online != set_name or len(a) != len(b):
            mismatches.append((key[0], key[1], "<feature_set>", float(len(a)), float(len(b))))
            continue
        both_nan = np.isnan(a) & np.isnan(b)
        close = np.abs(a - b) <= tolerance * np.maximum(1.0, np.abs(a))
        for j in np.flatnonzero(~(both_nan | close)):
            mismatches.append((key[0], key[1], names[j], float(a[j]), float(b[j])))
    return ParityReport(
        compared=len(common),
        only_offline=sorted(off.keys() - on.keys()),
        only_online=sorted(on.keys() - off.keys()),
        mismatches=mismatches,
    )
