"""Training: every algorithm learns a market with a known optimal policy, exports exactly, registers, reproduces."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mia_strategies.providers.ensemble import empirical_cvar
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.policy import LoadedPolicy
from research.env import TradingEnv
from research.env import run_policy
from research.rl.config import AlgoConfig
from research.rl.config import AlgoSettings
from research.rl.config import LagrangianSettings
from research.rl.config import ModelParamsConfig
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.evaluate import evaluation_env
from research.rl.evaluate import network_policy
from research.rl.evaluate import random_policy
from research.rl.evaluate import summarize_run
from research.rl.export import check_export
from research.rl.export import network_actions
from research.rl.export import sb3_actions
from research.rl.registry import ModelRegistry
from research.rl.synthetic import synthetic_market
from research.rl.train import METRIC_COLUMNS
from research.rl.train import costs_for
from research.rl.train import register_result
from research.rl.train import train_policy


ALGOS = ("sac", "ppo", "ddpg", "qrdqn", "ppo_lagrangian")
ENV = TradingEnvConfig(reward=RewardSettings(method="pnl"))
OFF_POLICY = {"net_arch": [32, 32], "learning_rate": 1e-3, "learning_starts": 200, "batch_size": 64, "train_freq": 2}
ON_POLICY = {"net_arch": [32, 32], "learning_rate": 1e-3, "n_steps": 256, "batch_size": 64, "n_epochs": 5}
PARAMS = ModelParamsConfig.model_validate(
    {
        "sac": {"default": OFF_POLICY},
        "ddpg": {"default": OFF_POLICY},
        "qrdqn": {
            "default": {**OFF_POLICY, "train_freq": 4, "target_update_interval": 250, "exploration_fraction": 0.3}
        },
        "ppo": {"default": ON_POLICY, "regimes": {"trend": {"learning_rate": 5e-4}}},
        "ppo_lagrangian": {"default": ON_POLICY},
    },
)
ALGO_CONFIG = AlgoConfig(ppo_lagrangian=LagrangianSettings(cvar_limit=1e6))
STEPS = {"sac": 1500, "ddpg": 1500, "qrdqn": 2000, "ppo": 2048, "ppo_lagrangian": 2048}


@pytest.fixture(scope="module")
def windows(markets):
    torch.set_num_threads(1)
    data = synthetic_market("ES", markets, days=3, bar_minutes=15, seed=21)
    days = data.trading_days()
    last = sorted(set(days))[-1]
    return data.take(np.flatnonzero(days != last)), data.take(np.flatnonzero(days == last))


@pytest.fixture(scope="module")
def trained(windows, markets):
    train, test = windows
    return {
        algo: train_policy(
            algo,
            train,
            test,
            env_config=ENV,
            algo_config=ALGO_CONFIG,
            model_params=PARAMS,
            markets=markets,
            seed=7,
            total_timesteps=STEPS[algo],
        )
        for algo in ALGOS
    }


def _optimal(spec):
    def act(obs):
        side = float(np.sign(obs[0]))  # the first feature predicts the next move
        return int(side + spec.max_position) if spec.discrete else np.array([side], dtype=np.float32)

    return act


@pytest.mark.parametrize("algo", ALGOS)
def test_agent_beats_random_by_a_clear_margin_out_of_sample(trained, windows, markets, algo):
    result = trained[algo]
    _, test = windows
    costs = costs_for("ES", markets, ENV)
    random_run = summarize_run(run_policy(evaluation_env(test, result.spec, costs, ENV), random_policy(result.spec, 0)))
    best = summarize_run(run_policy(evaluation_env(test, result.spec, costs, ENV), _optimal(result.spec)))
    agent = result.evaluation
    assert best.mean_reward > random_run.mean_reward + 0.3  # the market rewards the known policy
    margin = best.mean_reward - random_run.mean_reward
    assert agent.mean_reward > random_run.mean_reward + 0.5 * margin, (
        agent.mean_reward,
        random_run.mean_reward,
        best.mean_reward,
    )


@pytest.mark.parametrize("algo", ALGOS)
def test_exported_network_decides_exactly_like_the_model(trained, windows, algo):
    result = trained[algo]
    _, test = windows
    rng = np.random.default_rng(0)
    obs = np.stack(
        [
            result.spec.build(test.features[i], test.regime_probs[i], int(rng.integers(-1, 2)), int(test.ts_ns[i]))
            for i in range(len(test))
        ],
    )
    check_export(result.model, result.network, obs)
    expected = result.spec.target
    assert [expected(a) for a in sb3_actions(result.model, obs)] == [
        expected(a) for a in network_actions(result.network, obs)
    ]
    if result.network.kind == "quantile":
        assert result.network(obs[0]).quantiles.shape == (51, 3)


def test_metrics_csv_has_losses_reward_cvar_and_quantiles(trained):
    for algo in ALGOS:
        frame = trained[algo].metrics
        assert list(frame.columns) == list(METRIC_COLUMNS)
        assert len(frame) >= 2 and frame["timesteps"].is_monotonic_increasing
        assert frame["reward"].notna().any() and frame["cvar_loss"].notna().any()
    assert trained["sac"].metrics["actor_loss"].notna().any()
    assert trained["ppo"].metrics["policy_loss"].notna().any()
    quantiles = trained["qrdqn"].metrics[["quantile_05", "quantile_50", "quantile_95"]].dropna()
    assert len(quantiles) and (quantiles["quantile_05"] <= quantiles["quantile_95"]).all()
    lag = trained["ppo_lagrangian"].metrics
    updates = lag["updates"].diff().dropna()
    assert (updates > 0).all()  # one row per update
    assert lag["lagrange_multiplier"].notna().all() and lag["cvar_loss"].notna().all()


def test_registry_versions_hold_model_features_config_and_ranges(trained, tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    first = register_result(
        registry, trained["sac"], env_config=ENV, algo_config=ALGO_CONFIG, feature_set="inference", source={}
    )
    second = register_result(
        registry, trained["sac"], env_config=ENV, algo_config=ALGO_CONFIG, feature_set="inference", source={}
    )
    assert (first.version, second.version) == (1, 2)
    assert registry.get("ES", "sac").version == 2 and registry.get("ES", "sac", 1).path == first.path
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["feature_set"]["names"] == list(trained["sac"].spec.feature_names)
    assert manifest["data"]["train"]["end"] < manifest["data"]["eval"]["start"]
    assert manifest["config"]["params"]["net_arch"] == [32, 32]
    assert manifest["metrics"]["eval"]["bars"] == trained["sac"].evaluation.bars
    for name in ("model.zip", "policy.npz", "train_sac_performance.csv", "eval.csv"):
        assert (first.path / name).is_file()
    assert pd.read_csv(first.path / "train_sac_performance.csv").shape[0] == len(trained["sac"].metrics)
    loaded = LoadedPolicy.load(first.path)
    assert loaded.label == "ES/sac/v0001"
    assert loaded.spec.to_dict() == trained["sac"].spec.to_dict()
    assert not list((tmp_path / "models" / "ES" / "sac").glob(".*partial"))


def test_same_seed_trains_the_same_policy(windows, markets, tmp_path):
    train, test = windows

    def once():
        result = train_policy(
            "ppo",
            train,
            test,
            env_config=ENV,
            algo_config=ALGO_CONFIG,
            model_params=PARAMS,
            markets=markets,
            seed=3,
            total_timesteps=512,
        )
        path = tmp_path / f"p{len(list(tmp_path.iterdir()))}.npz"
        result.network.save(path)
        return PolicyNetwork.load(path), result.evaluation

    (a, eval_a), (b, eval_b) = once(), once()
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.weight_t, lb.weight_t)
    assert eval_a == eval_b


def test_ppo_lagrangian_reduces_cvar_against_plain_ppo(markets):
    # holding long pays 0.6 points a bar but crashes (exponential, mean 4 points) 10% of the time;
    # two-bar episodes; limit CVaR95 of the episode loss to 1 point
    kwargs = {"edge": 0.0, "noise": 0.2, "drift": 0.6, "jump_prob": 0.1, "jump_size": 4.0, "n_noise_features": 0}
    train = synthetic_market("ES", markets, days=4, bar_minutes=5, seed=3, **kwargs)
    test = synthetic_market("ES", markets, days=2, bar_minutes=5, seed=33, first_day="2025-12-15", **kwargs)
    env = ENV.model_copy(update={"episode": "bars", "episode_bars": 3})
    params = {"net_arch": [16], "n_steps": 256, "batch_size": 64, "learning_rate": 3e-3, "n_epochs": 5}
    discrete = AlgoSettings(action_space="discrete")
    config = AlgoConfig(
        algorithms={"ppo": discrete, "ppo_lagrangian": discrete},
        ppo_lagrangian=LagrangianSettings(cvar_limit=1.0, lambda_lr=0.3, window_episodes=200),
    )
    model_params = ModelParamsConfig.model_validate({"ppo": {"default": params}, "ppo_lagrangian": {"default": params}})

    def episode_cvar(algo):
        result = train_policy(
            algo,
            train,
            test.take(slice(0, 0)),
            env_config=env,
            algo_config=config,
            model_params=model_params,
            markets=markets,
            seed=1,
            total_timesteps=6000,
        )
        spec = result.spec
        test_env = TradingEnv(test, spec, costs_for("ES", markets, env), env, sequential=True)
        policy = network_policy(result.network)
        returns = []
        for k in range(len(test_env.segments)):
            obs, _ = test_env.reset(options={"segment": k})
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = test_env.step(policy(obs))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return empirical_cvar(np.array(returns), 0.95), result

    ppo_cvar, _ = episode_cvar("ppo")
    lag_cvar, lag = episode_cvar("ppo_lagrangian")
    assert ppo_cvar > 4.0  # plain PPO takes the crash risk for the drift
    assert lag_cvar < 0.5 * ppo_cvar, (lag_cvar, ppo_cvar)
    log = pd.DataFrame(lag.model.constraint_log)
    assert log["lagrange_multiplier"].max() > 0 and (log["lagrange_multiplier"] >= 0).all()
    assert len(log) == math.ceil(6000 / 256)  # one dual step per rollout, before its policy update
