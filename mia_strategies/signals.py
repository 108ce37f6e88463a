"""Signal providers: plain objects that turn what is known at a bar close into a ``TradeSignal``.

A provider has a ``name`` and one method, ``signal(context) -> TradeSignal | None``. The context is a
plain dataclass (recent bars as numpy arrays, ATR, features by name, the regime), built by the MIA
strategy in the engine and by the research environment offline, so the same provider object runs in
both. Rule-based providers ship here; the RL policies and their ensemble (``rl_policy``,
``rl_ensemble``, ``mia_strategies/providers/``) register their kinds when a router names them.

A signal carries a direction, the probability that the direction is right (the router enters only
above its threshold, 0.65 by default), quantiles of the expected return over the signal's horizon
and a risk estimate (one standard deviation of that return), all in price points.

The rule providers' probabilities are heuristic confidences, not calibrated frequencies: a tanh map
of a normalised score, capped at ``max_probability``. Their return quantiles are those of a normal
whose mean gives that probability of a move in the signal's direction, with ATR x sqrt(horizon) as
its standard deviation.
"""

import importlib
import math
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from statistics import NormalDist
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import numpy as np
import numpy.typing as npt

from mia_strategies.risk.config import MeanReversionParams
from mia_strategies.risk.config import MomentumParams
from mia_strategies.risk.config import RouterConfig


FloatArray = npt.NDArray[np.float64]
QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
_NORMAL = NormalDist()


@dataclass(frozen=True)
class TradeSignal:
    """What a provider thinks of the next ``horizon_bars`` bars.

    ``direction`` is +1 (long), -1 (short) or 0 (no view). ``probability`` is the chance the
    direction is right. ``expected_return_quantiles`` pairs quantile levels with returns in points
    (signed: positive is a rise). ``risk`` is one standard deviation of that return. ``payoff`` is the
    provider's own win/loss ratio when it has one (None: the exit plan's reward-to-risk is used).
    """

    direction: int
    probability: float
    expected_return_quantiles: tuple[tuple[float, float], ...]
    risk: float
    horizon_bars: int
    provider: str
    payoff: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form for trade snapshots."""
        return {
            "direction": self.direction,
            "probability": self.probability,
            "expected_return_quantiles": {f"{q:g}": v for q, v in self.expected_return_quantiles},
            "risk": self.risk,
            "horizon_bars": self.horizon_bars,
            "provider": self.provider,
            "payoff": self.payoff,
        }


@dataclass(frozen=True)
class SignalContext:
    """Everything known at one bar close of one instrument (nothing after it).

    Arrays hold the most recent bars, oldest first, ending with the bar that just closed.
    """

    root: str
    instrument_id: str
    ts_ns: int
    close: FloatArray
    high: FloatArray
    low: FloatArray
    atr: float
    regime: str
    regime_probabilities: Mapping[str, float] = field(default_factory=dict)
    features: Mapping[str, float] = field(default_factory=dict)
    #: Signed contracts the strategy holds in the root; None when unknown (an RL provider then assumes
    #: it holds its own last target, as the environment does). RL observations include the position.
    position: int | None = None


@runtime_checkable
class SignalProvider(Protocol):
    """The interface every provider implements (rules now, RL policies later)."""

    name: str

    def signal(self, context: SignalContext) -> TradeSignal | None:
        """A signal for the bar that just closed, or None without a view (or enough history)."""
        ...


def _probability(strength: float, scale: float, max_probability: float) -> float:
    """Map a non-negative strength to (0.5, max_probability) with tanh: 0 gives 0.5."""
    return 0.5 + (max_probability - 0.5) * math.tanh(max(0.0, strength) / scale)


def normal_quantiles(direction: int, probability: float, sigma: float) -> tuple[tuple[float, float], ...]:
    """Quantiles of a normal with standard deviation ``sigma`` and P(move in ``direction``) = probability."""
    p = min(max(probability, 1e-6), 1 - 1e-6)
    mean = direction * sigma * _NORMAL.inv_cdf(p)
    return tuple((q, mean + sigma * _NORMAL.inv_cdf(q)) for q in QUANTILES)


class MomentumSignal:
    """Trend rule: follow the move of the last ``lookback_bars`` measured in ATR x sqrt(bars)."""

    def __init__(self, name: str, params: MomentumParams) -> None:
        self.name = name
        self.params = params

    @property
    def history_bars(self) -> int:
        """Bars of history the rule needs."""
        return self.params.lookback_bars + 1

    def signal(self, context: SignalContext) -> TradeSignal | None:
        """Long after a rise, short after a fall, more probable the larger the move."""
        n = self.params.lookback_bars
        close = context.close
        if len(close) < n + 1 or not (math.isfinite(context.atr) and context.atr > 0):
            return None
        move = float(close[-1] - close[-1 - n])
        score = move / (context.atr * math.sqrt(n))
        if not math.isfinite(score) or score == 0:
            return None
        direction = 1 if score > 0 else -1
        probability = _probability(abs(score), self.params.scale, self.params.max_probability)
        sigma = context.atr * math.sqrt(self.params.horizon_bars)
        return TradeSignal(
            direction=direction,
            probability=probability,
            expected_return_quantiles=normal_quantiles(direction, probability, sigma),
            risk=sigma,
            horizon_bars=self.params.horizon_bars,
            provider=self.name,
        )


class MeanReversionSignal:
    """Range rule: fade a close more than ``entry_z`` standard deviations from its rolling mean."""

    def __init__(self, name: str, params: MeanReversionParams) -> None:
        self.name = name
        self.params = params

    @property
    def history_bars(self) -> int:
        """Bars of history the rule needs."""
        return self.params.lookback_bars

    def signal(self, context: SignalContext) -> TradeSignal | None:
        """Short above the band, long below it; more probable the further outside."""
        n = self.params.lookback_bars
        if len(context.close) < n:
            return None
        window = context.close[-n:]
        sd = float(window.std())
        if not (math.isfinite(sd) and sd > 0) or not (math.isfinite(context.atr) and context.atr > 0):
            return None
        z = (float(window[-1]) - float(window.mean())) / sd
        excess = abs(z) - self.params.entry_z
        if excess <= 0:
            return None
        direction = -1 if z > 0 else 1
        probability = _probability(excess, self.params.scale, self.params.max_probability)
        sigma = context.atr * math.sqrt(self.params.horizon_bars)
        return TradeSignal(
            direction=direction,
            probability=probability,
            expected_return_quantiles=normal_quantiles(direction, probability, sigma),
            risk=sigma,
            horizon_bars=self.params.horizon_bars,
            provider=self.name,
        )


ProviderFactory = Callable[[str, Any], SignalProvider]

#: Provider kinds by the ``kind`` of their router-config entry; RL policies register theirs here.
PROVIDER_KINDS: dict[str, ProviderFactory] = {
    "momentum": MomentumSignal,
    "mean_reversion": MeanReversionSignal,
}


def register_provider_kind(kind: str, factory: ProviderFactory) -> None:
    """Add a provider kind (for example an RL policy loaded from the model registry)."""
    existing = PROVIDER_KINDS.get(kind)
    if existing is not None and existing is not factory:
        raise ValueError(f"provider kind {kind!r} is already registered")
    PROVIDER_KINDS[kind] = factory


#: Kinds whose factories register themselves when their module is imported: the RL providers, kept
#: out of this module's imports (they import it) and loaded only by a router that names them.
_KIND_MODULES: dict[str, str] = {
    "rl_policy": "mia_strategies.providers.signal",
    "rl_ensemble": "mia_strategies.providers.signal",
}


def provider_factory(kind: str) -> ProviderFactory:
    """The factory of a provider kind, importing the module that registers it when needed."""
    if kind not in PROVIDER_KINDS and kind in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[kind])
    factory = PROVIDER_KINDS.get(kind)
    if factory is None:
        raise ValueError(f"unknown provider kind {kind!r}: use {', '.join(sorted({*PROVIDER_KINDS, *_KIND_MODULES}))}")
    return factory


def build_providers(router: RouterConfig) -> dict[str, SignalProvider]:
    """One provider object per entry of the router config's ``providers``."""
    return {name: provider_factory(params.kind)(name, params) for name, params in router.providers.items()}


def prepare_providers(providers: Mapping[str, SignalProvider], roots: Sequence[str]) -> None:
    """Let providers that load models (``prepare(roots)``) load them for ``roots`` now.

    Called when a node is planned, a missing or unreadable model is a one-line ``ConfigError`` before
    any engine exists (``prepare_providers(build_providers(router), roots)``); called when the strategy
    starts, no model file is read on the event loop.
    """
    for provider in providers.values():
        prepare = getattr(provider, "prepare", None)
        if prepare is not None:
            prepare(list(roots))


def close_providers(providers: Mapping[str, SignalProvider]) -> None:
    """Stop what providers run beside the node (an RL policy's online learners) when it stops."""
    for provider in providers.values():
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def history_needed(providers: Mapping[str, SignalProvider]) -> int:
    """Bars of history the providers need (at least 2)."""
    return max([2, *(int(getattr(p, "history_bars", 2)) for p in providers.values())])


def best_signal(providers: Sequence[SignalProvider], context: SignalContext) -> TradeSignal | None:
    """The most probable directional signal of ``providers`` (the first wins a tie), or None."""
    best: TradeSignal | None = None
    for provider in providers:
        signal = provider.signal(context)
        if signal is None or signal.direction == 0 or not math.isfinite(signal.probability):
            continue
        if best is None or signal.probability > best.probability:
            best = signal
    return best
