"""Turn ``strategy.yaml`` into what a node runs: the strategy and its actors, in their fixed order.

Backtest, paper and live all call ``strategy_parts`` with their contract schedule and run folder, so
the three modes run the same strategy configuration and the same actors and differ only in where
data and fills come from. The order is part of the contract: features are published before the
regime actor reads them, regimes before the risk actor, and the risk state before the strategy
decides on the same bar.

- ``mia``: feature actor (the ``<ROOT>.inference`` set), one HMM regime actor per market with a
  fitted model (``mia regime fit``) or the causal bar-rule regimes where none exists, the risk actor,
  and the MIA router strategy.
- ``atr_breakout``: the same regime source (HMM regimes need the feature actor, so it runs then too)
  and the baseline breakout, which enters in no regime of ``blocked_regimes``.

Both get the operations actors last (each can be switched off in the ``mia`` section): the market
memory (after the features it stores), the alert actor (``config/alerts.yaml``; a backtest records
to ``alerts.jsonl`` and sends nothing) and the operator control actor (halt, resume, flatten from
``mia voice`` and the dashboard; ``live.json``), which only records in a backtest.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nautilus_trader.config import ImportableActorConfig

from mia_strategies.config import StrategyFile
from mia_strategies.errors import ConfigError
from mia_strategies.strategies.base import ContractSlot


FEATURE_ACTOR_PATHS = (
    "mia_strategies.actors.features:FeatureActor",
    "mia_strategies.actors.features:FeatureActorConfig",
)
REGIME_ACTOR_PATHS = ("mia_strategies.actors.regime:RegimeActor", "mia_strategies.actors.regime:RegimeActorConfig")


@dataclass(frozen=True)
class StrategyParts:
    """The strategy (None: the one ``strategy.yaml`` names, built by ``strategy_config``) and its actors."""

    strategy_impl: tuple[str, str] | None
    strategy_extra: dict[str, Any]
    actors: list[ImportableActorConfig]
    #: Regime source per root: the model file, or ``bar-rules``.
    regime_sources: dict[str, str] = field(default_factory=dict)
    #: Lines worth telling the user before the run (a market without a regime model).
    notes: tuple[str, ...] = ()
    #: Files copied into the run folder when it is written (the SHAP importance behind the RL
    #: providers' features, for the dashboard).
    artifacts: tuple[Path, ...] = ()


def latest_regime_model(models_dir: Path, root: str) -> Path | None:
    """The newest ``mia regime fit`` model of ``root`` (versions start with their UTC fit time)."""
    folder = models_dir / root
    if not folder.is_dir():
        return None
    models = sorted(p for p in folder.glob("*.json") if p.is_file())
    return models[-1] if models else None


def persistent_risk_state(strategy: StrategyFile, config_base: Path, mode: str) -> Path:
    """Where a paper or live node keeps its halts across restarts: ``risk.yaml``'s ``state_file``.

    Paper uses a sibling file (``paper-<name>``) so a paper session can never clear or trip a live halt.
    """
    from mia_strategies.risk.config import load_risk

    state_file = load_risk(config_base / strategy.mia.risk_file).state_file
    return state_file if mode == "live" else state_file.with_name(f"{mode}-{state_file.name}")


def _regime_actors(
    strategy: StrategyFile,
    config_base: Path,
    slots: Sequence[ContractSlot],
) -> tuple[list[ImportableActorConfig], dict[str, str], list[str]]:
    """One HMM regime actor per market with a model; bar-rule regimes for the rest."""
    from mia_strategies.actors.regime import load_regime_model

    settings = strategy.mia
    regime_config = config_base / settings.regime_config_file
    feature_sets_file = config_base / settings.feature_sets_file
    actors: list[ImportableActorConfig] = []
    sources: dict[str, str] = {}
    notes: list[str] = []
    rule_bars: list[str] = []
    for root in sorted({s.root for s in slots}):
        ids = [s.instrument_id for s in slots if s.root == root]
        model_path = latest_regime_model(settings.regime_models, root)
        if model_path is None:
            rule_bars += [s.bar_type for s in slots if s.root == root]
            sources[root] = "bar-rules"
            notes.append(
                f"no regime model for {root} under {settings.regime_models}: using the causal bar-rule regimes "
                f"(fit one with `mia regime fit --instruments {root} --models {settings.regime_models}`)",
            )
            continue
        model = load_regime_model(model_path)  # a broken file is a one-line error before the run
        if model.market and model.market != root:
            raise ConfigError(f"regime model {model_path} was fitted for {model.market}, not {root}: move or refit it")
        sources[root] = str(model_path)
        config: dict[str, Any] = {
            "component_id": f"RegimeActor-{root}",
            "model_path": str(model_path),
            "instrument_ids": ids,
            "feature_sets_file": str(feature_sets_file) if feature_sets_file.exists() else None,
            "regime_config": str(regime_config) if regime_config.exists() else None,
        }
        actors.append(
            ImportableActorConfig(actor_path=REGIME_ACTOR_PATHS[0], config_path=REGIME_ACTOR_PATHS[1], config=config),
        )
    if rule_bars:
        from mia_strategies.risk.wiring import BAR_RULES_PATHS

        actors.append(
            ImportableActorConfig(
                actor_path=BAR_RULES_PATHS[0],
                config_path=BAR_RULES_PATHS[1],
                config={"bar_types": sorted(rule_bars), "publish_features": False},
            ),
        )
    return actors, sources, notes


def _existing(config_base: Path, name: str | None) -> Path | None:
    """``config_base / name`` when it names a file that exists."""
    path = config_base / name if name else None
    return path if path is not None and path.exists() else None


def _feature_actor(
    strategy: StrategyFile,
    config_base: Path,
    slots: Sequence[ContractSlot],
    *,
    custom_client_id: str | None,
    live_depth: bool = False,
) -> ImportableActorConfig:
    settings = strategy.mia
    feature_sets_file = config_base / settings.feature_sets_file
    markets_file = config_base / "markets.yaml"
    calendar = _existing(config_base, settings.macro_calendar_file)
    roots = sorted({s.root for s in slots})
    config: dict[str, Any] = {
        "bar_types": sorted({s.bar_type for s in slots}),
        "feature_sets": {root: f"{root}.{settings.feature_set}" for root in roots},
        "feature_sets_file": str(feature_sets_file) if feature_sets_file.exists() else None,
        "markets_file": str(markets_file) if markets_file.exists() else None,
        "macro_calendar": str(calendar) if calendar is not None else None,
        "custom_client_id": custom_client_id,
    }
    if live_depth:  # the live client streams Level 2 deltas; the actor keeps the book (see FeatureActorConfig)
        config |= {"subscribe_depth": True, "depth_from_deltas": True}
    return ImportableActorConfig(actor_path=FEATURE_ACTOR_PATHS[0], config_path=FEATURE_ACTOR_PATHS[1], config=config)


def _ops_actors(
    strategy: StrategyFile,
    config_base: Path,
    slots: Sequence[ContractSlot],
    venue: str,
    run_dir: Path,
    mode: str,
    *,
    has_features: bool,
) -> list[ImportableActorConfig]:
    """Market memory (only with features to store), alerts, operator control."""
    settings = strategy.mia
    actors: list[ImportableActorConfig] = []
    backtest = mode == "backtest"
    if settings.market_memory and has_features and (not backtest or settings.market_memory_in_backtest):
        from mia_strategies.actors.memory import memory_actor_config
        from mia_strategies.ops.settings import MiaConfig
        from mia_strategies.ops.settings import load_mia_config

        mia_file = config_base / "mia_config.yaml"
        memory = (load_mia_config(mia_file) if mia_file.exists() else MiaConfig()).memory
        path = run_dir / "market_memory.db" if backtest else memory.path
        actors.append(memory_actor_config(memory, sorted({s.bar_type for s in slots}), path))
    if settings.alerts:
        from mia_strategies.actors.alerts import alert_actor_config

        alerts_file = config_base / "alerts.yaml"
        actors.append(
            alert_actor_config(
                run_dir,
                alerts_file=alerts_file if alerts_file.exists() else None,
                deliver=not backtest,
                instrument_ids=[] if backtest else sorted({s.instrument_id for s in slots}),
                venue=venue,
            ),
        )
    if settings.operator_control:
        from mia_strategies.ops.control import operator_control_config

        actors.append(operator_control_config(run_dir, mode=mode, venue=venue, poll_s=0.0 if backtest else 0.5))
    return actors


def strategy_parts(
    strategy: StrategyFile,
    config_base: Path,
    slots: Sequence[ContractSlot],
    venue: str,
    run_dir: Path,
    *,
    state_path: Path | None = None,
    custom_client_id: str | None = None,
    mode: str = "backtest",
    live_depth: bool = False,
) -> StrategyParts:
    """The strategy and actors of one run writing its journals to ``run_dir``.

    ``state_path`` is where the risk actor keeps its halts: a backtest's own folder by default; paper
    and live pass ``risk.yaml``'s ``state_file`` so a halt survives a restart within the trading day.
    ``mode`` (``backtest``, ``paper``, ``live``) decides whether alerts are sent and commands polled.
    ``live_depth``: the live data client streams Level 2 (IQFeed's depth port), so the feature actor
    builds the book from its deltas (a backtest replays the catalog's depth snapshots instead).
    """
    regime_actors, sources, notes = _regime_actors(strategy, config_base, slots)
    uses_hmm = any(a.actor_path == REGIME_ACTOR_PATHS[0] for a in regime_actors)
    if strategy.strategy == "atr_breakout":
        client = custom_client_id
        features = _feature_actor(strategy, config_base, slots, custom_client_id=client, live_depth=live_depth)
        actors = [features] if uses_hmm else []
        ops = _ops_actors(strategy, config_base, slots, venue, run_dir, mode, has_features=uses_hmm)
        return StrategyParts(None, {}, [*actors, *regime_actors, *ops], sources, tuple(notes))

    from mia_strategies.risk.config import load_risk
    from mia_strategies.risk.config import load_router
    from mia_strategies.risk.wiring import MIA_STRATEGY_PATHS
    from mia_strategies.risk.wiring import feature_set_names
    from mia_strategies.risk.wiring import mia_actor_configs
    from mia_strategies.risk.wiring import mia_strategy_extra
    from mia_strategies.signals import build_providers
    from mia_strategies.signals import prepare_providers

    settings = strategy.mia
    risk = load_risk(config_base / settings.risk_file)
    router = load_router(config_base / settings.router_file)
    # RL providers load their models here, so a missing or broken model is one line before the run
    prepare_providers(build_providers(router), sorted({s.root for s in slots}))
    feature_sets_file = config_base / settings.feature_sets_file
    feature_sets = feature_set_names(feature_sets_file) if feature_sets_file.exists() else {}
    for root in sorted({s.root for s in slots}):
        name = f"{root}.{settings.feature_set}"
        if feature_sets and name not in feature_sets:
            known = ", ".join(sorted(feature_sets))
            raise ConfigError(f"{feature_sets_file}: no feature set {name} (it defines: {known}); set mia.feature_set")
    risk_actors = mia_actor_configs(
        slots,
        venue,
        risk,
        run_dir,
        state_path or run_dir / "risk_state.json",
        feature_sets,
        bar_rules=False,
        macro_calendar=_existing(config_base, settings.macro_calendar_file),
    )
    actors = [
        _feature_actor(strategy, config_base, slots, custom_client_id=custom_client_id, live_depth=live_depth),
        *regime_actors,
        *risk_actors,
        *_ops_actors(strategy, config_base, slots, venue, run_dir, mode, has_features=True),
    ]
    extra = mia_strategy_extra(router, risk, run_dir, feature_sets)
    artifacts = _importance_files(router, sorted({s.root for s in slots}))
    return StrategyParts(MIA_STRATEGY_PATHS, extra, actors, sources, tuple(notes), artifacts)


def _importance_files(router: Any, roots: Sequence[str]) -> tuple[Path, ...]:
    """``mia features select``'s cached importance of every RL provider's registry, per root."""
    found: list[Path] = []
    for params in router.providers.values():
        registry = getattr(params, "registry", None)
        if registry is None:
            continue
        for root in roots:
            path = Path(registry) / root / f"feature_importance_{root}.csv"
            if path.is_file() and path not in found:
                found.append(path)
    return tuple(found)
