"""Exit geometry: a stop k x ATR away, partial targets at reward-to-risk multiples or option levels.

``plan_exits`` turns an entry (side, reference price, stop distance, contracts) into prices on the
tick grid: a stop on the loss side of the entry and one take-profit leg per target, each leg's
quantity a whole share of the entry. A call wall, put wall or key strike between the entry and an
R-multiple target, and at least ``min_level_r`` away, replaces that target one tick before the level
(order flow tends to stall at such strikes). Pure functions: the strategy places the orders, the risk
actor publishes the distances, and tests check the geometry on random inputs.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mia_strategies.risk.config import ExitSettings


@dataclass(frozen=True)
class TargetLeg:
    """One partial take-profit: how many contracts at which price, and why that price."""

    quantity: int
    price: float
    r_multiple: float
    source: str  # "r" for the reward-to-risk multiple, else the level's feature name


@dataclass(frozen=True)
class ExitPlan:
    """The protective stop and the take-profit legs of one entry."""

    stop_price: float
    stop_distance: float
    legs: tuple[TargetLeg, ...]

    @property
    def quantity(self) -> int:
        """Contracts the legs cover (the entry size)."""
        return sum(leg.quantity for leg in self.legs)


def round_to_tick(px: float, tick: float, direction: int) -> float:
    """Round ``px`` to the tick grid: up (+1), down (-1); exact grid values stay put."""
    steps = px / tick
    nearest = round(steps)
    if abs(steps - nearest) < 1e-9:
        return nearest * tick
    return (math.ceil(steps) if direction > 0 else math.floor(steps)) * tick


def split_quantity(quantity: int, fractions: Sequence[float]) -> list[int]:
    """Split whole contracts over the targets: each leg gets its share rounded down, at least one
    contract while any remain, and the last leg takes the rest. Fewer contracts than targets fill the
    nearest targets first (a single contract exits at the first target)."""
    if quantity <= 0:
        return [0 for _ in fractions]
    legs = [0 for _ in fractions]
    remaining = quantity
    for i, fraction in enumerate(fractions[:-1]):
        share = max(1, math.floor(quantity * fraction + 1e-9))
        share = min(share, remaining)
        legs[i] = share
        remaining -= share
    legs[-1] += remaining
    return legs


def stop_clears_spread(stop_distance: float, bid: float, ask: float, tick: float, min_ticks: int) -> bool:
    """Whether a stop ``stop_distance`` from the entry side lies at least ``min_ticks`` beyond the spread."""
    spread = max(0.0, ask - bid)
    return stop_distance + 1e-9 >= spread + min_ticks * tick


def minimum_stop_distance(bid: float, ask: float, tick: float, min_ticks: int) -> float:
    """The closest a stop may sit to the entry: the spread plus ``min_ticks`` ticks, on the tick grid.

    A 2 x ATR stop on a quiet minute chart can be closer than that; the strategy then widens it to this
    distance (and sizes on the wider stop) rather than skip the trade or let noise trigger it.
    """
    spread = max(0.0, ask - bid)
    return math.ceil((spread + min_ticks * tick) / tick - 1e-9) * tick


def _levels_between(
    side: int, entry: float, far: float, levels: Sequence[tuple[str, float]]
) -> list[tuple[str, float]]:
    """Finite levels strictly between the entry and ``far`` on the profit side, nearest first."""
    found = [
        (name, px)
        for name, px in levels
        if math.isfinite(px) and ((side > 0 and entry < px < far) or (side < 0 and far < px < entry))
    ]
    return sorted(found, key=lambda item: abs(item[1] - entry))


def plan_exits(
    *,
    side: int,
    entry_price: float,
    stop_distance: float,
    quantity: int,
    tick: float,
    settings: ExitSettings,
    levels: Sequence[tuple[str, float]] = (),
) -> ExitPlan:
    """Stop and partial targets for an entry of ``quantity`` contracts on ``side`` (+1 long, -1 short).

    The stop is rounded away from the entry and the targets toward it never beyond their level, so
    the geometry on the grid is never looser than asked. Legs with no contracts are dropped.
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, was {side}")
    if not (math.isfinite(stop_distance) and stop_distance > 0 and math.isfinite(entry_price) and tick > 0):
        raise ValueError(f"stop distance must be positive and prices finite, was {stop_distance} at {entry_price}")
    stop_distance = max(stop_distance, tick)
    stop = round_to_tick(entry_price - side * stop_distance, tick, -side)
    risk = abs(entry_price - stop)
    quantities = split_quantity(quantity, settings.target_fractions)
    usable = [(n, px) for n, px in levels if math.isfinite(px)] if settings.option_levels else []
    legs: list[TargetLeg] = []
    floor_px = entry_price  # each target lies beyond the previous one
    for qty, r in zip(quantities, settings.targets_r, strict=True):
        target = round_to_tick(entry_price + side * r * risk, tick, -side)
        source = "r"
        minimum = entry_price + side * settings.min_level_r * risk
        candidates = [
            (name, px)
            for name, px in _levels_between(side, entry_price, target, usable)
            if (side > 0 and px - tick >= minimum - 1e-9 and px - tick > floor_px + 1e-9)
            or (side < 0 and px + tick <= minimum + 1e-9 and px + tick < floor_px - 1e-9)
        ]
        if candidates:
            name, px = candidates[0]
            target = round_to_tick(px - side * tick, tick, -side)
            source = name
        if (side > 0 and target <= floor_px) or (side < 0 and target >= floor_px):
            target = floor_px + side * tick
        floor_px = target
        if qty > 0:
            legs.append(TargetLeg(qty, target, abs(target - entry_price) / risk, source))
    return ExitPlan(stop_price=stop, stop_distance=risk, legs=tuple(legs))


def trail_stop(
    side: int,
    current_stop: float,
    market: float,
    trail_distance: float,
    tick: float,
    min_step: float = 0.0,
) -> float | None:
    """The new trailing stop, or None when it would not tighten by at least ``min_step`` (and a tick).

    The stop follows ``market`` (bid for a long, ask for a short) at ``trail_distance``, only ever
    toward the market, and always at least one tick away from it so it never triggers on placement.
    """
    if not (math.isfinite(market) and math.isfinite(trail_distance)) or trail_distance <= 0:
        return None
    candidate = round_to_tick(market - side * trail_distance, tick, -side)
    limit = market - side * tick
    candidate = min(candidate, limit) if side > 0 else max(candidate, limit)
    step = max(min_step, tick) - 1e-9
    if side > 0 and candidate - current_stop >= step:
        return candidate
    if side < 0 and current_stop - candidate >= step:
        return candidate
    return None


def payoff_ratio(settings: ExitSettings) -> float:
    """Average reward-to-risk of the targets weighted by their shares: the Kelly payoff of the plan."""
    return sum(r * f for r, f in zip(settings.targets_r, settings.target_fractions, strict=True))
