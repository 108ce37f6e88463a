"""PPO-Lagrangian: PPO under the constraint ``CVaR_alpha(episode loss) <= cvar_limit``.

The constrained problem ``max J(pi) s.t. CVaR_alpha(L) <= d`` (``L`` = minus the episode return) is
solved through its Lagrangian ``J(pi) - lambda * (CVaR_alpha(L) - d)`` with the Rockafellar-Uryasev
form ``CVaR_alpha(L) = min_eta eta + E[(L - eta)+] / (1 - alpha)``:

* primal step (the policy): PPO on rewards where the last step of every episode is charged
  ``lambda / (1 - alpha) * max(0, L - eta)``, ``eta`` being the empirical VaR of recent episodes;
* dual step (the multiplier), once per rollout, before the policy update:
  ``lambda <- clip(lambda + lambda_lr * (CVaR - d), 0, lambda_max)``, with CVaR measured on the last
  ``window_episodes`` episode losses. The multiplier grows while the constraint is violated and
  decays back to 0 once it holds.

Every update records ``train/cvar_loss``, ``train/var_loss`` and ``train/lagrange_multiplier`` in
the SB3 logger and appends them to ``constraint_log``. Episode returns are taken from the
``Monitor`` wrapper (raw environment rewards, before any penalty).
"""

import math
from collections import deque
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.utils import obs_as_tensor

from mia_strategies.providers.ensemble import cvar_from_quantiles


class PPOLagrangian(PPO):
    """PPO with a learned Lagrange multiplier enforcing a CVaR limit on episode losses.

    Parameters
    ----------
    cvar_alpha : float, default 0.95
        CVaR level (the mean of the worst ``1 - alpha`` share of episode losses).
    cvar_limit : float, default 20.0
        The largest CVaR allowed, in reward units.
    lambda_init : float, default 0.0
        Initial multiplier.
    lambda_lr : float, default 0.05
        Dual ascent step.
    lambda_max : float, default 100.0
        Upper bound of the multiplier.
    window_episodes : int, default 100
        Recent episodes the CVaR is measured on.
    *args, **kwargs
        Passed to ``stable_baselines3.PPO``.
    """

    def __init__(
        self,
        *args: Any,
        cvar_alpha: float = 0.95,
        cvar_limit: float = 20.0,
        lambda_init: float = 0.0,
        lambda_lr: float = 0.05,
        lambda_max: float = 100.0,
        window_episodes: int = 100,
        **kwargs: Any,
    ) -> None:
        self.cvar_alpha = cvar_alpha
        self.cvar_limit = cvar_limit
        self.lagrange_multiplier = lambda_init
        self.lambda_lr = lambda_lr
        self.lambda_max = lambda_max
        self.window_episodes = window_episodes
        self.var_estimate = 0.0
        self.cvar_estimate = math.nan
        self._episode_losses: deque[float] = deque(maxlen=window_episodes)
        self._episode_ends: list[tuple[int, int, float]] = []
        self.constraint_log: list[dict[str, float]] = []
        super().__init__(*args, **kwargs)

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> bool:
        """Collect one rollout; episode ends are recorded against this rollout's buffer only."""
        self._episode_ends.clear()
        result: bool = super().collect_rollouts(*args, **kwargs)
        return result

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        """Remember where each episode ended in the rollout buffer and its loss."""
        super()._update_info_buffer(infos, dones)
        if dones is None:
            return
        for env_index, (info, done) in enumerate(zip(infos, dones, strict=True)):
            episode = info.get("episode")
            if done and episode is not None:
                loss = -float(episode["r"])
                self._episode_ends.append((self.rollout_buffer.pos, env_index, loss))
                self._episode_losses.append(loss)

    def _dual_step(self) -> None:
        """Estimate VaR and CVaR of recent episode losses and move the multiplier by dual ascent."""
        if len(self._episode_losses) < 2:
            return
        losses = np.sort(np.asarray(self._episode_losses, dtype=np.float64))
        k = max(1, math.ceil((1.0 - self.cvar_alpha) * losses.size - 1e-9))
        self.var_estimate = float(losses[-k])
        self.cvar_estimate = cvar_from_quantiles(-losses, self.cvar_alpha)
        step = self.lambda_lr * (self.cvar_estimate - self.cvar_limit)
        self.lagrange_multiplier = float(min(self.lambda_max, max(0.0, self.lagrange_multiplier + step)))

    def _penalize_rollout(self) -> None:
        """Charge the tail penalty at every episode end of this rollout and recompute advantages."""
        if not self._episode_ends:
            return
        coef = self.lagrange_multiplier / (1.0 - self.cvar_alpha)
        if coef > 0.0:
            rewards = self.rollout_buffer.rewards
            for pos, env_index, loss in self._episode_ends:
                rewards[pos, env_index] -= coef * max(0.0, loss - self.var_estimate)
            with th.no_grad():
                last_values = self.policy.predict_values(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
            dones = np.asarray(self._last_episode_starts)
            self.rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self._episode_ends.clear()

    def train(self) -> None:
        """Dual step on the multiplier, penalty on the rollout, then the usual PPO update."""
        self._dual_step()
        self._penalize_rollout()
        self.logger.record("train/cvar_loss", self.cvar_estimate)
        self.logger.record("train/var_loss", self.var_estimate)
        self.logger.record("train/lagrange_multiplier", self.lagrange_multiplier)
        self.constraint_log.append(
            {
                "timesteps": float(self.num_timesteps),
                "cvar_loss": self.cvar_estimate,
                "var_loss": self.var_estimate,
                "lagrange_multiplier": self.lagrange_multiplier,
                "episodes": float(len(self._episode_losses)),
            },
        )
        super().train()
