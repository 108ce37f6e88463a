"""Signal providers: the same observation as the environment, one decision per bar, TradeSignals, loading."""

import numpy as np
import pytest

from mia_strategies import sessions
from mia_strategies.errors import ConfigError
from mia_strategies.providers.network import DenseLayer
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.policy import LoadedPolicy
from mia_strategies.providers.policy import NamedRow
from mia_strategies.providers.policy import PolicyRunner
from mia_strategies.providers.signal import RlEnsembleParams
from mia_strategies.providers.signal import RlEnsembleProvider
from mia_strategies.providers.signal import RlPolicyParams
from mia_strategies.providers.signal import RlPolicyProvider
from mia_strategies.providers.signal import version_path
from mia_strategies.signals import PROVIDER_KINDS
from mia_strategies.signals import SignalContext
from mia_strategies.signals import TradeSignal
from research.env import CostModel
from research.env import TradingEnv
from research.env import run_policy
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.ensemble import build_ensemble
from research.rl.evaluate import network_policy
from research.rl.registry import ModelRegistry
from research.rl.synthetic import synthetic_market


ENV = TradingEnvConfig(reward=RewardSettings(method="pnl"))


@pytest.fixture(scope="module")
def market(markets):
    return synthetic_market("ES", markets, days=2, bar_minutes=15, seed=12)


def _mlp(spec: ObservationSpec, kind: str, n_out: int, seed: int, n_quantiles: int = 0) -> PolicyNetwork:
    rng = np.random.default_rng(seed)
    hidden = 8
    first = DenseLayer(
        rng.normal(size=(spec.size, hidden)).astype(np.float32), rng.normal(size=hidden).astype(np.float32), "relu"
    )
    width = n_out * n_quantiles if kind == "quantile" else n_out
    last = DenseLayer(
        rng.normal(size=(hidden, width)).astype(np.float32), rng.normal(size=width).astype(np.float32), "identity"
    )
    return PolicyNetwork(kind, [first, last], n_out, n_quantiles)


def _spec(market, discrete=False):
    return ObservationSpec.fit(
        market.features, market.feature_names, market.regime_labels, max_position=2, discrete=discrete
    )


@pytest.fixture(scope="module")
def registry(market, tmp_path_factory):
    registry = ModelRegistry(tmp_path_factory.mktemp("prov") / "models")
    for algo, kind, discrete, n_out, nq in (
        ("sac", "squashed", False, 1, 0),
        ("ppo", "categorical", True, 5, 0),
        ("ddpg", "deterministic", False, 1, 0),
        ("qrdqn", "quantile", True, 5, 51),
    ):
        spec = _spec(market, discrete)
        network = _mlp(spec, kind, n_out, seed=len(algo), n_quantiles=nq)
        manifest = {"observation": spec.to_dict(), "data": {"train": {"end": "2025-11-01T00:00:00+00:00"}}}
        registry.register("ES", algo, manifest, lambda folder, net=network: net.save(folder / "policy.npz"))
    return registry


def _context(market, i: int, position: int | None = None) -> SignalContext:
    ctx = SignalContext(
        root="ES",
        instrument_id=f"{market.contract[i]}.GLBX",
        ts_ns=int(market.ts_ns[i]),
        close=market.close[max(0, i - 5) : i + 1],
        high=market.close[max(0, i - 5) : i + 1] + 0.5,
        low=market.close[max(0, i - 5) : i + 1] - 0.5,
        atr=2.0,
        regime="trend",
        regime_probabilities=dict(zip(market.regime_labels, market.regime_probs[i].tolist(), strict=True)),
        features=dict(zip(market.feature_names, market.features[i].tolist(), strict=True)),
    )
    if position is not None:
        object.__setattr__(ctx, "position", position)  # a strategy that reports its position
    return ctx


def test_network_round_trips_through_npz(market, tmp_path):
    spec = _spec(market, discrete=True)
    network = _mlp(spec, "quantile", 5, seed=1, n_quantiles=51)
    network.save(tmp_path / "p.npz")
    loaded = PolicyNetwork.load(tmp_path / "p.npz")
    obs = spec.build(market.features[3], market.regime_probs[3], 1, int(market.ts_ns[3]))
    np.testing.assert_array_equal(network(obs).quantiles, loaded(obs).quantiles)
    assert loaded(obs).action == network(obs).action and loaded.discrete
    with pytest.raises(ValueError, match="outputs"):
        PolicyNetwork("quantile", network.layers, 4, 51)


def test_provider_builds_the_environment_observation_from_names(registry, market):
    policy = LoadedPolicy.load(version_path(registry.root, "ES", "sac", None))
    env = TradingEnv(market, policy.spec, CostModel.from_spec(_es_spec(), 0.1), ENV, sequential=True)
    obs, _ = env.reset(options={"segment": 0})
    by_name = policy.observation(
        _context(market, 0).features, _context(market, 0).regime_probabilities, 0, int(market.ts_ns[0])
    )
    by_row = policy.observation(
        NamedRow(market.feature_names, market.features[0]),
        NamedRow(market.regime_labels, market.regime_probs[0]),
        0,
        int(market.ts_ns[0]),
    )
    np.testing.assert_array_equal(obs, by_name)
    np.testing.assert_array_equal(obs, by_row)
    # a feature the engine does not publish reads as missing (0 after normalization), never as a crash
    partial = dict(_context(market, 0).features)
    partial.pop(market.feature_names[1])
    assert policy.observation(partial, None, 0, int(market.ts_ns[0]))[1] == 0.0


def _es_spec():
    from mia_strategies.config import load_markets

    return load_markets().root("ES")


def test_provider_decisions_over_a_replay_equal_the_policy_in_the_environment(registry, market):
    for algo in ("sac", "ppo", "ddpg", "qrdqn"):
        policy = LoadedPolicy.load(version_path(registry.root, "ES", algo, None))
        env = TradingEnv(market, policy.spec, CostModel.from_spec(_es_spec(), 0.1), ENV, sequential=True)
        run = run_policy(env, network_policy(policy.network))
        provider = RlPolicyProvider("rl", RlPolicyParams(registry=registry.root, algo=algo))
        steps = {r.ts_ns: r for r in run.records}
        checked = 0
        for i in range(len(market)):
            if int(market.ts_ns[i]) not in steps:
                continue  # the last bar of a session is not a decision in the environment
            decision = provider.decide(_context(market, i))
            assert decision.target == steps[int(market.ts_ns[i])].target, (algo, i)
            checked += 1
        assert checked == len(run.records)


def test_one_decision_per_bar_and_session_rules(registry, market):
    policy = LoadedPolicy.load(version_path(registry.root, "ES", "sac", None))
    runner = PolicyRunner(policy)
    row = NamedRow(market.feature_names, market.features[4])
    first = runner.step(int(market.ts_ns[4]), row, None)
    position = runner.tracker.position
    assert runner.step(int(market.ts_ns[4]), NamedRow(market.feature_names, market.features[9]), None) is first
    assert runner.tracker.position == position
    next_day = next(
        i
        for i in range(len(market))
        if sessions.trading_day(int(market.ts_ns[i])) != sessions.trading_day(int(market.ts_ns[0]))
    )
    assert runner.tracker.held(int(market.ts_ns[next_day])) == 0
    close = sessions.next_close_ns(int(market.ts_ns[0]))
    assert runner.tracker.apply(close - 60_000_000_000, 2) == 0  # inside the flat window


def test_signals_carry_direction_probability_quantiles_and_risk(registry, market):
    provider = RlPolicyProvider("qr", RlPolicyParams(registry=registry.root, algo="qrdqn"))
    signals = [provider.signal(_context(market, i)) for i in range(20, 60)]
    made = [s for s in signals if s is not None]
    assert made, "the random quantile network should want a position somewhere"
    for signal in made:
        assert isinstance(signal, TradeSignal) and signal.direction in (-1, 1)
        assert 0.0 <= signal.probability <= 1.0 and signal.horizon_bars == 1
        levels = [q for q, _ in signal.expected_return_quantiles]
        values = [v for _, v in signal.expected_return_quantiles]
        assert levels == [0.1, 0.5, 0.9] and values == sorted(values)
    sac = RlPolicyProvider("sac", RlPolicyParams(registry=registry.root, algo="sac"))
    for i in range(20, 40):
        signal = sac.signal(_context(market, i, position=0))
        decision = sac.last_decision
        assert (signal is None) == (decision.target == 0)
        if signal is not None:
            assert signal.probability == pytest.approx(0.5 + 0.5 * min(1.0, abs(decision.output.action)))


def test_ensemble_provider_votes_once_per_bar(registry, market):
    from mia_strategies.providers.config import PosteriorSettings
    from mia_strategies.providers.config import TradeProbabilityConfig

    config = TradeProbabilityConfig(
        members=["sac", "ppo", "ddpg", "qrdqn"],
        prior_weights=[0.4, 0.3, 0.2, 0.1],
        posterior=PosteriorSettings(window_bars=50, min_bars=5),
    )
    build_ensemble(registry, "ES", config, market.take(slice(0, 40)))
    provider = RlEnsembleProvider("ens", RlEnsembleParams(registry=registry.root))
    for i in range(40, 80):
        signal = provider.signal(_context(market, i))
        decision = provider.last_decision
        assert provider.decide(_context(market, i)) is decision  # asked twice, decided once
        if signal is not None:
            assert signal.probability == pytest.approx(decision.trade_probability)
            assert decision.trade_probability >= 0.65
        assert len(decision.quantiles) == 51 and np.isclose(sum(decision.weights), 1.0)
    assert provider.runner("ES").ensemble.history_length > 39  # seed history plus one booked outcome per bar


def test_provider_kinds_are_registered_and_missing_models_are_one_line_errors(tmp_path):
    assert "rl_policy" in PROVIDER_KINDS and "rl_ensemble" in PROVIDER_KINDS
    provider = PROVIDER_KINDS["rl_policy"]("x", {"kind": "rl_policy", "registry": str(tmp_path), "algo": "ppo"})
    assert isinstance(provider, RlPolicyProvider)
    with pytest.raises(ConfigError, match="mia train ppo --market ES"):
        provider.runner("ES")
    with pytest.raises(ConfigError, match="mia ensemble build"):
        version_path(tmp_path, "ES", "ensemble", None)
