"""How a run gets the MIA strategy, the risk actor and the bar-rule actor: configs, binding, running.

``mia_strategy_extra`` and ``mia_actor_configs`` build the importable configurations a backtest,
paper or live node needs (the same in every mode); ``with_actors`` adds actors to a backtest run
configuration built by ``mia_strategies.backtest.build_run_config``; ``run_mia_node`` runs one
through a real ``BacktestNode``, binding the kernel's risk engine to the risk actor first, and hands
back the engine for inspection (tests, benchmarks). Actor order matters and is fixed here: features
and regimes are published before the risk actor reads them, and the risk state before the strategy
decides on the same bar.
"""

import contextlib
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.backtest.results import BacktestResult
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import BacktestRunConfig
from nautilus_trader.config import ImportableActorConfig

from mia_strategies.risk.config import RiskConfig
from mia_strategies.risk.config import RouterConfig
from mia_strategies.strategies.base import ContractSlot


MIA_STRATEGY_PATHS = (
    "mia_strategies.strategies.mia:MiaRouterStrategy",
    "mia_strategies.strategies.mia:MiaRouterConfig",
)
RISK_ACTOR_PATHS = ("mia_strategies.actors.risk:RiskActor", "mia_strategies.actors.risk:RiskActorConfig")
BAR_RULES_PATHS = ("mia_strategies.risk.bar_rules:BarRulesActor", "mia_strategies.risk.bar_rules:BarRulesActorConfig")


def _slots(slots: Sequence[ContractSlot]) -> list[dict[str, Any]]:
    return [msgspec.structs.asdict(s) for s in slots]


def mia_strategy_extra(
    router: RouterConfig,
    risk: RiskConfig,
    run_dir: Path | None,
    feature_sets: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The MIA strategy's own config fields (``BacktestPlan.strategy_extra``)."""
    return {
        "router": router.model_dump(mode="json"),
        "risk": risk.model_dump(mode="json"),
        "run_dir": str(run_dir) if run_dir is not None else None,
        "feature_sets": {k: list(v) for k, v in (feature_sets or {}).items()},
    }


def mia_actor_configs(
    slots: Sequence[ContractSlot],
    venue: str,
    risk: RiskConfig,
    run_dir: Path | None,
    state_path: Path | None,
    feature_sets: Mapping[str, Sequence[str]] | None = None,
    *,
    bar_rules: bool = True,
    macro_calendar: Path | None = None,
) -> list[ImportableActorConfig]:
    """The bar-rule actor (unless the real feature and regime actors replace it), then the risk actor.

    Real feature and regime actors go before these, in that order. ``macro_calendar`` lets the risk
    actor open its flat windows from the calendar file when no ``MacroEvent`` stream is on the bus.
    """
    actors: list[ImportableActorConfig] = []
    if bar_rules:
        actors.append(
            ImportableActorConfig(
                actor_path=BAR_RULES_PATHS[0],
                config_path=BAR_RULES_PATHS[1],
                config={"bar_types": sorted({s.bar_type for s in slots})},
            ),
        )
    actors.append(
        ImportableActorConfig(
            actor_path=RISK_ACTOR_PATHS[0],
            config_path=RISK_ACTOR_PATHS[1],
            config={
                "slots": _slots(slots),
                "venue": venue,
                "risk": risk.model_dump(mode="json"),
                "run_dir": str(run_dir) if run_dir is not None else None,
                "state_path": str(state_path) if state_path is not None else None,
                "feature_sets": {k: list(v) for k, v in (feature_sets or {}).items()},
                "macro_calendar": str(macro_calendar) if macro_calendar is not None else None,
            },
        ),
    )
    return actors


#: Feature sets the regime actor publishes (``<ROOT>.regime_weighted``) and the prefix their values
#: are read under (``weighted.atr_dynamic``), so they never replace the raw values of the same name.
WEIGHTED_SUFFIX = ".regime_weighted"
WEIGHTED_PREFIX = "weighted."


def feature_set_names(path: Path | None = None) -> dict[str, list[str]]:
    """Ordered names of every feature set in ``config/feature_sets.yaml`` (empty when that file is absent).

    Names of the regime-weighted sets carry ``WEIGHTED_PREFIX``.
    """
    from mia_strategies.config import config_dir
    from mia_strategies.features.sets import load_feature_sets

    resolved = path or config_dir() / "feature_sets.yaml"
    if not resolved.exists():
        return {}
    sets = load_feature_sets(resolved)
    out: dict[str, list[str]] = {}
    for name in sets.names():
        names = list(sets.resolve(name).names)
        # the regime actor's weighted copy arrives at the same bar as the raw vector: under its own
        # names it would overwrite the raw atr_dynamic and friends the risk rules size with
        out[name] = [f"{WEIGHTED_PREFIX}{n}" for n in names] if name.endswith(WEIGHTED_SUFFIX) else names
    return out


def with_actors(run_config: BacktestRunConfig, actors: Sequence[ImportableActorConfig]) -> BacktestRunConfig:
    """A copy of ``run_config`` whose engine also runs ``actors`` (after any it already has)."""
    if run_config.engine is None:
        raise ValueError("the run configuration has no engine configuration to add actors to")
    engine = msgspec.structs.replace(run_config.engine, actors=[*run_config.engine.actors, *actors])
    return msgspec.structs.replace(run_config, engine=engine)


@dataclass
class MiaNodeRun:
    """A finished run: the engine (still holding cache, portfolio, trader) and nautilus's result."""

    engine: BacktestEngine
    result: BacktestResult

    @property
    def strategy(self) -> Any:
        """The (first) strategy of the run."""
        return self.engine.trader.strategies()[0]

    def actor(self, cls: type) -> Any:
        """The first actor of class ``cls``."""
        return next(a for a in self.engine.trader.actors() if isinstance(a, cls))


@contextlib.contextmanager
def run_mia_node(run_config: BacktestRunConfig, extra_actors: Sequence[Actor] = ()) -> Iterator[MiaNodeRun]:
    """Run ``run_config`` in a ``BacktestNode`` with the risk engine bound; dispose on exit.

    ``extra_actors`` (instances, for example a test's observer) run after the configured actors. An
    exception inside the run propagates as itself (``raise_exception``).
    """
    from mia_strategies.actors.risk import bind_risk_actors

    run_config = msgspec.structs.replace(run_config, raise_exception=True)  # a failure keeps its own message
    node = BacktestNode(configs=[run_config])
    try:
        node.build()
        engine = node.get_engine(run_config.id)
        if engine is None:
            raise RuntimeError("the nautilus backtest engine could not be built (see its error above)")
        for actor in extra_actors:
            engine.add_actor(actor)
        bind_risk_actors(engine.kernel)
        results = node.run()
        if not results:
            raise RuntimeError("the nautilus backtest engine failed (see its error above)")
        yield MiaNodeRun(engine, results[0])
    finally:
        node.dispose()
