"""Technical features from the instrument's own decision bars (OHLCV): returns, oscillators, volatility.

Every bar is one call of the compiled kernel ``technical_kernel.step``, which updates the recursive
indicators (RSI, ATR, ADX, EMA, MACD: Wilder's or exponential smoothing, O(1) per bar) and computes
the windowed statistics directly from its own ring buffers, writing into the family's slice of the
feature vector. Prices enter as log ratios or are divided by the close wherever a level would not
compare across contracts or roots. Formulas: ``docs/features.md``.
"""

from mia_strategies.features.core import BarContext
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.technical_kernel import AC_N
from mia_strategies.features.technical_kernel import ADX_N
from mia_strategies.features.technical_kernel import AMIHUD_N
from mia_strategies.features.technical_kernel import ATR_N
from mia_strategies.features.technical_kernel import BB_N
from mia_strategies.features.technical_kernel import CCI_N
from mia_strategies.features.technical_kernel import DON_N
from mia_strategies.features.technical_kernel import EMA_N
from mia_strategies.features.technical_kernel import ER_N
from mia_strategies.features.technical_kernel import HHLL_N
from mia_strategies.features.technical_kernel import LR_N
from mia_strategies.features.technical_kernel import MACD_P
from mia_strategies.features.technical_kernel import MFI_N
from mia_strategies.features.technical_kernel import MOM_N
from mia_strategies.features.technical_kernel import NAMES
from mia_strategies.features.technical_kernel import RANGE_VOL_N
from mia_strategies.features.technical_kernel import RET_H
from mia_strategies.features.technical_kernel import ROLL_N
from mia_strategies.features.technical_kernel import RSI_N
from mia_strategies.features.technical_kernel import RV_N
from mia_strategies.features.technical_kernel import SMA_N
from mia_strategies.features.technical_kernel import STOCH_N
from mia_strategies.features.technical_kernel import VOL_RATIO
from mia_strategies.features.technical_kernel import VOLZ_N
from mia_strategies.features.technical_kernel import VWAP_N
from mia_strategies.features.technical_kernel import Z_N
from mia_strategies.features.technical_kernel import new_state
from mia_strategies.features.technical_kernel import step


__all__ = [
    "AC_N", "ADX_N", "AMIHUD_N", "ATR_N", "BB_N", "CCI_N", "DON_N", "EMA_N", "ER_N", "FAMILY", "HHLL_N",
    "INDEX", "LR_N", "MACD_P", "MFI_N", "MOM_N", "RANGE_VOL_N", "RET_H", "ROLL_N", "RSI_N", "RV_N", "SMA_N",
    "SPECS", "STOCH_N", "VOLZ_N", "VOL_RATIO", "VWAP_N", "Z_N", "TechnicalState",
]  # fmt: skip

FAMILY = "technical"
_B = ("bars",)

SPECS = SpecList(FAMILY)
for _h in RET_H:
    SPECS.add(f"ret_{_h}", _B, _h + 1, f"log return over {_h} bars: ln(C_t / C_t-{_h})")
for _n in RSI_N:
    SPECS.add(f"rsi_{_n}", _B, _n + 1, f"RSI({_n}) with Wilder smoothing, 0..100")
for _n in ATR_N:
    SPECS.add(f"atr_{_n}", _B, _n, f"ATR({_n}): Wilder average of the true range, price points")
for _n in ATR_N:
    SPECS.add(f"atr_{_n}_pct", _B, _n, f"ATR({_n}) / close")
for _n in ADX_N:
    SPECS.add(f"adx_{_n}", _B, 2 * _n, f"ADX({_n}): Wilder average of DX, 0..100")
    SPECS.add(f"plus_di_{_n}", _B, _n + 1, f"+DI({_n}), 0..100")
    SPECS.add(f"minus_di_{_n}", _B, _n + 1, f"-DI({_n}), 0..100")
for _f, _s, _g in MACD_P:
    _k = f"{_f}_{_s}_{_g}"
    SPECS.add(f"macd_{_k}", _B, _s + _g, f"(EMA{_f} - EMA{_s}) / close")
    SPECS.add(f"macd_signal_{_k}", _B, _s + _g, f"EMA{_g} of macd_{_k}")
    SPECS.add(f"macd_hist_{_k}", _B, _s + _g, f"macd_{_k} - macd_signal_{_k}")
for _n in BB_N:
    SPECS.add(f"bb_width_{_n}", _B, _n, f"Bollinger({_n}, 2) width: 4 sigma / SMA{_n}")
    SPECS.add(f"bb_pctb_{_n}", _B, _n, f"Bollinger({_n}, 2) %B: (C - lower) / (upper - lower)")
for _n in SMA_N:
    SPECS.add(f"sma_dist_{_n}", _B, _n, f"C / SMA{_n} - 1")
for _n in EMA_N:
    SPECS.add(f"ema_dist_{_n}", _B, _n, f"C / EMA{_n} - 1")
for _n in RV_N:
    SPECS.add(f"rv_{_n}", _B, _n + 1, f"realized volatility: sample std of the last {_n} 1-bar log returns")
for _n in RANGE_VOL_N:
    SPECS.add(f"parkinson_{_n}", _B, _n, f"Parkinson volatility over {_n} bars (per bar)")
for _n in RANGE_VOL_N:
    SPECS.add(f"garman_klass_{_n}", _B, _n, f"Garman-Klass volatility over {_n} bars (per bar)")
for _n in RANGE_VOL_N:
    SPECS.add(f"rogers_satchell_{_n}", _B, _n, f"Rogers-Satchell volatility over {_n} bars (per bar)")
SPECS.add("vwap_dist_session", _B, 1, "C / session VWAP - 1 (typical price x volume since the Globex open)")
for _n in VWAP_N:
    SPECS.add(f"vwap_dist_{_n}", _B, _n, f"C / VWAP of the last {_n} bars - 1")
for _n in STOCH_N:
    SPECS.add(f"stoch_k_{_n}", _B, _n, f"stochastic %K({_n}), 0..100")
    SPECS.add(f"stoch_d_{_n}", _B, _n + 2, f"SMA3 of stoch_k_{_n}")
for _n in CCI_N:
    SPECS.add(f"cci_{_n}", _B, _n, f"commodity channel index({_n})")
for _n in Z_N:
    SPECS.add(f"zscore_close_{_n}", _B, _n, f"(C - SMA{_n}) / std{_n} of closes")
for _n in ER_N:
    SPECS.add(f"efficiency_ratio_{_n}", _B, _n + 1, f"Kaufman efficiency ratio over {_n} bars, 0..1")
for _n in LR_N:
    SPECS.add(f"linreg_slope_{_n}", _B, _n, f"OLS slope of ln(close) on bar index over {_n} bars")
    SPECS.add(f"linreg_r2_{_n}", _B, _n, f"R^2 of that regression over {_n} bars, 0..1")
for _n in DON_N:
    SPECS.add(f"donchian_pos_{_n}", _B, _n, f"(C - lowest low) / (highest high - lowest low) over {_n} bars")
for _n in HHLL_N:
    SPECS.add(f"hh_dist_{_n}", _B, _n, f"ln(highest high of {_n} bars / C)")
    SPECS.add(f"ll_dist_{_n}", _B, _n, f"ln(C / lowest low of {_n} bars)")
for _n in VOLZ_N:
    SPECS.add(f"vol_zscore_{_n}", _B, _n, f"z-score of ln(1 + volume) within the last {_n} bars")
for _a, _b in VOL_RATIO:
    SPECS.add(f"volume_ratio_{_a}_{_b}", _B, _b, f"mean volume of {_a} bars / mean volume of {_b} bars")
for _n in MFI_N:
    SPECS.add(f"mfi_{_n}", _B, _n + 1, f"money flow index({_n}), 0..100")
for _n in MOM_N:
    SPECS.add(f"skew_{_n}", _B, _n + 1, f"skewness of the last {_n} 1-bar log returns")
    SPECS.add(f"kurt_{_n}", _B, _n + 1, f"excess kurtosis of the last {_n} 1-bar log returns")
for _n in AC_N:
    SPECS.add(f"autocorr1_{_n}", _B, _n + 2, f"lag-1 autocorrelation of the last {_n} 1-bar log returns")
SPECS.add("bar_return", _B, 1, "ln(C / O) of the bar")
SPECS.add("range_atr_ratio", _B, 14, "(H - L) / atr_14")
SPECS.add("body_ratio", _B, 1, "(C - O) / (H - L); 0 for a flat bar")
SPECS.add("upper_wick_ratio", _B, 1, "(H - max(O, C)) / (H - L); 0 for a flat bar")
SPECS.add("lower_wick_ratio", _B, 1, "(min(O, C) - L) / (H - L); 0 for a flat bar")
SPECS.add("close_location", _B, 1, "(C - L) / (H - L); 0.5 for a flat bar")
SPECS.add("session_return", _B, 1, "ln(C / first open of the trading day)")
SPECS.add("gap_prev_session", _B, 1, "ln(first open of the day / last close of the previous day seen)")
SPECS.add("prev_session_return", _B, 1, "ln(previous day's last close / its first open)")
SPECS.add("session_high_dist", _B, 1, "ln(session high / C)")
SPECS.add("session_low_dist", _B, 1, "ln(C / session low)")
SPECS.add("session_range_atr", _B, 14, "(session high - session low) / atr_14")
for _n in AMIHUD_N:
    SPECS.add(f"amihud_{_n}", _B, _n + 1, f"Amihud illiquidity: mean |r| / (volume x C) x 1e6 over {_n} bars")
for _n in ROLL_N:
    SPECS.add(f"roll_spread_{_n}", _B, _n + 2, f"Roll implied spread over {_n} bars, basis points of C")
INDEX = SPECS.index()
if tuple(INDEX) != NAMES or list(INDEX.values()) != list(range(len(NAMES))):
    raise RuntimeError("technical SPECS and the kernel's output layout (technical_kernel.NAMES) differ")


class TechnicalState:
    """Per-instrument state of the technical family: two numpy arrays updated by the compiled kernel."""

    __slots__ = ("_ring", "_state", "atr14")

    def __init__(self) -> None:
        self._state, self._ring = new_state()
        self.atr14 = float("nan")  # last ATR(14), read by other families

    def on_bar(self, ctx: BarContext, target: FloatArray) -> None:
        """Update every indicator with the bar and write the technical features into ``target``."""
        bar = ctx.bar
        hist = ctx.hist
        self.atr14 = step(
            self._state,
            self._ring,
            target,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            hist.session_open_px,
            hist.session_high,
            hist.session_low,
            hist.prev_session_close,
            hist.prev_session_open,
            hist.session_pv,
            hist.session_vol,
        )
