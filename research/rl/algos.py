"""The five algorithms behind ``mia train ALGO``, built from ``model_params.yaml`` and ``algo_config.yaml``.

======================  ====================  ================  ==================================
name                    implementation        action space      policy network export kind
======================  ====================  ================  ==================================
``sac``                 stable-baselines3     continuous        squashed
``ppo``                 stable-baselines3     either            gaussian / categorical
``ddpg``                stable-baselines3     continuous        deterministic
``qrdqn``               sb3-contrib (51 q.)   discrete          quantile
``ppo_lagrangian``      ``PPOLagrangian``     either            gaussian / categorical
======================  ====================  ================  ==================================

Every model is seeded (``seed``) and runs on the CPU; ``torch.set_num_threads`` is set by the caller
so runs are reproducible.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import Env
from sb3_contrib import QRDQN
from stable_baselines3 import DDPG
from stable_baselines3 import PPO
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from research.rl.config import DdpgParams
from research.rl.config import LagrangianSettings
from research.rl.config import PpoParams
from research.rl.config import QrdqnParams
from research.rl.config import SacParams
from research.rl.config import _Params
from research.rl.ppo_lagrangian import PPOLagrangian


ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {
    "sac": SAC,
    "ppo": PPO,
    "ddpg": DDPG,
    "qrdqn": QRDQN,
    "ppo_lagrangian": PPOLagrangian,
}

_ACTIVATIONS: dict[str, type[th.nn.Module]] = {"relu": th.nn.ReLU, "tanh": th.nn.Tanh}


def _policy_kwargs(params: _Params) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"net_arch": list(params.net_arch)}
    if params.activation is not None:
        kwargs["activation_fn"] = _ACTIVATIONS[params.activation]
    return kwargs


def build_model(
    algo: str,
    env: Env[Any, Any] | VecEnv,
    params: _Params,
    seed: int,
    lagrangian: LagrangianSettings | None = None,
) -> BaseAlgorithm:
    """A fresh, seeded model of ``algo`` on ``env`` with ``params``."""
    common: dict[str, Any] = {
        "policy": "MlpPolicy",
        "env": env,
        "learning_rate": params.learning_rate,
        "gamma": params.gamma,
        "policy_kwargs": _policy_kwargs(params),
        "seed": seed,
        "device": "cpu",
        "verbose": 0,
    }
    if algo == "sac":
        assert isinstance(params, SacParams)
        return SAC(
            buffer_size=params.buffer_size,
            learning_starts=params.learning_starts,
            batch_size=params.batch_size,
            tau=params.tau,
            train_freq=params.train_freq,
            gradient_steps=params.gradient_steps,
            ent_coef=params.ent_coef,
            **common,
        )
    if algo == "ddpg":
        assert isinstance(params, DdpgParams)
        n = int(np.prod(env.action_space.shape or (1,)))
        sigma = params.action_noise_sigma
        noise = NormalActionNoise(np.zeros(n), np.full(n, sigma)) if sigma else None
        return DDPG(
            buffer_size=params.buffer_size,
            learning_starts=params.learning_starts,
            batch_size=params.batch_size,
            tau=params.tau,
            train_freq=params.train_freq,
            gradient_steps=params.gradient_steps,
            action_noise=noise,
            **common,
        )
    if algo == "qrdqn":
        assert isinstance(params, QrdqnParams)
        common["policy_kwargs"]["n_quantiles"] = params.n_quantiles
        return QRDQN(
            buffer_size=params.buffer_size,
            learning_starts=params.learning_starts,
            batch_size=params.batch_size,
            train_freq=params.train_freq,
            gradient_steps=params.gradient_steps,
            target_update_interval=params.target_update_interval,
            exploration_fraction=params.exploration_fraction,
            exploration_final_eps=params.exploration_final_eps,
            **common,
        )
    if algo in ("ppo", "ppo_lagrangian"):
        assert isinstance(params, PpoParams)
        ppo_kwargs: dict[str, Any] = {
            "n_steps": params.n_steps,
            "batch_size": params.batch_size,
            "n_epochs": params.n_epochs,
            "gae_lambda": params.gae_lambda,
            "clip_range": params.clip_range,
            "ent_coef": params.ent_coef,
            "vf_coef": params.vf_coef,
            "max_grad_norm": params.max_grad_norm,
            **common,
        }
        if algo == "ppo":
            return PPO(**ppo_kwargs)
        settings = lagrangian or LagrangianSettings()
        return PPOLagrangian(
            cvar_alpha=settings.cvar_alpha,
            cvar_limit=settings.cvar_limit,
            lambda_init=settings.lambda_init,
            lambda_lr=settings.lambda_lr,
            lambda_max=settings.lambda_max,
            window_episodes=settings.window_episodes,
            **ppo_kwargs,
        )
    raise ValueError(f"unknown algorithm {algo!r} (known: {', '.join(ALGO_CLASSES)})")


def load_model(algo: str, path: Path, env: Env[Any, Any] | VecEnv | None = None) -> BaseAlgorithm:
    """Load a saved model of ``algo`` (on the CPU), optionally attached to ``env`` to continue training."""
    cls = ALGO_CLASSES[algo]
    return cls.load(str(path), env=env, device="cpu")


def set_learning_rate(model: BaseAlgorithm, learning_rate: float) -> None:
    """Use a constant ``learning_rate`` from now on (fine-tuning with a regime's own rate)."""
    model.learning_rate = learning_rate
    model.lr_schedule = lambda _progress: learning_rate
