"""Plan and run a backtest: catalog + config → ``BacktestNode`` → run folder.

Planning is separate from running so every user error (missing catalog, unknown root, empty range,
invalid config) is raised as one line before nautilus starts. The plan picks, for every root, the
contracts the roll calendar makes active in the range, loads each one's quotes (fills) and trades or
external bars (decision bars) with a warm-up before its roll, and configures the simulated CME venue:
per-contract commissions, margins as a fraction of notional, a seeded fill model and latency.
"""

import dataclasses
import datetime as dt
import json
import shutil
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.backtest.config import ImportableFeeModelConfig
from nautilus_trader.backtest.config import ImportableFillModelConfig
from nautilus_trader.backtest.config import ImportableLatencyModelConfig
from nautilus_trader.backtest.config import MarginModelConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import BacktestDataConfig
from nautilus_trader.config import BacktestEngineConfig
from nautilus_trader.config import BacktestRunConfig
from nautilus_trader.config import BacktestVenueConfig
from nautilus_trader.config import DataEngineConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.config import ImportableStrategyConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick

from catalog.store import data_range
from catalog.store import default_catalog_path
from catalog.store import open_catalog
from mia_strategies import results
from mia_strategies.assembly import StrategyParts
from mia_strategies.assembly import strategy_parts
from mia_strategies.config import BacktestConfig
from mia_strategies.config import MarketsConfig
from mia_strategies.config import StrategyFile
from mia_strategies.config import load_markets
from mia_strategies.config import load_strategy
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import contract_windows
from mia_strategies.instruments import parse_contract_symbol
from mia_strategies.strategies.base import ContractSlot
from mia_strategies.strategies.base import RunRecorder
from mia_strategies.strategies.base import TradeRecord


STRATEGY_PATHS = {
    "mia": ("mia_strategies.strategies.mia:MiaRouterStrategy", "mia_strategies.strategies.mia:MiaRouterConfig"),
    "atr_breakout": (
        "mia_strategies.strategies.breakout:AtrBreakout",
        "mia_strategies.strategies.breakout:AtrBreakoutConfig",
    ),
}
#: Old-contract data kept after its roll so the roll's closing order fills against live quotes.
ROLL_TAIL_NS = 30 * 60 * 1_000_000_000
_MIN_NS = 60 * 1_000_000_000
_BASE_FIELDS = ("slots", "trade_size", "roll_policy", "flat_minutes_before_close", "venue")


@dataclass(frozen=True)
class BacktestPlan:
    """Everything a run needs, resolved and checked."""

    catalog_path: Path
    markets: MarketsConfig
    strategy: StrategyFile
    config: BacktestConfig
    roots: list[str]
    start_ns: int
    end_ns: int
    slots: list[ContractSlot]
    data: list[BacktestDataConfig]
    out_dir: Path
    #: ``(strategy_path, config_path)``; defaults to the one named in ``strategy.yaml``.
    strategy_impl: tuple[str, str] | None = None
    #: Extra strategy config fields (tests drive the base class with their own strategies).
    strategy_extra: dict[str, Any] = field(default_factory=dict)
    #: The strategy file's strategy and actors (used unless ``strategy_impl`` replaces the strategy).
    parts: StrategyParts | None = None
    #: Actors added to whatever the strategy brings (tests, research).
    actors: list[ImportableActorConfig] = field(default_factory=list)
    #: What the feature actor reads beyond the contracts (reference bars, chains, news, macro events,
    #: books), replayed before ``data``; and the data-only venues of the reference series.
    feature_data: list[BacktestDataConfig] = field(default_factory=list)
    extra_venues: list[BacktestVenueConfig] = field(default_factory=list)

    @property
    def staging_dir(self) -> Path:
        """Where the run writes (journals included) before the folder is renamed to ``out_dir``."""
        return staging_dir(self.out_dir)

    def resolved(self) -> tuple[tuple[str, str] | None, dict[str, Any], list[ImportableActorConfig]]:
        """Strategy paths, extra config and actors of the run: the strategy file's parts, or the override's."""
        if self.strategy_impl is None and self.parts is not None:
            extra = {**self.parts.strategy_extra, **self.strategy_extra}
            return self.parts.strategy_impl, extra, [*self.parts.actors, *self.actors]
        return self.strategy_impl, self.strategy_extra, list(self.actors)


@dataclass(frozen=True)
class BacktestOutcome:
    """A finished run: where its files are and its summary."""

    out_dir: Path
    summary: dict[str, Any]
    trades: pd.DataFrame
    fills: pd.DataFrame
    equity: pd.Series
    strategy: Any = None


def staging_dir(out_dir: Path) -> Path:
    """The folder a run writes to before it is renamed to ``out_dir`` (a partial run never looks complete)."""
    return out_dir.with_name(out_dir.name + ".partial")


def parse_time(value: str | dt.datetime | None, what: str) -> int | None:
    """ISO date or time to UTC ns; naive values are UTC. One-line error on nonsense."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        hint = "use 2025-12-08 or 2025-12-08T14:30"
        raise ConfigError(f"--{what}: cannot read {value!r} as a date or time ({hint})") from None
    if ts is pd.NaT:
        raise ConfigError(f"--{what}: {value!r} is not a date or time")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


def _catalog_instruments(catalog_path: Path, markets: MarketsConfig) -> dict[str, list[str]]:
    """Contracts present in the catalog, by root."""
    catalog = open_catalog(catalog_path)
    by_root: dict[str, list[str]] = {}
    for instrument in catalog.instruments():
        try:
            ref = parse_contract_symbol(instrument.id.symbol.value, markets)
        except ConfigError:
            continue
        by_root.setdefault(ref.root, []).append(instrument.id.value)
    return by_root


def _bar_source(catalog_path: Path, instrument_id: str, minutes: int) -> tuple[str, str] | None:
    """Decision bar type and the catalog data type that feeds it, or None without trades or bars."""
    if data_range(catalog_path, "trade_tick", [instrument_id]) is not None:
        return f"{instrument_id}-{minutes}-MINUTE-LAST-INTERNAL", "trade_tick"
    external = f"{instrument_id}-1-MINUTE-LAST-EXTERNAL"
    if data_range(catalog_path, "bar", [external]) is not None:
        if minutes == 1:
            return external, "bar"
        return f"{instrument_id}-{minutes}-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL", "bar"
    return None


def plan_backtest(
    config: BacktestConfig,
    config_base: Path,
    *,
    catalog: Path | None = None,
    instruments: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    out: Path | None = None,
) -> BacktestPlan:
    """Resolve config, catalog and range into a checked plan (raises MiaError with one line)."""
    markets = load_markets(config_base / config.markets_file)
    strategy = load_strategy(config_base / config.strategy_file)
    catalog_path = Path(catalog or config.catalog or default_catalog_path())
    roots = [r.strip().upper() for r in (instruments or config.instruments) if r.strip()]
    if not roots:
        raise ConfigError("--instruments: list at least one root such as ES or MNQ")
    for root in roots:
        markets.root(root)  # unknown root: one-line error naming the known ones
    present = _catalog_instruments(catalog_path, markets)
    for root in roots:
        if root not in present:
            holds = ", ".join(sorted(present)) or "none"
            raise CatalogError(
                f"catalog {catalog_path} has no {root} contracts (it holds: {holds}); "
                f"ingest {root} data or choose other --instruments",
            )
    all_ids = [i for r in roots for i in present[r]]
    held = data_range(catalog_path, "quote_tick", all_ids) or data_range(catalog_path, "trade_tick", all_ids)
    if held is None:
        raise CatalogError(
            f"catalog {catalog_path} has no quotes or trades for {', '.join(roots)}: fills need ticks; "
            "ingest quotes (mia ingest csv --kind quotes) or trades",
        )
    start_arg = parse_time(start if start is not None else config.start, "start")
    end_arg = parse_time(end if end is not None else config.end, "end")
    start_ns = held[0] if start_arg is None else start_arg
    end_ns = held[1] if end_arg is None else end_arg
    if end_ns <= start_ns:
        raise ConfigError(f"--end {_iso(end_ns)} is not after --start {_iso(start_ns)}")
    if start_ns > held[1] or end_ns < held[0]:
        raise CatalogError(
            f"no data between {_iso(start_ns)} and {_iso(end_ns)}: the catalog holds "
            f"{_iso(held[0])} to {_iso(held[1])} for {', '.join(roots)}",
        )
    slots, data = _slots_and_data(catalog_path, markets, config, roots, present, start_ns, end_ns)
    out_dir = out or Path("runs") / dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    parts = strategy_parts(strategy, config_base, slots, markets.venue, staging_dir(out_dir))
    if strategy.strategy == "mia":
        parts = _note_missing_trades(parts, strategy, config_base, catalog_path, roots, present)
    parts, extra_data, extra_venues = _feature_inputs(
        parts, strategy, config_base, catalog_path, slots, start_ns, end_ns
    )
    return BacktestPlan(
        catalog_path,
        markets,
        strategy,
        config,
        roots,
        start_ns,
        end_ns,
        slots,
        data,
        out_dir,
        parts=parts,
        feature_data=extra_data,
        extra_venues=extra_venues,
    )


#: Days of reference bars, chains and news the feature actor preloads from before a backtest's start.
HISTORY_DAYS = 60.0


def _feature_inputs(
    parts: StrategyParts,
    strategy: StrategyFile,
    config_base: Path,
    catalog_path: Path,
    slots: list[ContractSlot],
    start_ns: int,
    end_ns: int,
) -> tuple[StrategyParts, list[BacktestDataConfig], list[BacktestVenueConfig]]:
    """What the catalog holds beyond the contracts' ticks for the feature actor, as `mia features build`
    loads it: reference bars (VIX, SPY) with their data-only venues, option chains, news, macro events
    and 10-level books; the actor is told to follow them. Without a feature actor, nothing."""
    from mia_strategies.assembly import FEATURE_ACTOR_PATHS
    from mia_strategies.features.history import depth_instruments_in
    from mia_strategies.features.history import reference_bar_types_in
    from mia_strategies.features.sets import load_feature_sets
    from research.features import feature_data_configs
    from research.features import reference_venue_configs

    index = next((i for i, a in enumerate(parts.actors) if a.actor_path == FEATURE_ACTOR_PATHS[0]), None)
    sets_file = config_base / strategy.mia.feature_sets_file
    if index is None or not sets_file.exists():
        return parts, [], []
    wanted = load_feature_sets(sets_file).params.crossmarket
    candidates = {wanted.vix_bar_type, wanted.vix3m_bar_type, wanted.vix9d_bar_type, *wanted.etf_bar_types.values()}
    references = reference_bar_types_in(catalog_path, candidates)
    data = feature_data_configs(catalog_path, start_ns, end_ns, references)
    depth_ids = depth_instruments_in(catalog_path, [s.instrument_id for s in slots])
    if depth_ids:
        data.append(
            BacktestDataConfig(
                catalog_path=str(Path(catalog_path).resolve()),
                data_cls=OrderBookDepth10,
                instrument_ids=depth_ids,
                start_time=start_ns,
                end_time=end_ns,
            ),
        )
    actor = parts.actors[index]
    config = {**actor.config, "reference_bar_types": references, "subscribe_depth": bool(depth_ids)}
    if len(data) > 0:  # daily series (VIX z-scores) and the last chain need history from before the start
        config.update(history_catalog=str(Path(catalog_path).resolve()), history_days=HISTORY_DAYS)
    actors = list(parts.actors)
    actors[index] = ImportableActorConfig(actor_path=actor.actor_path, config_path=actor.config_path, config=config)
    return dataclasses.replace(parts, actors=actors), data, reference_venue_configs(references)


def _slots_and_data(
    catalog_path: Path,
    markets: MarketsConfig,
    config: BacktestConfig,
    roots: list[str],
    present: dict[str, list[str]],
    start_ns: int,
    end_ns: int,
) -> tuple[list[ContractSlot], list[BacktestDataConfig]]:
    slots: list[ContractSlot] = []
    data: list[BacktestDataConfig] = []
    path = str(catalog_path)
    warmup = config.warmup_minutes * _MIN_NS
    for root in roots:
        found = 0
        for window in contract_windows(root, start_ns, end_ns, markets):
            instrument_id = window.contract.instrument_id(markets.venue).value
            if instrument_id not in present[root]:
                continue
            load_from = max(start_ns, window.active_from_ns - warmup)
            load_to = min(end_ns, window.active_to_ns + ROLL_TAIL_NS)
            ticks = data_range(catalog_path, "quote_tick", [instrument_id])
            has_quotes = ticks is not None
            ticks = ticks or data_range(catalog_path, "trade_tick", [instrument_id])
            source = _bar_source(catalog_path, instrument_id, config.bar_minutes)
            if ticks is None or source is None or ticks[0] > load_to or ticks[1] < load_from:
                continue
            bar_type, feed = source
            slots.append(
                ContractSlot(root, instrument_id, bar_type, window.active_from_ns, window.active_to_ns),
            )
            common: dict[str, Any] = {"catalog_path": path, "start_time": load_from, "end_time": load_to}
            if has_quotes:
                data.append(BacktestDataConfig(data_cls=QuoteTick, instrument_id=instrument_id, **common))
            if feed == "trade_tick":
                data.append(BacktestDataConfig(data_cls=TradeTick, instrument_id=instrument_id, **common))
            else:
                external = f"{instrument_id}-1-MINUTE-LAST-EXTERNAL"
                data.append(BacktestDataConfig(data_cls=Bar, bar_types=[external], **common))
            found += 1
        if not found:
            raise CatalogError(
                f"no {root} data between {_iso(start_ns)} and {_iso(end_ns)} for the contracts the roll "
                f"calendar makes active; run `mia catalog ls` to see what the catalog holds",
            )
    return slots, data


def _note_missing_trades(
    parts: StrategyParts,
    strategy: StrategyFile,
    config_base: Path,
    catalog_path: Path,
    roots: list[str],
    present: dict[str, list[str]],
) -> StrategyParts:
    """Say up front when anomaly features cannot exist (no trade ticks) and the risk file blocks on that."""
    from mia_strategies.risk.config import load_risk

    if load_risk(config_base / strategy.mia.risk_file).blocks.anomaly_missing != "block":
        return parts
    notes = list(parts.notes)
    for root in roots:
        if data_range(catalog_path, "trade_tick", present[root]) is None:
            notes.append(
                f"{root} has no trade ticks in {catalog_path}: spoofing_score and volume_anomaly cannot be"
                " computed and risk.yaml's anomaly_missing: block stops every entry; set it to ignore to trade"
                " on quotes and bars alone"
            )
    return dataclasses.replace(parts, notes=tuple(notes))


def _has_quotes(plan: BacktestPlan, instrument_id: str) -> bool:
    return any(d.instrument_id == instrument_id and d.data_cls is QuoteTick for d in plan.data)


def strategy_config(
    strategy: StrategyFile,
    slots: list[ContractSlot],
    roots: list[str],
    roll_policy: str,
    venue: str,
    impl: tuple[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ImportableStrategyConfig:
    """The strategy of ``strategy.yaml`` on a contract schedule: the same in backtest, paper and live."""
    strategy_path, config_path = impl or STRATEGY_PATHS[strategy.strategy]
    params = strategy.params.model_dump()
    config: dict[str, Any] = {
        "slots": [
            {
                "root": s.root,
                "instrument_id": s.instrument_id,
                "bar_type": s.bar_type,
                "active_from_ns": s.active_from_ns,
                "active_to_ns": s.active_to_ns,
            }
            for s in slots
        ],
        "trade_size": {root: params["trade_size"].get(root, 1) for root in roots},
        "roll_policy": roll_policy,
        "flat_minutes_before_close": params.pop("flat_minutes_before_close"),
        "venue": venue,
        **{k: v for k, v in params.items() if k != "trade_size"},
    }
    if impl is not None:  # a custom strategy takes only the shared fields + its extras
        config = {k: config[k] for k in _BASE_FIELDS}
    config.update(extra or {})
    return ImportableStrategyConfig(strategy_path=strategy_path, config_path=config_path, config=config)


def commissions_by_root(markets: MarketsConfig) -> dict[str, str]:
    """Per-contract commission of every root, as the fee model's config wants it."""
    return {r: str(s.commission_per_contract) for r, s in markets.roots.items()}


def build_run_config(plan: BacktestPlan) -> BacktestRunConfig:
    """The nautilus run configuration for a plan."""
    cfg = plan.config
    venue = cfg.venue
    impl, extra, actors = plan.resolved()
    strategy = strategy_config(
        plan.strategy,
        plan.slots,
        plan.roots,
        cfg.roll_policy,
        plan.markets.venue,
        impl,
        extra,
    )
    commissions = commissions_by_root(plan.markets)
    latency_ns = int(venue.latency_ms * 1_000_000)
    venue_config = BacktestVenueConfig(
        name=plan.markets.venue,
        oms_type="NETTING",
        account_type="MARGIN",
        base_currency=venue.currency,
        starting_balances=[f"{venue.starting_balance} {venue.currency}"],
        default_leverage=float(venue.default_leverage),
        margin_model=MarginModelConfig(model_type="standard"),
        fee_model=ImportableFeeModelConfig(
            fee_model_path="mia_strategies.fees:RootCommissionFeeModel",
            config_path="mia_strategies.fees:RootCommissionFeeModelConfig",
            config={"commissions": commissions},
        ),
        fill_model=ImportableFillModelConfig(
            fill_model_path="mia_strategies.venue:CmeFillModel",
            config_path="nautilus_trader.backtest.config:FillModelConfig",
            config=venue.fill_model.model_dump(),
        ),
        latency_model=ImportableLatencyModelConfig(
            latency_model_path="nautilus_trader.backtest.models:LatencyModel",
            config_path="nautilus_trader.backtest.config:LatencyModelConfig",
            config={"base_latency_nanos": latency_ns},
        ),
        modules=[
            ImportableActorConfig(
                actor_path="mia_strategies.venue:QuoteBookGuard",
                config_path="mia_strategies.venue:QuoteBookGuardConfig",
                config={},
            ),
        ],
        bar_execution=False,  # fills come from quotes and trades, never from the decision bar
        # Quotes are the book when present; trades then only build bars (a print at the bid must not
        # fill a buy). A catalog with trades but no quotes fills from trades instead.
        trade_execution=not all(_has_quotes(plan, s.instrument_id) for s in plan.slots),
    )
    engine = BacktestEngineConfig(
        trader_id="MIA-BACKTEST-001",
        logging=LoggingConfig(log_level=cfg.log_level, bypass_logging=cfg.log_level == "ERROR"),
        data_engine=DataEngineConfig(
            time_bars_build_with_no_updates=False,  # no empty bars across the halt or the weekend
            time_bars_timestamp_on_close=True,
        ),
        strategies=[strategy],
        actors=actors,
    )
    return BacktestRunConfig(
        engine=engine,
        venues=[venue_config, *plan.extra_venues],
        data=[*plan.feature_data, *plan.data],
        start=_iso(plan.start_ns),
        end=_iso(plan.end_ns),
        dispose_on_completion=False,
    )


def _fills_frame(report: pd.DataFrame) -> pd.DataFrame:
    """nautilus's fills report → the project's fills table."""
    columns = [
        "ts", "instrument_id", "client_order_id", "venue_order_id", "trade_id", "side",
        "quantity", "price", "commission", "liquidity_side", "order_type",
    ]  # fmt: skip
    if report is None or report.empty:
        return pd.DataFrame(columns=columns)
    frame = report.reset_index()
    out = pd.DataFrame(
        {
            "ts": pd.to_datetime(frame["ts_event"], utc=True),
            "instrument_id": frame["instrument_id"].astype(str),
            "client_order_id": frame["client_order_id"].astype(str),
            "venue_order_id": frame["venue_order_id"].astype(str),
            "trade_id": frame["trade_id"].astype(str),
            "side": frame["order_side"].astype(str),
            "quantity": frame["last_qty"].astype(float),
            "price": frame["last_px"].astype(float),
            "commission": frame["commission"].map(_money_amount),
            "liquidity_side": frame["liquidity_side"].astype(str),
            "order_type": frame["order_type"].astype(str),
        },
    )
    return out.sort_values(["ts", "client_order_id"], kind="stable").reset_index(drop=True)


def _money_amount(value: object) -> float:
    text = str(value).split(" ")[0]
    try:
        return float(text)
    except ValueError:
        return 0.0


def _trades_frame(recorder: RunRecorder) -> pd.DataFrame:
    rows = [asdict(t) for t in recorder.trades]
    columns = [f.name for f in fields(TradeRecord)]
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def run_backtest(plan: BacktestPlan) -> BacktestOutcome:
    """Run the plan in a BacktestNode and write the run folder; return the outcome."""
    out_dir = plan.out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"--out {out_dir} is not empty: choose a new folder so no result is overwritten")
    if plan.staging_dir.exists():
        shutil.rmtree(plan.staging_dir)  # a failed earlier run's leftovers: never mix its journals in
    run_config = build_run_config(plan)
    node = BacktestNode(configs=[run_config])
    started = time.perf_counter()
    try:
        node.build()
        engine = node.get_engine(run_config.id)
        if engine is not None:
            from mia_strategies.actors.risk import bind_risk_actors

            bind_risk_actors(engine.kernel)  # halts go through nautilus's risk engine
        run_results = node.run()
        elapsed = time.perf_counter() - started
        if engine is None or not run_results:
            # nautilus logged the cause above; an engine failure is a defect, not a user error
            raise RuntimeError("the nautilus backtest engine failed (see its error above)")
        strategy = engine.trader.strategies()[0]
        recorder: RunRecorder = strategy.recorder  # type: ignore[attr-defined]
        fills = _fills_frame(engine.trader.generate_fills_report())
        iterations = run_results[0].iterations
    finally:
        node.dispose()
    equity = pd.Series(
        recorder.equity,
        index=pd.to_datetime(recorder.equity_ts, utc=True),
        dtype=float,
        name="equity",
    )
    trades = _trades_frame(recorder)
    summary: dict[str, Any] = results.compute_summary(
        equity,
        trades,
        fills,
        starting_balance=float(plan.config.venue.starting_balance),
        total_events=int(iterations),
        elapsed_s=elapsed,
    )
    summary["rolls"] = len(recorder.rolls)
    summary["decision_bars"] = int(sum(recorder.decision_bars.values()))
    regimes = results.per_regime(trades, recorder.regime_bars)
    if plan.parts is not None and plan.strategy_impl is None:
        summary["regime_sources"] = dict(plan.parts.regime_sources)
    _write_run(plan, out_dir, summary, equity, trades, fills, recorder, regimes)
    return BacktestOutcome(out_dir, summary, trades, fills, equity, strategy)


def _write_run(
    plan: BacktestPlan,
    out_dir: Path,
    summary: dict[str, Any],
    equity: pd.Series,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    recorder: RunRecorder,
    regimes: pd.DataFrame,
) -> None:
    """Write the run folder; a partial folder is renamed aside so no half-written run looks complete."""
    from mia_strategies.risk.journal import risk_event_summary
    from mia_strategies.risk.journal import risk_event_table

    staging = plan.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    for artifact in plan.parts.artifacts if plan.parts is not None and plan.strategy_impl is None else ():
        shutil.copy2(artifact, staging / artifact.name)
    results.write_tables(staging, fills, trades, equity)
    regimes.reset_index().to_csv(staging / "per_regime.csv", index=False)
    sections = results.add_breakdowns(summary, regimes, risk_event_summary(risk_event_table(staging)))
    results.write_summary(staging, summary)
    results.write_report(
        staging, equity, trades, summary, title=f"MIA backtest {', '.join(plan.roots)}", sections=sections
    )
    run_info = {
        "catalog": str(plan.catalog_path),
        "instruments": plan.roots,
        "start": _iso(plan.start_ns),
        "end": _iso(plan.end_ns),
        "contracts": [s.instrument_id for s in plan.slots],
        "rolls": [{"ts": _iso(ts), "root": root, "from": old, "to": new} for ts, root, old, new in recorder.rolls],
        "config": json.loads(plan.config.model_dump_json()),
        "strategy": json.loads(plan.strategy.model_dump_json()),
    }
    (staging / "run.json").write_text(json.dumps(run_info, indent=2, sort_keys=True), encoding="utf-8")
    if out_dir.exists():
        out_dir.rmdir()  # checked empty before the run
    staging.rename(out_dir)
