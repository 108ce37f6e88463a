"""The compiled rolling blocks equal the interpreted ``rolling.py`` classes bit for bit.

``rolling_kernel`` (used by the order-flow, dynamic and composite kernels) and the technical
kernel's Wilder and EMA recursions claim to be operation-for-operation ports of ``rolling.py``.
These properties push the same random streams (with flat stretches, repeats and large offsets,
where running sums drift) through both and compare every read after every push.
"""

import math

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mia_strategies.features import orderflow_kernel as ok
from mia_strategies.features import rolling
from mia_strategies.features import rolling_kernel as rk
from mia_strategies.features import technical_kernel as tk


_VALUE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Runs of one value (flat windows) mixed with arbitrary values around a large level.
_STREAM = st.lists(st.tuples(_VALUE, st.integers(min_value=1, max_value=12)), min_size=1, max_size=60).map(
    lambda runs: [6800.0 + v for v, n in runs for _ in range(n)]
)
_WINDOWS = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=4, unique=True).map(sorted)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=60, deadline=None)
@given(_STREAM, _WINDOWS)
def test_compiled_running_sums_equal_rolling_sum(stream, windows):
    ref = rolling.RollingSum(windows)
    w = np.array(windows, dtype=np.int64)
    f = np.zeros(len(windows) + max(windows))
    s = np.zeros(3, dtype=np.int64)
    for x in stream:
        ref.push(x)
        rk.sums_push(f, 0, s, 0, w, x)
        assert list(f[: len(windows)]) == ref.sums
        assert int(s[1]) == ref.count


@settings(max_examples=60, deadline=None)
@given(_STREAM, _WINDOWS)
def test_compiled_running_moments_equal_rolling_moments(stream, windows):
    ref = rolling.RollingMoments(windows)
    w = np.array(windows, dtype=np.int64)
    nw = len(windows)
    f = np.zeros(2 + 2 * nw + max(windows))
    s = np.zeros(3, dtype=np.int64)
    for x in stream:
        ref.push(x)
        rk.moments_push(f, 0, s, 0, w, x)
        for j, n in enumerate(windows):
            assert _same(rk.moments_mean(f, 0, s, 0, n, j), ref.mean(j))
            assert _same(rk.moments_std(f, 0, s, 0, nw, n, j), ref.std(j))


@settings(max_examples=60, deadline=None)
@given(_STREAM, st.integers(min_value=1, max_value=40), _VALUE)
def test_compiled_sorted_window_equals_rolling_rank(stream, width, probe):
    ref = rolling.RollingRank(width)
    f = np.zeros(2 * width)
    s = np.zeros(2, dtype=np.int64)
    for x in stream:
        ref.push(x)
        rk.rank_push(f, 0, s, 0, width, x)
        for q in (x, 6800.0 + probe, stream[0]):
            assert _same(rk.rank_of(f, 0, s, 0, q), ref.rank(q))
        for q in (0.25, 0.5, 0.75):  # the order-flow kernel's quantile over the same sorted values
            assert _same(ok._quantile(f, 0, int(s[1]), q), ref.quantile(q))


@settings(max_examples=60, deadline=None)
@given(_STREAM, st.integers(min_value=1, max_value=50))
def test_technical_wilder_and_ema_recursions_equal_rolling(stream, n):
    wilder = rolling.Wilder(n)
    ema = rolling.Ema(n)
    st_ = np.full(4, np.nan)
    st_[0] = 0.0
    st_[2] = np.nan
    for count, x in enumerate(stream, start=1):
        expected_w = wilder.update(x)
        expected_e = ema.update(x)
        got_w = tk._wilder(st_, 0, n, count, x)
        got_e = tk._ema(st_, 2, n, count, x)
        assert _same(got_w, expected_w)
        assert _same(got_e, expected_e)


def test_warm_up_runs_the_kernels_on_a_scratch_hub_and_skips_other_actors(markets):
    from pathlib import Path

    from nautilus_trader.config import ImportableActorConfig

    from mia_strategies.actors.features import warm_up_kernels
    from mia_strategies.features.engine import FeatureHub
    from mia_strategies.features.sets import load_feature_sets

    # Arrange
    repo = Path(__file__).resolve().parents[1]
    hub = FeatureHub(load_feature_sets(repo / "config" / "feature_sets.yaml"), {"ES": "ES.training"}, markets)
    hub.register("ESZ25.GLBX")
    feature_actor = ImportableActorConfig(
        actor_path="mia_strategies.actors.features:FeatureActor",
        config_path="mia_strategies.actors.features:FeatureActorConfig",
        config={"bar_types": ["ESZ25.GLBX-1-MINUTE-LAST-INTERNAL"], "feature_sets": {"ES": "ES.training"}},
    )
    other = ImportableActorConfig(actor_path="x:Y", config_path="x:YConfig", config={})

    # Act
    seconds = hub.warm_up()
    total = warm_up_kernels([feature_actor, other])

    # Assert: the kernels ran, and the hub being warmed kept no trace of it
    assert seconds > 0.0 and total > 0.0
    assert hub.stats.bars == 0 and hub.instruments["ESZ25.GLBX"].bars == 0
    assert hub.drain_warnings() == []
