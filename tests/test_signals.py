"""Signal providers: the plain-object interface, the rule providers, and what a signal promises."""

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mia_strategies.risk.config import MeanReversionParams
from mia_strategies.risk.config import MomentumParams
from mia_strategies.risk.config import RouterConfig
from mia_strategies.signals import PROVIDER_KINDS
from mia_strategies.signals import MeanReversionSignal
from mia_strategies.signals import MomentumSignal
from mia_strategies.signals import SignalContext
from mia_strategies.signals import SignalProvider
from mia_strategies.signals import TradeSignal
from mia_strategies.signals import best_signal
from mia_strategies.signals import build_providers
from mia_strategies.signals import history_needed
from mia_strategies.signals import normal_quantiles
from mia_strategies.signals import register_provider_kind


def _context(closes, atr: float = 1.0, regime: str = "trend") -> SignalContext:
    close = np.asarray(closes, dtype=np.float64)
    return SignalContext(
        root="ES",
        instrument_id="ESZ25.GLBX",
        ts_ns=0,
        close=close,
        high=close + 0.25,
        low=close - 0.25,
        atr=atr,
        regime=regime,
    )


def test_momentum_follows_the_move_and_grows_more_sure_with_it():
    provider = MomentumSignal("momentum", MomentumParams(lookback_bars=20))
    up = provider.signal(_context(np.linspace(100, 110, 30)))
    down = provider.signal(_context(np.linspace(110, 100, 30)))
    stronger = provider.signal(_context(np.linspace(100, 130, 30)))
    assert up is not None and down is not None and stronger is not None
    assert up.direction == 1 and down.direction == -1
    assert 0.5 < up.probability < stronger.probability <= 0.9
    assert provider.signal(_context(np.linspace(100, 110, 10))) is None  # not enough history
    assert provider.signal(_context(np.linspace(100, 110, 30), atr=float("nan"))) is None


def test_mean_reversion_fades_a_stretched_close():
    provider = MeanReversionSignal("mr", MeanReversionParams(lookback_bars=30, entry_z=1.0))
    calm = [100.0 + 0.25 * (i % 3) for i in range(29)]
    high = provider.signal(_context([*calm, 103.0]))
    low = provider.signal(_context([*calm, 97.0]))
    assert high is not None and high.direction == -1
    assert low is not None and low.direction == 1
    assert provider.signal(_context([*calm, 100.25])) is None  # inside the band: no view


@settings(max_examples=200, deadline=None)
@given(
    direction=st.sampled_from([1, -1]),
    probability=st.floats(0.51, 0.99),
    sigma=st.floats(0.1, 50.0),
)
def test_quantiles_agree_with_the_probability(direction, probability, sigma):
    quantiles = dict(normal_quantiles(direction, probability, sigma))
    assert quantiles[0.1] < quantiles[0.5] < quantiles[0.9]
    # the median lies on the signal's side, and P(move in the direction) is the probability
    assert direction * quantiles[0.5] > 0
    mean = quantiles[0.5]
    assert NormalDist(mean, sigma).cdf(0.0) == pytest.approx(
        1 - probability if direction > 0 else probability, abs=1e-6
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(4000, 8000), min_size=31, max_size=60), st.floats(0.25, 10.0))
def test_rule_signals_are_well_formed(closes, atr):
    for provider in build_providers(RouterConfig()).values():
        signal = provider.signal(_context(closes, atr))
        if signal is None:
            continue
        assert signal.direction in (1, -1)
        assert 0.5 < signal.probability <= 0.9
        assert signal.risk == pytest.approx(atr * math.sqrt(signal.horizon_bars))
        assert [q for q, _ in signal.expected_return_quantiles] == [0.1, 0.5, 0.9]
        assert signal.to_dict()["provider"] == provider.name


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(4000, 8000), min_size=40, max_size=60), st.integers(1, 20))
def test_a_signal_depends_only_on_the_bars_it_was_given(closes, cut):
    """What comes after a bar cannot change its signal: the context ends at the bar that closed."""
    provider = MomentumSignal("momentum", MomentumParams())
    prefix = closes[: len(closes) - cut]
    alone = provider.signal(_context(prefix))
    again = provider.signal(_context(list(prefix)))
    assert alone == again


class ConstantPolicy:
    """A stand-in for an RL policy: any object with a name and a ``signal`` method is a provider."""

    def __init__(self, name: str, params: object) -> None:
        self.name = name
        self.history_bars = 5

    def signal(self, context: SignalContext) -> TradeSignal | None:
        return TradeSignal(1, 0.99, normal_quantiles(1, 0.99, context.atr), context.atr, 1, self.name, payoff=2.0)


def test_any_object_with_signal_is_a_provider_and_the_most_probable_wins():
    policy = ConstantPolicy("policy", None)
    assert isinstance(policy, SignalProvider)
    momentum = MomentumSignal("momentum", MomentumParams(lookback_bars=5))
    context = _context(np.linspace(100, 105, 10))
    best = best_signal([momentum, policy], context)
    assert best is not None and best.provider == "policy"
    assert best_signal([], context) is None
    register_provider_kind("test_policy", ConstantPolicy)
    assert PROVIDER_KINDS["test_policy"] is ConstantPolicy
    with pytest.raises(ValueError):
        register_provider_kind("momentum", ConstantPolicy)
    providers = build_providers(RouterConfig())
    assert set(providers) == {"momentum", "mean_reversion"}
    assert history_needed(providers) == 30
