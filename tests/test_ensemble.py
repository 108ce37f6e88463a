"""The Bayesian ensemble: posterior by hand, weighted vote, CVaR, registry round trip, logged weights."""

import math

import numpy as np
import pytest

from mia_strategies.errors import ConfigError
from mia_strategies.providers.config import PosteriorSettings
from mia_strategies.providers.config import TradeProbabilityConfig
from mia_strategies.providers.ensemble import BayesianEnsemble
from mia_strategies.providers.ensemble import cvar_from_quantiles
from mia_strategies.providers.ensemble import member_reward
from mia_strategies.providers.ensemble import posterior_weights
from mia_strategies.providers.ensemble import weighted_vote
from mia_strategies.providers.network import DenseLayer
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.policy import EnsembleModel
from mia_strategies.providers.policy import EnsembleRunner
from mia_strategies.providers.policy import NamedRow
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.ensemble import build_ensemble
from research.rl.ensemble import member_targets
from research.rl.ensemble import reward_matrix
from research.rl.ensemble import run_ensemble
from research.rl.registry import ModelRegistry
from research.rl.synthetic import synthetic_market
from research.rl.train import costs_for


def test_posterior_matches_hand_computation():
    rewards = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [-1.0, -1.0, -1.0, -1.0]])
    settings = PosteriorSettings(window_bars=10, temperature=0.5, min_bars=2)
    # pooled sd of the 12 rewards: sqrt(8/12) = 0.816497; z = sum / (sd * sqrt(4)) = +-2.449490, 0
    # w ∝ prior * exp(0.5 z) = [0.4 * 3.403298, 0.3, 0.3 * 0.293833] = [1.361319, 0.3, 0.088150]
    expected = np.array([1.361319, 0.3, 0.088150]) / 1.749469
    got = posterior_weights(np.array([0.4, 0.3, 0.3]), rewards, settings)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got, [0.778133, 0.171481, 0.050387], atol=1e-5)


def test_posterior_keeps_the_prior_without_evidence():
    prior = np.array([0.4, 0.3, 0.3])
    settings = PosteriorSettings(window_bars=10, temperature=1.0, min_bars=5)
    np.testing.assert_allclose(posterior_weights(prior, np.ones((3, 4)), settings), prior)  # too few bars
    np.testing.assert_allclose(posterior_weights(prior, np.ones((3, 8)), settings), prior)  # no spread
    zero = PosteriorSettings(window_bars=10, temperature=0.0, min_bars=2)
    np.testing.assert_allclose(posterior_weights(prior, np.arange(12.0).reshape(3, 4), zero), prior)


def test_weighted_vote_and_entry_threshold():
    ensemble = BayesianEnsemble(["sac", "ppo", "ddpg"], [0.4, 0.3, 0.3], 2, 0.65, PosteriorSettings(), 0.95)
    assert weighted_vote(np.array([1, 1, -1]), np.array([0.4, 0.3, 0.3])) == pytest.approx((0.7, 0.3))
    decision = ensemble.decide([1, 2, -1])
    assert (decision.target, decision.direction) == (2, 1) and decision.trade_probability == pytest.approx(0.7)
    decision = ensemble.decide([1, -1, 0])
    assert (decision.target, decision.direction) == (0, 0) and decision.trade_probability == pytest.approx(0.4)
    decision = ensemble.decide([0, -1, -2])
    assert decision.target == 0 and decision.p_short == pytest.approx(0.6)  # below 0.65: stay flat
    at_threshold = BayesianEnsemble(["a", "b"], [0.65, 0.35], 1, 0.65, PosteriorSettings(), 0.95)
    assert at_threshold.decide([-1, 0]).target == -1


def test_cvar_from_quantiles_and_decision_quantiles():
    assert cvar_from_quantiles(np.arange(1.0, 21.0), 0.95) == pytest.approx(-1.0)  # worst 1 of 20
    q = np.linspace(-5, 5, 51)
    assert cvar_from_quantiles(q, 0.95) == pytest.approx(-q[:3].mean())  # ceil(0.05 * 51) = 3
    ensemble = BayesianEnsemble(["qrdqn"], [1.0], 1, 0.65, PosteriorSettings(), 0.95)
    quantiles = np.column_stack([q - 1, np.zeros(51), q + 1])  # actions: short, flat, long
    decision = ensemble.decide([1], quantiles)
    assert decision.quantiles == tuple(q + 1)
    assert decision.cvar == pytest.approx(-(q[:3] + 1).mean())


def test_recorded_rewards_roll_through_the_window():
    settings = PosteriorSettings(window_bars=5, temperature=1.0, min_bars=2)
    ensemble = BayesianEnsemble(["a", "b"], [0.5, 0.5], 1, 0.65, settings, 0.95)
    rng = np.random.default_rng(0)
    history = rng.normal(size=(2, 12))
    for t in range(12):
        ensemble.record(history[:, t], 0.0)
    np.testing.assert_array_equal(ensemble.history(), history[:, -5:])
    np.testing.assert_allclose(ensemble.weights, posterior_weights(np.array([0.5, 0.5]), history[:, -5:], settings))


# -- members from the registry --------------------------------------------------------------------


def _linear(spec: ObservationSpec, weight: float, kind: str = "gaussian") -> PolicyNetwork:
    w = np.zeros((spec.size, 1), dtype=np.float32)
    w[0, 0] = weight  # acts on the first feature only
    return PolicyNetwork(kind, [DenseLayer(w, np.zeros(1, dtype=np.float32), "identity")], 1)


def _quantile(spec: ObservationSpec) -> PolicyNetwork:
    # 51 quantiles x 3 actions; returns rise with the first feature for "long", fall for "short"
    w = np.zeros((spec.size, 51 * 3), dtype=np.float32)
    levels = np.linspace(-1, 1, 51, dtype=np.float32)
    bias = np.tile(levels[:, None], (1, 3)).reshape(-1)
    for q in range(51):
        w[0, q * 3 + 2] = 1.0
        w[0, q * 3 + 0] = -1.0
    return PolicyNetwork("quantile", [DenseLayer(w, bias.astype(np.float32), "identity")], 3, 51)


def _register(
    registry: ModelRegistry, algo: str, network: PolicyNetwork, spec: ObservationSpec, train_end: str
) -> None:
    def write(folder):
        network.save(folder / "policy.npz")

    manifest = {
        "observation": spec.to_dict(),
        "data": {"train": {"start": "2025-12-01T00:00:00+00:00", "end": train_end}},
    }
    registry.register("ES", algo, manifest, write)


@pytest.fixture(scope="module")
def market(markets):
    return synthetic_market("ES", markets, days=3, bar_minutes=15, seed=8)


@pytest.fixture(scope="module")
def registry(market, tmp_path_factory) -> ModelRegistry:
    registry = ModelRegistry(tmp_path_factory.mktemp("reg") / "models")
    spec = ObservationSpec.fit(market.features, market.feature_names, market.regime_labels, max_position=1)
    discrete = ObservationSpec.fit(
        market.features, market.feature_names, market.regime_labels, max_position=1, discrete=True
    )
    end = "2025-12-01T00:00:00+00:00"
    _register(registry, "sac", _linear(spec, 10.0, "squashed"), spec, end)  # follows the signal
    _register(registry, "ppo", _linear(spec, -10.0), spec, end)  # fades it
    _register(registry, "ddpg", _linear(spec, 0.0, "deterministic"), spec, end)  # always flat
    _register(registry, "qrdqn", _quantile(discrete), discrete, end)
    return registry


def test_built_ensemble_seeds_its_posterior_on_out_of_sample_rewards(registry, market):
    config = TradeProbabilityConfig(posterior=PosteriorSettings(window_bars=400, temperature=1.0, min_bars=10))
    version = build_ensemble(registry, "ES", config, market)
    model = EnsembleModel.load(version.path)
    assert [m.algo for m in model.members] == ["sac", "ppo", "ddpg"]
    targets = np.stack([member_targets(m, market) for m in model.members])
    rewards = reward_matrix(targets, market, 1)
    np.testing.assert_array_equal(model.seed_rewards, rewards)
    # member rewards by hand: previous target x close-to-close move, nothing across days
    k = 5
    assert rewards[0, k] == pytest.approx(member_reward(int(targets[0, k]), market.close[k + 1] - market.close[k], 1))
    expected = posterior_weights(np.array([0.4, 0.3, 0.3]), rewards[:, -400:], config.posterior)
    np.testing.assert_allclose(list(version.manifest["posterior_weights"].values()), expected)
    assert expected[0] > 0.4 > expected[1]  # the signal follower earned, the fader lost


def test_ensemble_refuses_members_trained_on_its_seeding_window(market, tmp_path):
    late = ModelRegistry(tmp_path / "models")
    spec = ObservationSpec.fit(market.features, market.feature_names, market.regime_labels, max_position=1)
    for algo, kind in (("sac", "squashed"), ("ppo", "gaussian"), ("ddpg", "deterministic")):
        _register(late, algo, _linear(spec, 1.0, kind), spec, "2030-01-01T00:00:00+00:00")
    with pytest.raises(ConfigError, match="later window"):
        build_ensemble(late, "ES", TradeProbabilityConfig(), market)


def test_ensemble_trades_in_the_environment_and_logs_its_weights(registry, market, markets):
    config = TradeProbabilityConfig(
        members=["sac", "ppo", "ddpg", "qrdqn"],
        prior_weights=[0.4, 0.3, 0.2, 0.1],
        posterior=PosteriorSettings(window_bars=100, temperature=2.0, min_bars=10),
    )
    model = EnsembleModel.load(build_ensemble(registry, "ES", config, market.take(slice(0, 90))).path)
    env_config = TradingEnvConfig(reward=RewardSettings(method="pnl"))
    summary, run, weights = run_ensemble(
        model, market.take(slice(90, None)), costs_for("ES", markets, env_config), env_config
    )
    assert summary.bars == len(run.records) > 0 and len(weights) >= summary.bars
    assert list(weights.columns) == ["weight_sac", "weight_ppo", "weight_ddpg", "weight_qrdqn"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert weights["weight_sac"].iloc[-1] > weights["weight_ppo"].iloc[-1]
    # deterministic: the same ensemble on the same data decides the same
    again = run_ensemble(model, market.take(slice(90, None)), costs_for("ES", markets, env_config), env_config)
    np.testing.assert_array_equal(run.positions, again[1].positions)
    # the QR-DQN member supplies the quantiles and the CVaR
    runner = EnsembleRunner(model)
    i = 100
    decision = runner.step(
        int(market.ts_ns[i]),
        str(market.contract[i]),
        float(market.close[i]),
        NamedRow(market.feature_names, market.features[i]),
        NamedRow(market.regime_labels, market.regime_probs[i]),
    )
    assert len(decision.quantiles) == 51 and math.isfinite(decision.cvar)
    assert decision.cvar == pytest.approx(cvar_from_quantiles(np.array(decision.quantiles), 0.95))
