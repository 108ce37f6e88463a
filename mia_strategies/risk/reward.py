"""Method 5, the adaptive reward: the per-step reward the research environment trains RL policies on.

The raw reward (a step's P&L, usually as a fraction of equity) is scaled by what the market said at
that step: positive news (a signed sentiment such as ``news_sentiment_score`` above 0) makes a gain
count 1.2x (trading with the news is what the policy should learn), a high VIX makes every reward
count 0.9x (a noisy market says less about skill), and the reward is divided by
``1 + max(0, atr_dynamic)`` (``atr_dynamic`` is the z-score of ATR(14) against its recent values), so
a stretch of unusually high volatility does not dominate training just because its numbers are
bigger while normal or quiet markets keep their scale. A pure function: the research environment
and any analysis of live trades compute the same number from the same inputs.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AdaptiveRewardParams:
    """Knobs of the adaptive reward (defaults are the design's values)."""

    positive_news_multiplier: float = 1.2
    positive_news_above: float = 0.0
    high_vix_multiplier: float = 0.9
    high_vix_above: float = 25.0
    atr_dynamic_cap: float = 4.0


@dataclass(frozen=True)
class AdaptiveReward:
    """The scaled reward and each factor that went into it."""

    reward: float
    news_multiplier: float
    vix_multiplier: float
    volatility_divisor: float


DEFAULT_REWARD_PARAMS = AdaptiveRewardParams()


def adaptive_reward(
    base_reward: float,
    *,
    news_sentiment: float | None = None,
    vix: float | None = None,
    atr_dynamic: float | None = None,
    params: AdaptiveRewardParams = DEFAULT_REWARD_PARAMS,
) -> AdaptiveReward:
    """Scale ``base_reward`` by news (1.2x when positive), VIX (0.9x when high) and ``atr_dynamic``.

    Missing inputs (None or NaN) leave their factor at 1: an absent signal neither rewards nor
    punishes. The news multiplier applies to gains only, so positive news never makes a loss look
    worse than it was. The volatility divisor is ``1 + clip(atr_dynamic, 0, atr_dynamic_cap)``.
    """
    if not math.isfinite(base_reward):
        raise ValueError(f"base reward must be finite, was {base_reward}")
    news = 1.0
    positive = news_sentiment is not None and news_sentiment > params.positive_news_above
    if positive and base_reward > 0:  # NaN compares False: no news leaves the reward alone
        news = params.positive_news_multiplier
    vol = 1.0
    if vix is not None and math.isfinite(vix) and vix > params.high_vix_above:
        vol = params.high_vix_multiplier
    divisor = 1.0
    if atr_dynamic is not None and math.isfinite(atr_dynamic):
        divisor = 1.0 + min(max(atr_dynamic, 0.0), params.atr_dynamic_cap)
    return AdaptiveReward(base_reward * news * vol / divisor, news, vol, divisor)
