"""Position sizing in whole futures contracts: fractional Kelly, volatility and order-flow scaling, caps.

nautilus's ``FixedRiskSizer`` ignores the futures multiplier (it would size an ES position 50 times
too large), so MIA sizes here: the dollar risk of one contract is ``stop distance x multiplier``,
contracts are whole numbers, and every rounding goes down (a fraction of a contract is never
rounded up into risk nobody asked for). Everything is a pure function of its arguments so the risk
actor, the strategy, the research environment and ``mia risk size`` compute identical numbers.
"""

import math
from dataclasses import dataclass

from mia_strategies.risk.config import SizingSettings


def kelly_fraction(probability: float, payoff: float) -> float:
    """Full-Kelly share of capital for a win probability and a win/loss payoff ratio; 0 without an edge.

    ``f* = p - (1 - p) / b``. Non-finite or out-of-range inputs give 0: no edge is the safe reading.
    """
    if not (math.isfinite(probability) and math.isfinite(payoff)) or payoff <= 0 or not 0 < probability < 1:
        return 0.0
    return max(0.0, probability - (1.0 - probability) / payoff)


def volatility_scale(atr_dynamic: float | None, threshold: float, missing_scale: float) -> float:
    """Size multiplier for ``atr_dynamic`` (ATR relative to its norm): ``threshold / atr_dynamic`` above it.

    ``None`` means the feature set does not carry it (no scaling); NaN means it is carried but its
    inputs are absent now, which scales by ``missing_scale`` (conservative).
    """
    if atr_dynamic is None:
        return 1.0
    if not math.isfinite(atr_dynamic) or atr_dynamic < 0:
        return missing_scale
    if atr_dynamic <= threshold:
        return 1.0
    return threshold / atr_dynamic


def orderflow_scale(imbalance: float | None, limit: float, missing_scale: float) -> float:
    """Size multiplier for one-sided order flow: 1 up to ``limit``, tapering linearly to 0 at |1|."""
    if imbalance is None:
        return 1.0
    if not math.isfinite(imbalance):
        return missing_scale
    excess = abs(imbalance)
    if excess <= limit:
        return 1.0
    return max(0.0, (1.0 - excess) / (1.0 - limit))


def leverage_contracts(equity: float, price: float, multiplier: float, leverage_cap: float) -> int:
    """Most contracts whose notional stays within ``leverage_cap x equity``."""
    notional = price * multiplier
    if not (math.isfinite(equity) and math.isfinite(notional)) or equity <= 0 or notional <= 0:
        return 0
    return max(0, math.floor(leverage_cap * equity / notional + 1e-12))


def margin_contracts(free_balance: float, price: float, multiplier: float, margin_init: float, buffer: float) -> int:
    """Most contracts whose initial margin fits ``buffer`` of the free balance.

    An instrument without margin data (``margin_init`` 0 or missing) is charged its full notional:
    the conservative fallback, so a missing margin can only make positions smaller.
    """
    rate = margin_init if math.isfinite(margin_init) and margin_init > 0 else 1.0
    per_contract = price * multiplier * rate
    if not (math.isfinite(free_balance) and math.isfinite(per_contract)) or free_balance <= 0 or per_contract <= 0:
        return 0
    return max(0, math.floor(buffer * free_balance / per_contract + 1e-12))


def contract_room(limit: int, total_limit: int, held: int, held_total: int) -> int:
    """Contracts that may still be added on one instrument under its own and the total limit."""
    return max(0, min(limit - abs(held), total_limit - abs(held_total)))


@dataclass(frozen=True)
class SizeDecision:
    """How an entry size came about, for trade snapshots and ``mia risk size``."""

    contracts: int
    kelly: float
    risk_fraction: float
    kelly_contracts: int
    volatility_scale: float
    orderflow_scale: float
    cap: int


def size_entry(
    *,
    probability: float,
    payoff: float,
    equity: float,
    stop_distance: float,
    multiplier: float,
    cap: int,
    settings: SizingSettings,
    atr_dynamic: float | None = None,
    orderflow_imbalance: float | None = None,
    mode_scale: float = 1.0,
) -> SizeDecision:
    """Whole contracts for one entry: fractional Kelly risk budget over the dollar risk per contract.

    The risk budget is ``min(kelly_fraction x f*, max_risk_fraction) x equity``; dividing by
    ``stop_distance x multiplier`` gives contracts, which the volatility, order-flow and mode scales
    shrink, and ``cap`` (leverage, margin and contract limits from the risk state) bounds.
    """
    kelly = kelly_fraction(probability, payoff)
    risk_fraction = min(settings.kelly_fraction * kelly, settings.max_risk_fraction)
    vol = volatility_scale(atr_dynamic, settings.atr_threshold, settings.missing_feature_scale)
    flow = orderflow_scale(orderflow_imbalance, settings.orderflow_imbalance_limit, settings.missing_feature_scale)
    dollar_risk = stop_distance * multiplier
    if (
        risk_fraction <= 0
        or not math.isfinite(dollar_risk)
        or dollar_risk <= 0
        or not math.isfinite(equity)
        or equity <= 0
    ):
        raw = 0
    else:
        raw = math.floor(risk_fraction * equity / dollar_risk + 1e-12)
    scaled = math.floor(raw * vol * flow * mode_scale + 1e-12)
    contracts = max(0, min(scaled, max(0, cap)))
    return SizeDecision(contracts, kelly, risk_fraction, raw, vol, flow, max(0, cap))
