"""Export a trained stable-baselines3 policy to a numpy ``PolicyNetwork`` with the same decisions.

The export walks the policy's own ``nn.Sequential`` modules (linear layers and their activations) in
the order ``predict`` runs them, so a network with any ``net_arch`` or activation exports exactly.
``check_export`` compares both on a batch of observations: discrete actions must be equal and
continuous actions equal to float32 rounding (``1e-5``), or the export is refused.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DDPG
from stable_baselines3 import PPO
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from mia_strategies.providers.network import Activation
from mia_strategies.providers.network import DenseLayer
from mia_strategies.providers.network import PolicyNetwork


def _dense_layers(*modules: th.nn.Module) -> list[DenseLayer]:
    """Linear layers and the activation following each, from modules applied one after another."""
    flat: list[th.nn.Module] = []
    for module in modules:
        if isinstance(module, th.nn.Sequential):
            flat.extend(module)
        else:
            flat.append(module)
    layers: list[DenseLayer] = []
    for module in flat:
        if isinstance(module, th.nn.Linear):
            weight = module.weight.detach().cpu().numpy().astype(np.float32)
            bias = module.bias.detach().cpu().numpy().astype(np.float32)
            layers.append(DenseLayer(np.ascontiguousarray(weight.T), bias.copy(), "identity"))
            continue
        activation: Activation
        if isinstance(module, th.nn.ReLU):
            activation = "relu"
        elif isinstance(module, th.nn.Tanh):
            activation = "tanh"
        elif isinstance(module, th.nn.Identity | th.nn.Flatten):
            continue
        else:
            raise ValueError(f"cannot export layer {type(module).__name__}: only Linear, ReLU and Tanh are supported")
        if not layers or layers[-1].activation != "identity":
            raise ValueError("an activation must follow a linear layer")
        last = layers[-1]
        layers[-1] = DenseLayer(last.weight_t, last.bias, activation)
    return layers


def export_policy(model: BaseAlgorithm) -> PolicyNetwork:
    """The deterministic policy of ``model`` as a numpy network."""
    policy: Any = model.policy
    if getattr(policy, "normalize_images", False) and not isinstance(model.observation_space, spaces.Box):
        raise ValueError("only flat Box observations can be exported")
    if isinstance(model, QRDQN):
        net = policy.quantile_net
        n_actions = int(model.action_space.n)  # type: ignore[attr-defined]
        return PolicyNetwork("quantile", _dense_layers(net.quantile_net), n_actions, int(net.n_quantiles))
    if isinstance(model, SAC):
        actor = policy.actor
        if actor.use_sde:
            raise ValueError("SAC with gSDE cannot be exported")
        return PolicyNetwork("squashed", _dense_layers(actor.latent_pi, actor.mu), 1)
    if isinstance(model, DDPG):  # DDPG is a TD3 subclass; its actor ends in tanh
        return PolicyNetwork("deterministic", _dense_layers(policy.actor.mu), 1)
    if isinstance(model, PPO):  # PPO and PPOLagrangian
        layers = _dense_layers(policy.mlp_extractor.policy_net, policy.action_net)
        if isinstance(model.action_space, spaces.Discrete):
            return PolicyNetwork("categorical", layers, int(model.action_space.n))
        if policy.squash_output:
            raise ValueError("PPO with squashed (gSDE) outputs cannot be exported")
        return PolicyNetwork("gaussian", layers, 1)
    raise ValueError(f"cannot export a {type(model).__name__} policy")


def sb3_actions(model: BaseAlgorithm, observations: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``model.predict(obs, deterministic=True)`` for every row, one call per row (as the engine would)."""
    out = [float(np.asarray(model.predict(obs, deterministic=True)[0]).reshape(-1)[0]) for obs in observations]
    return np.asarray(out, dtype=np.float64)


def network_actions(network: PolicyNetwork, observations: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The network's deterministic action for every row."""
    return np.asarray([float(network(obs).action) for obs in observations], dtype=np.float64)


def check_export(model: BaseAlgorithm, network: PolicyNetwork, observations: npt.NDArray[np.float32]) -> float:
    """Largest action difference between the model and its export; raise when decisions differ."""
    expected = sb3_actions(model, observations)
    got = network_actions(network, observations)
    if network.discrete:
        if not np.array_equal(expected, got):
            bad = int(np.flatnonzero(expected != got)[0])
            raise ValueError(f"exported policy chooses action {got[bad]} where the model chooses {expected[bad]}")
        return 0.0
    diff = float(np.max(np.abs(expected - got))) if len(got) else 0.0
    if diff > 1e-5:
        raise ValueError(f"exported policy differs from the model by {diff:.3g}")
    return diff
