"""Online learning (background worker, step cap, rollback) and fine-tuning on one regime."""

import dataclasses
import io
import os
import time

import numpy as np
import pytest
import torch

from mia_strategies.providers.config import TradeProbabilityConfig
from mia_strategies.providers.policy import LoadedPolicy
from mia_strategies.providers.policy import NamedRow
from mia_strategies.providers.policy import PolicyRunner
from research.rl.config import AlgoConfig
from research.rl.config import FineTuneSettings
from research.rl.config import ModelParamsConfig
from research.rl.config import OnlineSettings
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.online import OnlineLearner
from research.rl.online import cap_update
from research.rl.pipeline import Settings
from research.rl.pipeline import fine_tune
from research.rl.pipeline import regime_subset
from research.rl.registry import ModelRegistry
from research.rl.synthetic import synthetic_market
from research.rl.train import register_result
from research.rl.train import train_policy


ENV = TradingEnvConfig(reward=RewardSettings(method="pnl"))
PPO = {"net_arch": [16], "n_steps": 128, "batch_size": 64, "n_epochs": 4, "learning_rate": 1e-3}
PARAMS = ModelParamsConfig.model_validate(
    {"ppo": {"default": PPO, "regimes": {"trend": {"learning_rate": 2e-4, "n_epochs": 2}}}}
)


@pytest.fixture(scope="module")
def base(markets):
    torch.set_num_threads(1)
    data = synthetic_market("ES", markets, days=4, bar_minutes=15, seed=31)
    days = data.trading_days()
    last = sorted(set(days))[-1]
    train, test = data.take(np.flatnonzero(days != last)), data.take(np.flatnonzero(days == last))
    result = train_policy(
        "ppo",
        train,
        test,
        env_config=ENV,
        algo_config=AlgoConfig(),
        model_params=PARAMS,
        markets=markets,
        seed=1,
        total_timesteps=2048,
    )
    return data, result


def _zip(model) -> bytes:
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def test_step_cap_scales_the_update_to_the_limit():
    before = {"w": torch.ones(4), "n": torch.tensor([3])}
    after = {"w": torch.ones(4) * 2.0, "n": torch.tensor([3])}
    capped, step, was_capped = cap_update(before, after, 0.1)
    assert was_capped and step == pytest.approx(0.1)
    assert float(torch.linalg.norm(capped["w"] - before["w"]) / torch.linalg.norm(before["w"])) == pytest.approx(0.1)
    same, small, was = cap_update(before, {"w": torch.ones(4) * 1.01, "n": torch.tensor([3])}, 0.1)
    assert not was and small == pytest.approx(0.01) and torch.equal(same["w"], torch.ones(4) * 1.01)


def _learner(result, markets, settings, executor="process", params=PARAMS):
    policy = LoadedPolicy(result.network, result.spec, {"algo": "ppo", "market": "ES", "version": 1})
    runner = PolicyRunner(policy)
    learner = OnlineLearner(
        runner, _zip(result.model), "ppo", ENV, markets, params, settings, executor=executor, seed=3
    )
    return runner, learner


def _feed(learner, runner, data, rows):
    for i in rows:
        row = NamedRow(data.feature_names, data.features[i])
        regime = NamedRow(data.regime_labels, data.regime_probs[i])
        runner.step(int(data.ts_ns[i]), row, regime)
        learner.record(
            int(data.ts_ns[i]),
            str(data.contract[i]),
            float(data.close[i]),
            row,
            regime,
            float(data.bid[i]),
            float(data.ask[i]),
        )
        learner.poll(int(data.ts_ns[i]))


def test_updates_run_in_a_background_process_with_a_capped_step(base, markets):
    data, result = base
    settings = OnlineSettings(
        update_every_bars=150,
        experience_bars=200,
        validation_bars=60,
        timesteps=256,
        max_step=0.01,
        rollback_tolerance=1e6,
    )
    runner, learner = _learner(result, markets, settings)
    try:
        started = time.perf_counter()
        _feed(learner, runner, data, range(150))
        assert learner.busy  # submitted, not waited for
        assert time.perf_counter() - started < 5.0  # recording and polling never block on training
        update = learner.wait(timeout=240)
    finally:
        learner.close()
    assert update is not None and update.worker_pid != os.getpid()
    assert update.accepted and update.capped and update.step == pytest.approx(0.01)
    assert [e.kind for e in learner.events] == ["submitted", "accepted", "swapped"]
    assert runner.policy.network is update.network and runner.policy.spec is result.spec


def test_a_degrading_update_is_rejected_and_a_bad_swap_rolled_back(base, markets):
    data, result = base
    # the held-out (latest) bars reward following the signal; on the earlier bars it misleads, so
    # learning from them makes the policy worse where it is checked
    misleading = data.take(slice(0, 200))
    features = misleading.features.copy()
    features[:140, 0] *= -1.0
    misleading = dataclasses.replace(misleading, features=features)
    settings = OnlineSettings(
        update_every_bars=200,
        experience_bars=200,
        validation_bars=60,
        timesteps=4096,
        max_step=10.0,
        rollback_tolerance=0.0,
    )
    eager = ModelParamsConfig.model_validate({"ppo": {"default": {**PPO, "learning_rate": 5e-3}}})
    runner, learner = _learner(result, markets, settings, executor="thread", params=eager)
    original = runner.policy
    try:
        _feed(learner, runner, misleading, range(200))
        update = learner.wait(timeout=240)
    finally:
        learner.close()
    assert update is not None and update.live_reward > update.candidate_reward
    assert not update.accepted and runner.policy is original
    assert [e.kind for e in learner.events] == ["submitted", "rejected"]

    # after a swap, a new policy that earns less than the one it replaced on live bars is rolled back
    settings = OnlineSettings(update_every_bars=10_000, experience_bars=100, validation_bars=20, live_check_bars=30)
    runner, learner = _learner(result, markets, settings, executor="thread")
    original, original_zip = runner.policy, learner.model_zip
    fader = _negated(result.network)  # an accepted update that fades the signal the old policy follows
    learner.adopt(fader, b"fader-model", int(data.ts_ns[199]))
    assert runner.policy.network is fader
    _feed(learner, runner, data, range(200, 260))
    rolled = [e for e in learner.events if e.kind == "rolled_back"]
    assert len(rolled) == 1 and rolled[0].detail["new_reward"] < rolled[0].detail["old_reward"]
    assert runner.policy is original and learner.model_zip == original_zip


def _negated(network):
    from mia_strategies.providers.network import DenseLayer
    from mia_strategies.providers.network import PolicyNetwork

    layers = list(network.layers)
    last = layers[-1]
    layers[-1] = DenseLayer(-last.weight_t, -last.bias, last.activation)
    return PolicyNetwork(network.kind, layers, network.n_actions, network.n_quantiles)


def test_fine_tuning_on_one_regime_records_parent_regime_and_overrides(base, markets, tmp_path):
    data, result = base
    registry = ModelRegistry(tmp_path / "models")
    algo = AlgoConfig(fine_tune=FineTuneSettings(total_timesteps=256, recent_days=4, min_bars=20))
    parent = register_result(registry, result, env_config=ENV, algo_config=algo, feature_set="inference", source={})
    settings = Settings(
        env=ENV,
        algo=algo,
        params=PARAMS,
        markets=markets,
        trade_probability=TradeProbabilityConfig(),
    )
    subset = regime_subset(data, "trend", 4)
    labels = np.array(data.regime_labels)[np.argmax(data.regime_probs, axis=1)]
    assert len(subset) == int((labels == "trend").sum())
    assert len(np.unique(subset.run_id)) > 1  # non-contiguous stretches are separate episodes
    tuned, version = fine_tune(parent, "trend", data, settings, registry, source={}, seed=2)
    manifest = version.manifest
    assert manifest["parent"] == "ES/ppo/v0001" and manifest["regime"] == "trend"
    assert manifest["config"]["params"]["learning_rate"] == 2e-4 and manifest["config"]["params"]["n_epochs"] == 2
    assert tuned.spec.to_dict() == result.spec.to_dict()  # the base model's observation spec
    assert version.version == 2


def test_policy_provider_learns_online_when_asked(base, markets, tmp_path, monkeypatch):
    import shutil

    import yaml
    from conftest import REPO

    from mia_strategies.providers.signal import RlPolicyParams
    from mia_strategies.providers.signal import RlPolicyProvider
    from mia_strategies.signals import SignalContext

    data, result = base
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    algo = yaml.safe_load((config / "algo_config.yaml").read_text())
    algo["online"] = {
        "enabled": True,
        "update_every_bars": 60,
        "experience_bars": 60,
        "validation_bars": 20,
        "timesteps": 64,
    }
    (config / "algo_config.yaml").write_text(yaml.safe_dump(algo))
    (config / "model_params.yaml").write_text(yaml.safe_dump({"ppo": {"default": PPO}}))
    monkeypatch.setenv("MIA_CONFIG_DIR", str(config))
    registry = ModelRegistry(tmp_path / "models")
    register_result(registry, result, env_config=ENV, algo_config=AlgoConfig(), feature_set="inference", source={})
    provider = RlPolicyProvider("rl", RlPolicyParams(registry=registry.root, algo="ppo", online=True))
    try:
        for i in range(60):
            provider.decide(
                SignalContext(
                    root="ES",
                    instrument_id=f"{data.contract[i]}.GLBX",
                    ts_ns=int(data.ts_ns[i]),
                    close=data.close[max(0, i - 3) : i + 1],
                    high=data.close[max(0, i - 3) : i + 1],
                    low=data.close[max(0, i - 3) : i + 1],
                    atr=1.0,
                    regime="trend",
                    regime_probabilities={},
                    features=dict(zip(data.feature_names, data.features[i].tolist(), strict=True)),
                ),
            )
        learner = provider._learners["ES"]
        assert [e.kind for e in learner.events] == ["submitted"]
        update = learner.wait(timeout=240)
        assert update is not None and update.worker_pid != os.getpid()
    finally:
        provider.close()
