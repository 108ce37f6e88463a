"""``config/trade_probability_config.yaml``: how the Bayesian ensemble votes and learns its weights.

Validated by ``TradeProbabilityConfig`` (``mia config check config/trade_probability_config.yaml``).
The engine reads it when it loads an ensemble; research reads it when it builds one.
"""

from typing import Annotated

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator


#: Algorithms a model in the registry can be trained with (``mia train ALGO``).
ALGORITHMS = ("sac", "ppo", "ddpg", "qrdqn", "ppo_lagrangian")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PosteriorSettings(_Model):
    """How the members' recent out-of-sample performance turns prior weights into posterior weights.

    ``log w_i = log prior_i + temperature * z_i`` with ``z_i = sum(r_i) / (s * sqrt(n))``: the
    cumulative reward of member ``i`` over the last ``n <= window_bars`` bars in units of its standard
    error (``s`` is the standard deviation of every member's rewards in the window, pooled). A
    tempered (Gibbs) likelihood: ``temperature`` 0 keeps the prior, large values follow the recent
    winner. Below ``min_bars`` observations the prior is kept.
    """

    window_bars: Annotated[int, Field(ge=2, le=1_000_000)] = 390
    temperature: Annotated[float, Field(ge=0, le=100)] = 1.0
    min_bars: Annotated[int, Field(ge=1, le=1_000_000)] = 30

    @model_validator(mode="after")
    def _min_within_window(self) -> "PosteriorSettings":
        if self.min_bars > self.window_bars:
            raise ValueError("min_bars must not exceed window_bars")
        return self


class TradeProbabilityConfig(_Model):
    """The ensemble: members and prior weights, entry threshold, posterior update and CVaR level."""

    entry_threshold: Annotated[float, Field(gt=0.5, le=1.0)] = 0.65
    members: list[str] = ["sac", "ppo", "ddpg"]
    prior_weights: list[Annotated[float, Field(gt=0, le=1000)]] = [0.4, 0.3, 0.3]
    posterior: PosteriorSettings = PosteriorSettings()
    cvar_alpha: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    log_weights_every_bars: Annotated[int, Field(ge=1, le=1_000_000)] = 60

    @model_validator(mode="after")
    def _members_match_weights(self) -> "TradeProbabilityConfig":
        unknown = [m for m in self.members if m not in ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown member {unknown[0]!r}: use {', '.join(ALGORITHMS)}")
        if len(set(self.members)) != len(self.members):
            raise ValueError("members must be distinct")
        if not self.members:
            raise ValueError("list at least one member")
        if len(self.prior_weights) != len(self.members):
            raise ValueError(
                f"prior_weights has {len(self.prior_weights)} values for {len(self.members)} members",
            )
        return self

    def normalized_prior(self) -> list[float]:
        """Prior weights scaled to sum to 1."""
        total = sum(self.prior_weights)
        return [w / total for w in self.prior_weights]
