"""Conditional value at risk of recent P&L: the mean loss in the worst ``1 - alpha`` tail.

Used by the risk actor on recent closed-trade returns (fractions of equity) and by research as a
constraint; a pure function so both agree.
"""

import math
from collections.abc import Sequence

import numpy as np


def cvar_loss(returns: Sequence[float], alpha: float) -> float:
    """CVaR at ``alpha`` of ``returns`` as a positive loss (0 when the tail makes money).

    The tail holds the worst ``ceil((1 - alpha) x n)`` observations (at least one), so a short window
    still reads its worst trade rather than nothing. Non-finite values are dropped.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), was {alpha}")
    values = np.asarray([r for r in returns if math.isfinite(r)], dtype=np.float64)
    if values.size == 0:
        return 0.0
    tail = max(1, math.ceil((1.0 - alpha) * values.size - 1e-9))
    worst = np.sort(values)[:tail]
    return float(max(0.0, -worst.mean()))
