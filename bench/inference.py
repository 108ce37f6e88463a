"""Per-bar decision latency of the RL ensemble against stable-baselines3 ``predict``; training speed.

    .venv/bin/python bench/inference.py [--repeat 3] [--calls 2000] [--train-steps 2000]

Both sides decide on the same observations in the same run, alternating, one call per bar as the
engine makes them (one thread, CPU):

* ``sb3``: ``model.predict(obs, deterministic=True)`` of every ensemble member (SAC, PPO, DDPG and
  QR-DQN, ``net_arch`` [64, 64] as in ``config/model_params.yaml``);
* ``export``: the members' exported numpy networks (``PolicyNetwork``), the same decisions;
* ``ensemble``: the whole ``EnsembleRunner.step`` of the provider: observation building from named
  features for every member, the four forward passes, the posterior update and the weighted vote.

Then each algorithm trains ``--train-steps`` steps on a synthetic market and its steps per second
are printed. Read the ratios, not the absolute numbers: the machines are shared.
"""

import argparse
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

from mia_strategies.config import load_markets
from mia_strategies.providers.config import PosteriorSettings
from mia_strategies.providers.config import TradeProbabilityConfig
from mia_strategies.providers.policy import EnsembleModel
from mia_strategies.providers.policy import EnsembleRunner
from mia_strategies.providers.policy import NamedRow
from research.rl.config import AlgoConfig
from research.rl.config import AlgoSettings
from research.rl.config import ModelParamsConfig
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.ensemble import build_ensemble
from research.rl.export import check_export
from research.rl.registry import ModelRegistry
from research.rl.synthetic import synthetic_market
from research.rl.train import register_result
from research.rl.train import train_policy


MEMBERS = ("sac", "ppo", "ddpg", "qrdqn")
ALGOS = ("sac", "ppo", "ddpg", "qrdqn", "ppo_lagrangian")


def _params() -> ModelParamsConfig:
    off = {"net_arch": [64, 64], "learning_starts": 200, "batch_size": 64}
    on = {"net_arch": [64, 64], "n_steps": 512, "batch_size": 64, "n_epochs": 5}
    return ModelParamsConfig.model_validate(
        {
            "sac": {"default": off},
            "ddpg": {"default": off},
            "qrdqn": {"default": {**off, "target_update_interval": 500}},
            "ppo": {"default": on},
            "ppo_lagrangian": {"default": on},
        },
    )


def _time_calls(fn, observations) -> float:
    """Median seconds per call over the observations (one call per observation)."""
    started = time.perf_counter()
    for obs in observations:
        fn(obs)
    return (time.perf_counter() - started) / len(observations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--train-steps", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    markets = load_markets()
    data = synthetic_market("ES", markets, days=4, bar_minutes=5, n_noise_features=146, seed=1)  # 147 features
    days = data.trading_days()
    last = sorted(set(days))[-1]
    train, test = data.take(np.flatnonzero(days != last)), data.take(np.flatnonzero(days == last))
    env = TradingEnvConfig(reward=RewardSettings(method="pnl"))
    algo_config = AlgoConfig(algorithms={"qrdqn": AlgoSettings(action_space="discrete")})
    params = _params()

    print(f"training {args.train_steps} steps per algorithm ({len(data.feature_names)} features, one thread)")
    results = {}
    for algo in ALGOS:
        started = time.perf_counter()
        results[algo] = train_policy(
            algo,
            train,
            test.take(slice(0, 0)),  # no evaluation: time the training (and the export check) only
            env_config=env,
            algo_config=algo_config,
            model_params=params,
            markets=markets,
            seed=1,
            total_timesteps=args.train_steps,
        )
        elapsed = time.perf_counter() - started
        print(f"  {algo:15s} {args.train_steps / elapsed:8.0f} steps/s ({elapsed:.1f} s with the export check)")

    with TemporaryDirectory() as tmp:
        registry = ModelRegistry(Path(tmp) / "models")
        for algo in MEMBERS:
            register_result(
                registry, results[algo], env_config=env, algo_config=algo_config, feature_set="bench", source={}
            )
        config = TradeProbabilityConfig(
            members=list(MEMBERS),
            prior_weights=[0.4, 0.3, 0.2, 0.1],
            posterior=PosteriorSettings(window_bars=390, min_bars=30),
        )
        model = EnsembleModel.load(build_ensemble(registry, "ES", config, test.take(slice(0, 100))).path)

        rng = np.random.default_rng(0)
        rows = rng.integers(0, len(test), size=args.calls)
        observations = [
            results["sac"].spec.build(test.features[i], test.regime_probs[i], 0, int(test.ts_ns[i])) for i in rows
        ]
        for algo in MEMBERS:
            check_export(results[algo].model, results[algo].network, np.stack(observations[:200]))
        sb3_models = [results[a].model for a in MEMBERS]
        networks = [results[a].network for a in MEMBERS]

        def sb3_decide(obs):
            for m in sb3_models:
                m.predict(obs, deterministic=True)

        def export_decide(obs):
            for n in networks:
                n(obs)

        names, labels = test.feature_names, test.regime_labels
        runner = EnsembleRunner(model)
        bar = [0]

        def ensemble_decide(_obs):
            i = int(rows[bar[0] % len(rows)])
            bar[0] += 1
            runner.step(
                int(test.ts_ns[0]) + bar[0] * 60_000_000_000,
                "ESH26",
                float(test.close[i]),
                NamedRow(names, test.features[i]),
                NamedRow(labels, test.regime_probs[i]),
            )

        sb3_t, export_t, ensemble_t = [], [], []
        for _ in range(args.repeat):
            sb3_t.append(_time_calls(sb3_decide, observations))
            export_t.append(_time_calls(export_decide, observations))
            ensemble_t.append(_time_calls(ensemble_decide, observations))
        sb3_m, export_m, ens_m = (statistics.median(x) * 1e6 for x in (sb3_t, export_t, ensemble_t))
        print(f"per-bar decision of {len(MEMBERS)} members ({args.calls} calls x {args.repeat}, medians):")
        print(f"  sb3 predict (4 calls)       {sb3_m:9.1f} us   ({sb3_m / len(MEMBERS):.1f} us per member)")
        print(f"  exported numpy (4 passes)   {export_m:9.1f} us   ratio sb3/export {sb3_m / export_m:6.1f}x")
        print(f"  ensemble provider step      {ens_m:9.1f} us   ratio sb3/ensemble {sb3_m / ens_m:6.1f}x")
        print(
            "  runs (us): sb3 "
            + ", ".join(f"{t * 1e6:.0f}" for t in sb3_t)
            + "; export "
            + ", ".join(f"{t * 1e6:.0f}" for t in export_t)
            + "; ensemble "
            + ", ".join(f"{t * 1e6:.0f}" for t in ensemble_t)
        )


if __name__ == "__main__":
    main()
