"""Policy networks as plain numpy forward passes: one decision costs microseconds, not a ``predict`` call.

``research.rl.export`` copies the weights of a trained stable-baselines3 policy (SAC, PPO, DDPG,
PPO-Lagrangian, QR-DQN) into a ``PolicyNetwork``; the engine loads it from ``policy.npz`` without
importing torch. The forward pass repeats the policy's own deterministic computation layer by layer
in float32, the dtype the networks were trained in:

=============  ===========================================================  ======================
kind           computation (deterministic)                                  used by
=============  ===========================================================  ======================
gaussian       MLP → action mean, clipped to ``[-1, 1]``                    PPO, PPO-Lagrangian
categorical    MLP → logits → arg max (softmax gives action probabilities)  PPO, PPO-Lagrangian
squashed       MLP → mean → ``tanh``                                        SAC
deterministic  MLP ending in ``tanh``                                       DDPG
quantile       MLP → ``(n_quantiles, n_actions)`` → mean over quantiles     QR-DQN (51 quantiles)
               → arg max
=============  ===========================================================  ======================
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt


Float32Array = npt.NDArray[np.float32]
Activation = Literal["relu", "tanh", "identity"]
PolicyKind = Literal["gaussian", "categorical", "squashed", "deterministic", "quantile"]

KINDS: tuple[str, ...] = ("gaussian", "categorical", "squashed", "deterministic", "quantile")
DISCRETE_KINDS = frozenset({"categorical", "quantile"})


@dataclass(frozen=True)
class DenseLayer:
    """``activation(x @ weight.T + bias)``, with the weight stored transposed for a row vector input."""

    weight_t: Float32Array
    bias: Float32Array
    activation: Activation

    def __call__(self, x: Float32Array) -> Float32Array:
        y = x @ self.weight_t
        y += self.bias
        if self.activation == "relu":
            np.maximum(y, 0.0, out=y)
        elif self.activation == "tanh":
            np.tanh(y, out=y)
        return y


@dataclass(frozen=True)
class PolicyOutput:
    """One deterministic decision of a network.

    ``action`` is the value the policy's ``predict(deterministic=True)`` returns: a float in
    ``[-1, 1]`` for continuous kinds, an action index for discrete ones. ``probabilities`` holds the
    softmax of a categorical policy's logits; ``quantiles`` the ``(n_quantiles, n_actions)`` return
    quantiles of a quantile network.
    """

    action: float | int
    probabilities: Float32Array | None = None
    quantiles: Float32Array | None = None


_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_LOW = np.float32(-1.0)
_SPAN = np.float32(2.0)


def _unscale(squashed: Float32Array) -> float:
    """Map ``[-1, 1]`` onto the action space ``[-1, 1]`` in float32 as SB3's ``unscale_action`` does."""
    return float((_LOW + _HALF * (squashed + _ONE) * _SPAN)[0])


class PolicyNetwork:
    """A deterministic policy as a stack of dense layers plus its output head."""

    def __init__(
        self,
        kind: PolicyKind,
        layers: list[DenseLayer],
        n_actions: int = 1,
        n_quantiles: int = 0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown policy kind {kind!r} (known: {', '.join(KINDS)})")
        if not layers:
            raise ValueError("a policy network needs at least one layer")
        if kind == "quantile" and n_quantiles < 1:
            raise ValueError("a quantile network needs n_quantiles >= 1")
        self.kind: PolicyKind = kind
        self.layers = layers
        self.n_actions = n_actions
        self.n_quantiles = n_quantiles
        out_dim = layers[-1].weight_t.shape[1]
        expected = n_actions * n_quantiles if kind == "quantile" else n_actions
        if out_dim != expected:
            raise ValueError(f"{kind} network outputs {out_dim} values, expected {expected}")

    @property
    def discrete(self) -> bool:
        """Whether the network chooses among discrete actions."""
        return self.kind in DISCRETE_KINDS

    @property
    def input_size(self) -> int:
        """Length of the observation the network takes."""
        return int(self.layers[0].weight_t.shape[0])

    def raw(self, observation: Float32Array) -> Float32Array:
        """The last layer's output for one observation (float32)."""
        x = np.asarray(observation, dtype=np.float32)
        for layer in self.layers:
            x = layer(x)
        return x

    def __call__(self, observation: Float32Array) -> PolicyOutput:
        """The deterministic decision for one observation."""
        out = self.raw(observation)
        kind = self.kind
        if kind == "gaussian":
            return PolicyOutput(action=float(np.clip(out[0], -1.0, 1.0)))
        if kind == "squashed":
            return PolicyOutput(action=_unscale(np.tanh(out[:1])))
        if kind == "deterministic":
            return PolicyOutput(action=_unscale(out[:1]))
        if kind == "categorical":
            shifted = np.exp(out - out.max())
            return PolicyOutput(action=int(out.argmax()), probabilities=shifted / shifted.sum())
        quantiles = out.reshape(self.n_quantiles, self.n_actions)
        return PolicyOutput(action=int(quantiles.mean(axis=0).argmax()), quantiles=quantiles)

    # -- PERSISTENCE -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write weights and head to one ``.npz`` file (no pickle)."""
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        for i, layer in enumerate(self.layers):
            arrays[f"w{i}"] = layer.weight_t
            arrays[f"b{i}"] = layer.bias
        meta = {
            "kind": self.kind,
            "activations": [layer.activation for layer in self.layers],
            "n_actions": self.n_actions,
            "n_quantiles": self.n_quantiles,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with path.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> "PolicyNetwork":
        """Read what ``save`` wrote."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            layers = [
                DenseLayer(
                    np.ascontiguousarray(data[f"w{i}"], dtype=np.float32),
                    np.ascontiguousarray(data[f"b{i}"], dtype=np.float32),
                    activation,
                )
                for i, activation in enumerate(meta["activations"])
            ]
        return cls(meta["kind"], layers, int(meta["n_actions"]), int(meta["n_quantiles"]))
