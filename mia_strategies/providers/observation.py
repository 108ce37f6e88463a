"""The observation a policy sees at one bar and the position rules, shared by research and the engine.

The research environment (``research.env.TradingEnv``) and the signal providers in the engine build
the policy's input with the same ``ObservationSpec.build`` and move the position with the same
``target_from_action`` / ``PositionTracker``: that is what makes the actions of a policy in a nautilus
backtest equal to its actions in the environment on the same data.

An observation is, in this order:

1. the feature vector of the bar (the names of the model's feature set), z-scored with the mean and
   standard deviation of the *training* window, clipped to ``±clip``; a missing feature (NaN) reads
   as 0 (the training mean);
2. the regime probabilities of the bar (filtered, as the regime actor publishes them), in the order
   of ``regime_labels``; missing probabilities read as uniform;
3. the position state: the position held coming into the bar as a fraction of the maximum
   (``-1..1``), and the time left in the Globex session as a fraction of a full 23-hour session.

The position is the policy's own target, flattened ``flat_minutes_before_close`` before every session
close and reset at every new trading day, exactly as the MIA strategy's base class flattens.
"""

import datetime as dt
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from mia_strategies import sessions


FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]

#: Length of a full Globex session (17:00 CT to 16:00 CT the next day), the unit of ``session_left``.
SESSION_NS = 23 * 3600 * 1_000_000_000
_MINUTE_NS = 60_000_000_000

#: Names of the position-state entries appended after features and regime probabilities.
POSITION_STATE = ("position", "session_left")


def target_from_action(action: float | int | npt.NDArray[Any], discrete: bool, max_position: int) -> int:
    """Turn a policy action into a target position in contracts (``-max_position..max_position``).

    Continuous actions lie in ``[-1, 1]`` and are scaled by ``max_position`` and rounded half away
    from zero; discrete actions index ``0..2*max_position`` (short max .. flat .. long max).
    """
    value = float(action) if isinstance(action, int | float) else float(np.asarray(action).reshape(-1)[0])
    if discrete:
        index = int(value)
        if not 0 <= index <= 2 * max_position:
            raise ValueError(f"discrete action {index} outside 0..{2 * max_position}")
        return index - max_position
    if not math.isfinite(value):
        raise ValueError(f"continuous action {value} is not finite")
    scaled = min(1.0, max(-1.0, value)) * max_position
    return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))


@lru_cache(maxsize=256)
def _close_of_day(day: dt.date) -> int:
    return sessions.session_bounds(day)[1]


_last_bar: list[Any] = [None, None, 0]  # ts, trading day, session close of the last bar asked about


def bar_session(ts_ns: int) -> tuple[dt.date, int]:
    """Trading day and session close of a bar time (``sessions`` functions, memoized: called per bar)."""
    if _last_bar[0] != ts_ns:
        day = sessions.trading_day(ts_ns)
        _last_bar[0], _last_bar[1], _last_bar[2] = ts_ns, day, _close_of_day(day)
    return _last_bar[1], _last_bar[2]


def near_close(ts_ns: int, flat_minutes_before_close: int) -> bool:
    """Whether ``ts_ns`` lies within the flat window before its session's close (no position allowed)."""
    if flat_minutes_before_close <= 0:
        return False
    return bar_session(ts_ns)[1] - ts_ns <= flat_minutes_before_close * _MINUTE_NS


def session_left(ts_ns: int) -> float:
    """Time to the session close as a fraction of a full 23-hour session, in ``[0, 1]``."""
    left = (bar_session(ts_ns)[1] - ts_ns) / SESSION_NS
    return min(1.0, max(0.0, left))


class PositionTracker:
    """The position a policy holds, moved by its decisions and the session rules.

    ``held(ts_ns)`` is the position coming into the bar at ``ts_ns`` (0 after a session change);
    ``apply(ts_ns, target)`` records the decision of that bar after the flat-before-close rule and
    returns the position actually taken.
    """

    __slots__ = ("_day", "_flat_minutes", "position")

    def __init__(self, flat_minutes_before_close: int) -> None:
        self._flat_minutes = flat_minutes_before_close
        self._day: object = None
        self.position = 0

    def held(self, ts_ns: int) -> int:
        """Position coming into the bar at ``ts_ns``; a new trading day starts flat."""
        day = bar_session(ts_ns)[0]
        if day != self._day:
            self._day = day
            self.position = 0
        return self.position

    def apply(self, ts_ns: int, target: int) -> int:
        """Take ``target`` at the bar ``ts_ns`` unless the session closes soon; return the new position."""
        self.held(ts_ns)
        self.position = 0 if near_close(ts_ns, self._flat_minutes) else int(target)
        return self.position

    def reset(self) -> None:
        """Forget the position and the trading day (start of a new episode or run)."""
        self._day = None
        self.position = 0


@dataclass(frozen=True)
class ObservationSpec:
    """How to turn one bar's features, regime probabilities and position into a policy input.

    Parameters
    ----------
    feature_names : tuple[str, ...]
        The model's feature set, in vector order.
    regime_labels : tuple[str, ...]
        Regime names in the order of the probabilities (empty: no regime input).
    mean, std : FloatArray
        Per-feature z-score statistics of the training window (``std`` is never 0).
    max_position : int
        Contracts at a full position; the position state is ``position / max_position``.
    clip : float, default 5.0
        Bound of every z-scored feature.
    discrete : bool, default False
        Whether the policy's actions are discrete indices or continuous values in ``[-1, 1]``.
    flat_minutes_before_close : int, default 5
        Minutes before a session close from which the position is forced flat.
    """

    feature_names: tuple[str, ...]
    regime_labels: tuple[str, ...]
    mean: FloatArray
    std: FloatArray
    max_position: int
    clip: float = 5.0
    discrete: bool = False
    flat_minutes_before_close: int = 5

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if self.mean.shape != (n,) or self.std.shape != (n,):
            raise ValueError(f"mean/std must have shape ({n},), were {self.mean.shape} and {self.std.shape}")
        if not np.all(np.isfinite(self.std)) or np.any(self.std <= 0):
            raise ValueError("std must be finite and positive for every feature")
        if self.max_position < 1:
            raise ValueError(f"max_position must be >= 1, was {self.max_position}")

    @property
    def size(self) -> int:
        """Length of an observation vector."""
        return len(self.feature_names) + len(self.regime_labels) + len(POSITION_STATE)

    @property
    def n_actions(self) -> int:
        """Number of discrete actions (short max .. flat .. long max)."""
        return 2 * self.max_position + 1

    @classmethod
    def fit(
        cls,
        features: FloatArray,
        feature_names: tuple[str, ...],
        regime_labels: tuple[str, ...],
        max_position: int,
        clip: float = 5.0,
        discrete: bool = False,
        flat_minutes_before_close: int = 5,
    ) -> "ObservationSpec":
        """Fit the z-score statistics on the training window's features (NaN ignored)."""
        data = np.asarray(features, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(data)
            counts = finite.sum(axis=0)
            safe = np.where(finite, data, 0.0)
            mean = np.divide(safe.sum(axis=0), counts, out=np.zeros(data.shape[1]), where=counts > 0)
            dev = np.where(finite, data - mean, 0.0)
            var = np.divide((dev**2).sum(axis=0), counts, out=np.zeros(data.shape[1]), where=counts > 0)
        std = np.sqrt(var)
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        return cls(
            feature_names=tuple(feature_names),
            regime_labels=tuple(regime_labels),
            mean=mean,
            std=std,
            max_position=max_position,
            clip=clip,
            discrete=discrete,
            flat_minutes_before_close=flat_minutes_before_close,
        )

    def normalize(self, features: FloatArray) -> FloatArray:
        """Z-score and clip features (one row or a matrix); NaN becomes 0 (in place on a fresh array)."""
        z = np.subtract(np.asarray(features, dtype=np.float64), self.mean)
        z /= self.std
        np.clip(z, -self.clip, self.clip, out=z)  # infinities become the bound, NaN stays NaN
        z[np.isnan(z)] = 0.0
        return z

    def regime_vector(self, probabilities: FloatArray | None) -> FloatArray:
        """Regime probabilities in label order; uniform when absent or malformed."""
        k = len(self.regime_labels)
        if k == 0:
            return np.zeros(0)
        if probabilities is None:
            return np.full(k, 1.0 / k)
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != (k,) or not np.all(np.isfinite(p)):
            return np.full(k, 1.0 / k)
        return p

    def build(
        self,
        features: FloatArray,
        regime_probabilities: FloatArray | None,
        position: int,
        ts_ns: int,
    ) -> Float32Array:
        """The observation of one bar (float32, the dtype the networks run in)."""
        out = np.empty(self.size, dtype=np.float32)
        n = len(self.feature_names)
        k = len(self.regime_labels)
        out[:n] = self.normalize(features)
        out[n : n + k] = self.regime_vector(regime_probabilities)
        out[n + k] = position / self.max_position
        out[n + k + 1] = session_left(ts_ns)
        return out

    def target(self, action: float | int | npt.NDArray[Any]) -> int:
        """The target position (contracts) of a policy action under this spec."""
        return target_from_action(action, self.discrete, self.max_position)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form stored in a model's manifest."""
        return {
            "feature_names": list(self.feature_names),
            "regime_labels": list(self.regime_labels),
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
            "max_position": self.max_position,
            "clip": self.clip,
            "discrete": self.discrete,
            "flat_minutes_before_close": self.flat_minutes_before_close,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ObservationSpec":
        """Inverse of ``to_dict``."""
        return cls(
            feature_names=tuple(data["feature_names"]),
            regime_labels=tuple(data["regime_labels"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            max_position=int(data["max_position"]),
            clip=float(data["clip"]),
            discrete=bool(data["discrete"]),
            flat_minutes_before_close=int(data["flat_minutes_before_close"]),
        )

    def to_json(self) -> str:
        """Stable JSON text (sorted keys) of the spec."""
        return json.dumps(self.to_dict(), sort_keys=True)
