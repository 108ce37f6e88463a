"""Trained policies and the ensemble as per-bar deciders, identical in research and in the engine.

``LoadedPolicy`` is one registry version (``models/<MARKET>/<algo>/vNNNN``): its numpy network and
the observation spec it was trained with. ``PolicyRunner`` and ``EnsembleRunner`` keep the per-root
state a decision needs (the position, the previous bar's close and targets for the ensemble's
posterior) and make exactly one decision per bar: asking again at the same bar returns the same
decision without touching the state. The research environment drives the same runners over offline
features; the signal providers (``mia_strategies.providers.signal``) drive them from the engine's
``FeatureVector`` and ``RegimeState``.
"""

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from mia_strategies.errors import ConfigError
from mia_strategies.providers.config import TradeProbabilityConfig
from mia_strategies.providers.ensemble import BayesianEnsemble
from mia_strategies.providers.ensemble import EnsembleDecision
from mia_strategies.providers.ensemble import member_reward
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.network import PolicyOutput
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.observation import PositionTracker
from mia_strategies.providers.observation import bar_session


FloatArray = npt.NDArray[np.float64]
log = logging.getLogger("mia.providers")


class NamedRow(NamedTuple):
    """Values with their names (a research frame's row): cheaper than a mapping for 350 features."""

    names: tuple[str, ...]
    values: FloatArray


Features = Mapping[str, float] | NamedRow
Regimes = Mapping[str, float] | NamedRow | None


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{folder}: no manifest.json (not a model registry version; see `mia models ls`)")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


class _Selector:
    """Picks a model's names out of named rows or mappings, caching the column index per name list."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._source: tuple[str, ...] | None = None
        self._index: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._present: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)

    def __call__(self, values: Features | Regimes) -> FloatArray | None:
        if values is None:
            return None
        if isinstance(values, NamedRow):
            if values.names is not self._source:
                lookup = {n: i for i, n in enumerate(values.names)}
                self._index = np.array([lookup.get(n, -1) for n in self.names], dtype=np.int64)
                self._present = self._index >= 0
                self._source = values.names
            out = np.full(len(self.names), np.nan)
            out[self._present] = values.values[self._index[self._present]]
            return out
        return np.array([float(values.get(n, math.nan)) for n in self.names], dtype=np.float64)


@dataclass(frozen=True)
class PolicyDecision:
    """One policy decision: the target position, the network's output and its confidence."""

    target: int
    output: PolicyOutput
    probability: float


class LoadedPolicy:
    """A registered policy ready for inference (no torch): network, observation spec, identity."""

    def __init__(self, network: PolicyNetwork, spec: ObservationSpec, manifest: dict[str, Any]) -> None:
        if network.input_size != spec.size:
            raise ConfigError(f"policy takes {network.input_size} inputs but its spec builds {spec.size}")
        if network.discrete != spec.discrete:
            raise ConfigError("policy network and observation spec disagree on discrete actions")
        self.network = network
        self.spec = spec
        self.manifest = manifest
        self.algo = str(manifest.get("algo", "policy"))
        self.market = str(manifest.get("market", ""))
        self.version = int(manifest.get("version", 0))
        self.label = f"{self.market}/{self.algo}/v{self.version:04d}"
        self._features = _Selector(spec.feature_names)
        self._regimes = _Selector(spec.regime_labels)

    @classmethod
    def load(cls, folder: Path) -> "LoadedPolicy":
        """Load ``manifest.json`` and ``policy.npz`` of a registry version folder."""
        manifest = _read_manifest(folder)
        network_path = folder / "policy.npz"
        if not network_path.is_file():
            raise ConfigError(f"{folder}: no policy.npz (the version is incomplete; train it again)")
        return cls(PolicyNetwork.load(network_path), ObservationSpec.from_dict(manifest["observation"]), manifest)

    def feature_vector(self, features: Features) -> FloatArray:
        """The model's features in its order (NaN where absent)."""
        vector = self._features(features)
        assert vector is not None
        return vector

    def regime_vector(self, regimes: Regimes) -> FloatArray:
        """The regime probabilities in the model's label order (NaN where absent; empty without regimes)."""
        if not self.spec.regime_labels:
            return np.zeros(0)
        vector = self._regimes(regimes)
        return np.full(len(self.spec.regime_labels), np.nan) if vector is None else vector

    def observation(self, features: Features, regimes: Regimes, position: int, ts_ns: int) -> npt.NDArray[np.float32]:
        """The observation this policy sees (exactly what the environment builds)."""
        vector = self.feature_vector(features)
        regime = self._regimes(regimes) if self.spec.regime_labels else None
        held = max(-self.spec.max_position, min(self.spec.max_position, position))
        return self.spec.build(vector, regime, held, ts_ns)

    def decide(self, features: Features, regimes: Regimes, position: int, ts_ns: int) -> PolicyDecision:
        """Deterministic decision for one bar."""
        return self.decide_on(self.observation(features, regimes, position, ts_ns))

    def decide_on(self, observation: npt.NDArray[np.float32]) -> PolicyDecision:
        """Deterministic decision for an observation this policy's spec built."""
        output = self.network(observation)
        target = self.spec.target(output.action)
        return PolicyDecision(target, output, self.confidence(output, target))

    def confidence(self, output: PolicyOutput, target: int) -> float:
        """How sure the policy is of its side, in ``[0.5, 1]`` for a position (heuristic, not calibrated).

        Continuous policies: ``0.5 + |action| / 2``. Categorical: the softmax mass of the actions on
        the chosen side. Quantile networks: the share of the chosen action's return quantiles above 0.
        """
        direction = int(np.sign(target))
        if output.probabilities is not None:
            offsets = np.arange(len(output.probabilities)) - self.spec.max_position
            return float(output.probabilities[np.sign(offsets) == direction].sum())
        if output.quantiles is not None:
            chosen = output.quantiles[:, target + self.spec.max_position]
            share = float((chosen > 0).mean())
            return share if direction >= 0 else 1.0 - share
        return 0.5 + 0.5 * min(1.0, abs(float(output.action)))


class PolicyRunner:
    """One policy on one root: position tracking and one decision per bar."""

    def __init__(self, policy: LoadedPolicy) -> None:
        self.policy = policy
        self.tracker = PositionTracker(policy.spec.flat_minutes_before_close)
        self._last: tuple[int, PolicyDecision] | None = None

    def step(self, ts_ns: int, features: Features, regimes: Regimes, position: int | None = None) -> PolicyDecision:
        """Decide at bar ``ts_ns``; ``position`` overrides the tracked one (the engine's actual position)."""
        if self._last is not None and self._last[0] == ts_ns:
            return self._last[1]
        held = self.tracker.held(ts_ns) if position is None else position
        decision = self.policy.decide(features, regimes, held, ts_ns)
        self.tracker.apply(ts_ns, decision.target)
        self._last = (ts_ns, decision)
        return decision


# -- ensemble --------------------------------------------------------------------------------------


class EnsembleModel:
    """A registered ensemble: its members, trade-probability config and out-of-sample reward history."""

    def __init__(
        self,
        members: list[LoadedPolicy],
        config: TradeProbabilityConfig,
        max_position: int,
        seed_rewards: FloatArray | None,
        manifest: dict[str, Any],
    ) -> None:
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        for member in members:
            if member.spec.max_position != max_position:
                raise ConfigError(
                    f"{member.label} trades up to {member.spec.max_position} contracts, the ensemble {max_position}",
                )
        self.members = members
        self.config = config
        self.max_position = max_position
        self.seed_rewards = seed_rewards
        self.manifest = manifest
        self.label = f"{manifest.get('market', '')}/ensemble/v{int(manifest.get('version', 0)):04d}"
        # members with the same observation spec (same features, statistics, position scale) share
        # one observation per bar: it is built once, not once per member
        keys: dict[str, int] = {}
        self.spec_groups = [keys.setdefault(m.spec.to_json(), len(keys)) for m in members]
        self.flat_minutes_before_close = members[0].spec.flat_minutes_before_close
        quantile = [i for i, m in enumerate(members) if m.network.kind == "quantile"]
        self.quantile_member = quantile[0] if quantile else None

    @classmethod
    def load(cls, folder: Path) -> "EnsembleModel":
        """Load an ensemble version; members are resolved against the registry root it lives in."""
        manifest = _read_manifest(folder)
        if manifest.get("algo") != "ensemble":
            raise ConfigError(f"{folder}: not an ensemble (algo {manifest.get('algo')!r})")
        registry_root = folder.parents[2]
        members = [LoadedPolicy.load(registry_root / m["path"]) for m in manifest["members"]]
        config = TradeProbabilityConfig.model_validate(manifest["trade_probability"])
        rewards_path = folder / "member_rewards.npz"
        seed = None
        if rewards_path.is_file():
            with np.load(rewards_path, allow_pickle=False) as data:
                seed = np.asarray(data["rewards"], dtype=np.float64)
        return cls(members, config, int(manifest["max_position"]), seed, manifest)

    def new_ensemble(self) -> BayesianEnsemble:
        """A fresh ensemble state, its posterior started from the stored out-of-sample rewards."""
        ensemble = BayesianEnsemble(
            members=[m.algo for m in self.members],
            prior=list(self.manifest["prior_weights"]),
            max_position=self.max_position,
            entry_threshold=self.config.entry_threshold,
            posterior=self.config.posterior,
            cvar_alpha=self.config.cvar_alpha,
        )
        if self.seed_rewards is not None and self.seed_rewards.size:
            ensemble.seed_history(self.seed_rewards)
        return ensemble


class EnsembleRunner:
    """The ensemble on one root: member decisions, vote, posterior update, one decision per bar.

    At each bar the outcome of the previous one is booked first: every member is paid its previous
    target times the close-to-close move (``member_reward``; nothing across a roll or a new trading
    day), which updates the posterior; then the members decide with the ensemble's position and the
    ensemble votes. ``ensemble_weights`` are logged every ``log_weights_every_bars`` decisions and
    kept in ``weight_log``.
    """

    def __init__(self, model: EnsembleModel, log_weights_every_bars: int | None = None) -> None:
        self.model = model
        self.log_every = log_weights_every_bars or model.config.log_weights_every_bars
        self.ensemble = model.new_ensemble()
        self.tracker = PositionTracker(model.flat_minutes_before_close)
        self.weight_log: list[tuple[int, tuple[float, ...]]] = []
        self._prev_targets: list[int] | None = None
        self._prev_target = 0
        self._prev_close = math.nan
        self._prev_contract = ""
        self._prev_day: object = None
        self._last: tuple[int, EnsembleDecision] | None = None
        self._decisions = 0

    def _book_outcome(self, ts_ns: int, contract: str, close: float) -> None:
        day = bar_session(ts_ns)[0]
        same = contract == self._prev_contract and day == self._prev_day and math.isfinite(self._prev_close)
        if self._prev_targets is not None and same and math.isfinite(close):
            change = close - self._prev_close
            max_position = self.model.max_position
            rewards = np.array([member_reward(t, change, max_position) for t in self._prev_targets])
            self.ensemble.record(rewards, member_reward(self._prev_target, change, max_position))
        self._prev_close, self._prev_contract, self._prev_day = close, contract, day

    def step(
        self,
        ts_ns: int,
        contract: str,
        close: float,
        features: Features,
        regimes: Regimes,
        position: int | None = None,
    ) -> EnsembleDecision:
        """Decide at bar ``ts_ns`` of ``contract`` closing at ``close``."""
        if self._last is not None and self._last[0] == ts_ns:
            return self._last[1]
        self._book_outcome(ts_ns, contract, close)
        held = self.tracker.held(ts_ns) if position is None else position
        observations: dict[int, npt.NDArray[np.float32]] = {}
        decisions = []
        for member, group in zip(self.model.members, self.model.spec_groups, strict=True):
            obs = observations.get(group)
            if obs is None:
                obs = observations[group] = member.observation(features, regimes, held, ts_ns)
            decisions.append(member.decide_on(obs))
        quantiles: FloatArray | None = None
        if self.model.quantile_member is not None:
            raw = decisions[self.model.quantile_member].output.quantiles
            quantiles = None if raw is None else raw.astype(np.float64)
        decision = self.ensemble.decide([d.target for d in decisions], quantiles)
        self._prev_targets = [d.target for d in decisions]
        self._prev_target = self.tracker.apply(ts_ns, decision.target)
        self._last = (ts_ns, decision)
        if self._decisions % self.log_every == 0:
            self.weight_log.append((ts_ns, decision.weights))
            weights = " ".join(f"{m}={w:.4f}" for m, w in zip(self.ensemble.members, decision.weights, strict=True))
            log.info("ensemble_weights %s %s %s", self.model.label, ts_ns, weights)
        self._decisions += 1
        return decision
