"""RL policies and the Bayesian ensemble as signal providers for the MIA strategy.

Two provider kinds, registered with ``mia_strategies.signals.register_provider_kind``:

``rl_policy``
    One registered policy (``models/<ROOT>/<algo>/vNNNN``, the latest unless ``version`` is set;
    ``regime_versions`` picks a regime's fine-tuned version while that regime is in force).
``rl_ensemble``
    A registered ensemble (``models/<ROOT>/ensemble/vNNNN``): SAC, PPO, DDPG (and QR-DQN /
    PPO-Lagrangian when configured) by weighted vote with posterior weights.

Each makes one deterministic decision per bar and root from the bar's ``FeatureVector`` values (by
name) and regime probabilities, through the same ``ObservationSpec`` the environment used. The
position in the observation is the context's ``position`` when the strategy provides it, else the
provider's own target (what the environment assumes is held). A flat decision is "no view" (None).

The signal's probability is the policy's confidence (see ``LoadedPolicy.confidence``) or the
ensemble's trade probability; its return quantiles are QR-DQN's when a quantile network decides
(reward units: points per contract), else a normal around the bar's ATR; ``risk`` is their spread
(ATR without quantiles). The ensemble's CVaR estimate and weights stay readable on
``last_decision`` and in the log (``ensemble_weights``).
"""

import math
from pathlib import Path
from typing import Any

import numpy as np

from mia_strategies.errors import ConfigError
from mia_strategies.providers.ensemble import EnsembleDecision
from mia_strategies.providers.params import RlEnsembleParams
from mia_strategies.providers.params import RlPolicyParams
from mia_strategies.providers.policy import EnsembleModel
from mia_strategies.providers.policy import EnsembleRunner
from mia_strategies.providers.policy import LoadedPolicy
from mia_strategies.providers.policy import PolicyDecision
from mia_strategies.providers.policy import PolicyRunner
from mia_strategies.signals import QUANTILES
from mia_strategies.signals import SignalContext
from mia_strategies.signals import TradeSignal
from mia_strategies.signals import normal_quantiles
from mia_strategies.signals import register_provider_kind


def version_path(registry: Path, root: str, algo: str, version: int | None) -> Path:
    """Folder of a complete registry version (the latest when ``version`` is None)."""
    folder = Path(registry) / root.upper() / algo
    complete = sorted(
        (int(p.name[1:]), p)
        for p in (folder.iterdir() if folder.is_dir() else [])
        if p.name.startswith("v") and p.name[1:].isdigit() and (p / "manifest.json").is_file()
    )
    if not complete:
        hint = "mia ensemble build" if algo == "ensemble" else f"mia train {algo}"
        raise ConfigError(f"no {algo} model for {root.upper()} in {registry}: run `{hint} --market {root.upper()}`")
    if version is None:
        return complete[-1][1]
    for number, path in complete:
        if number == version:
            return path
    raise ConfigError(f"{root.upper()}/{algo} has no version {version} in {registry}")


def _online_learner(params: RlPolicyParams, root: str, runner: PolicyRunner) -> Any:
    """An online learner for ``runner`` with the registry model and the research configuration."""
    from mia_strategies.config import load_markets
    from research.rl.config import load_algo_config
    from research.rl.config import load_env_config
    from research.rl.config import load_model_params
    from research.rl.online import OnlineLearner

    folder = version_path(params.registry, root, params.algo, params.version)
    algo = load_algo_config()
    return OnlineLearner(
        runner,
        (folder / "model.zip").read_bytes(),
        params.algo,
        load_env_config(),
        load_markets(),
        load_model_params(),
        algo.online,
        seed=algo.seed,
    )


def _position(context: SignalContext) -> int | None:
    return None if context.position is None else int(context.position)


def _quantile_pairs(values: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Equally weighted return quantiles interpolated at the signal's levels."""
    q = np.sort(np.asarray(values, dtype=np.float64))
    levels = (np.arange(len(q)) + 0.5) / len(q)
    return tuple((level, float(np.interp(level, levels, q))) for level in QUANTILES)


def _signal(
    name: str,
    direction: int,
    probability: float,
    quantiles: np.ndarray | None,
    atr: float,
) -> TradeSignal:
    if quantiles is not None and len(quantiles):
        pairs = _quantile_pairs(quantiles)
        risk = float(np.std(quantiles))
    else:
        sigma = atr if math.isfinite(atr) and atr > 0 else 1.0
        pairs = normal_quantiles(direction, probability, sigma)
        risk = sigma
    return TradeSignal(
        direction=direction,
        probability=probability,
        expected_return_quantiles=pairs,
        risk=risk,
        horizon_bars=1,
        provider=name,
    )


class RlPolicyProvider:
    """One registered policy per root (and per regime when fine-tuned versions are configured)."""

    history_bars = 2

    def __init__(self, name: str, params: RlPolicyParams) -> None:
        self.name = name
        self.params = params
        self._runners: dict[tuple[str, int | None], PolicyRunner] = {}
        self._learners: dict[str, Any] = {}
        self.last_decision: PolicyDecision | None = None

    def runner(self, root: str, regime: str | None = None) -> PolicyRunner:
        """The runner of ``root`` (the regime's fine-tuned version when one is configured)."""
        version = self.params.regime_versions.get(regime or "", self.params.version)
        key = (root, version)
        runner = self._runners.get(key)
        if runner is None:
            path = version_path(self.params.registry, root, self.params.algo, version)
            runner = self._runners[key] = PolicyRunner(LoadedPolicy.load(path))
        return runner

    def prepare(self, roots: list[str]) -> None:
        """Load every configured version of ``roots`` now: a missing model fails at start, not mid-run."""
        regimes = [None, *self.params.regime_versions]
        for root in roots:
            for regime in regimes:
                self.runner(root, regime)

    def decide(self, context: SignalContext) -> PolicyDecision:
        """The policy's decision at the context's bar (once per bar)."""
        runner = self.runner(context.root, context.regime)
        if self.params.online:
            self._learn(context, runner)
        decision = runner.step(context.ts_ns, context.features, context.regime_probabilities, _position(context))
        self.last_decision = decision
        return decision

    def _learn(self, context: SignalContext, runner: PolicyRunner) -> None:
        """Feed the online learner (a buffer append) and take a finished update (never waits)."""
        learner = self._learners.get(context.root)
        if learner is None:
            learner = self._learners[context.root] = _online_learner(self.params, context.root, runner)
        close = float(context.close[-1]) if len(context.close) else math.nan
        learner.poll(context.ts_ns)
        learner.record(context.ts_ns, context.instrument_id, close, context.features, context.regime_probabilities)

    def close(self) -> None:
        """Stop the online learners' workers."""
        for learner in self._learners.values():
            learner.close()
        self._learners.clear()

    def signal(self, context: SignalContext) -> TradeSignal | None:
        """A long or short signal when the policy wants a position, None when it wants to be flat."""
        decision = self.decide(context)
        direction = int(np.sign(decision.target))
        if direction == 0:
            return None
        quantiles = None
        if decision.output.quantiles is not None:
            max_position = self.runner(context.root, context.regime).policy.spec.max_position
            quantiles = decision.output.quantiles[:, decision.target + max_position]
        return _signal(self.name, direction, decision.probability, quantiles, context.atr)


class RlEnsembleProvider:
    """The registered Bayesian ensemble of each root."""

    history_bars = 2

    def __init__(self, name: str, params: RlEnsembleParams) -> None:
        self.name = name
        self.params = params
        self._runners: dict[str, EnsembleRunner] = {}
        self.last_decision: EnsembleDecision | None = None

    def runner(self, root: str) -> EnsembleRunner:
        """The ensemble runner of ``root``."""
        runner = self._runners.get(root)
        if runner is None:
            path = version_path(self.params.registry, root, "ensemble", self.params.version)
            runner = self._runners[root] = EnsembleRunner(EnsembleModel.load(path))
        return runner

    def prepare(self, roots: list[str]) -> None:
        """Load the ensemble of ``roots`` now: a missing model fails at start, not mid-run."""
        for root in roots:
            self.runner(root)

    def diagnostics(self, root: str) -> dict[str, Any] | None:
        """The last decision's health for the ``mia.metrics`` topic: member weights, CVaR, quantiles.

        The alert actor turns these into ``ensemble_imbalance``, ``cvar_breach`` and ``tail_risk``
        alerts and the operator control actor keeps them for the dashboard.
        """
        decision = self.last_decision
        runner = self._runners.get(root)
        if decision is None or runner is None:
            return None
        out: dict[str, Any] = {
            "source": self.name,
            "ensemble_weights": dict(zip(runner.ensemble.members, map(float, decision.weights), strict=False)),
        }
        if decision.quantiles:
            out["quantiles"] = [float(q) for q in decision.quantiles]
        if math.isfinite(decision.cvar):
            out["cvar_loss"] = float(decision.cvar)
        return out

    def decide(self, context: SignalContext) -> EnsembleDecision:
        """The ensemble's decision at the context's bar (once per bar)."""
        runner = self.runner(context.root)
        close = float(context.close[-1]) if len(context.close) else math.nan
        decision = runner.step(
            context.ts_ns,
            context.instrument_id,
            close,
            context.features,
            context.regime_probabilities,
            _position(context),
        )
        self.last_decision = decision
        return decision

    def signal(self, context: SignalContext) -> TradeSignal | None:
        """The ensemble's side when its trade probability reaches the entry threshold, else None."""
        decision = self.decide(context)
        if decision.direction == 0:
            return None
        quantiles = np.asarray(decision.quantiles) if decision.quantiles else None
        return _signal(self.name, decision.direction, decision.trade_probability, quantiles, context.atr)


def _policy_factory(name: str, params: Any) -> RlPolicyProvider:
    model = params if isinstance(params, RlPolicyParams) else RlPolicyParams.model_validate(params)
    return RlPolicyProvider(name, model)


def _ensemble_factory(name: str, params: Any) -> RlEnsembleProvider:
    model = params if isinstance(params, RlEnsembleParams) else RlEnsembleParams.model_validate(params)
    return RlEnsembleProvider(name, model)


register_provider_kind("rl_policy", _policy_factory)
register_provider_kind("rl_ensemble", _ensemble_factory)

__all__ = [
    "RlEnsembleParams",
    "RlEnsembleProvider",
    "RlPolicyParams",
    "RlPolicyProvider",
    "version_path",
]
