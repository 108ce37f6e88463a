"""Technical features from the instrument's own decision bars (OHLCV): returns, oscillators, volatility.

Recursive indicators (RSI, ATR, ADX, EMA, MACD) update in O(1) per bar with Wilder's or exponential
smoothing; windowed statistics come from the bar history's contiguous views with one cumulative sum
per input series (see ``rolling``). Prices enter as log ratios or are divided by the close wherever a
level would not compare across contracts or roots. Formulas: ``docs/features.md``.
"""

import math
import re

import numpy as np

from mia_strategies.features.core import BarContext
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import Ema
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.rolling import MultiRollingSum
from mia_strategies.features.rolling import Ring
from mia_strategies.features.rolling import RollingMoments
from mia_strategies.features.rolling import SeriesView
from mia_strategies.features.rolling import Wilder
from mia_strategies.features.rolling import flat_variance
from mia_strategies.features.rolling import window_extremes


FAMILY = "technical"
_B = ("bars",)

RET_H = (1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 240, 390)
RSI_N = (6, 14, 28)
ATR_N = (5, 7, 14, 28, 50)
ADX_N = (7, 14, 28)
MACD_P = ((12, 26, 9), (5, 35, 5))
BB_N = (10, 20, 50)
SMA_N = (5, 10, 20, 50, 100, 200, 390)
EMA_N = (5, 10, 20, 50, 100, 200)
RV_N = (5, 10, 15, 20, 30, 60, 120, 240, 390)
RANGE_VOL_N = (10, 20, 30, 60, 120, 240)
VWAP_N = (30, 60, 120, 390)
STOCH_N = (14, 28)
CCI_N = (14, 20, 50)
Z_N = (20, 60, 120, 240)
ER_N = (10, 20, 30, 60, 120)
LR_N = (10, 20, 30, 60, 120)
DON_N = (20, 60, 120, 390)
HHLL_N = (20, 60, 390)
VOLZ_N = (20, 60, 390)
VOL_RATIO = ((5, 60), (15, 120))
MFI_N = (14, 28)
MOM_N = (30, 60, 120, 240)
AC_N = (30, 60, 120)
AMIHUD_N = (30, 120)
ROLL_N = (30, 120)

_MAX_LOOKBACK = 391
_LN2 = math.log(2.0)
_GK_C = 2.0 * _LN2 - 1.0

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
_N_SPECS = len(SPECS.specs)


def _positions() -> dict[str, dict[int, int]]:
    """``{"rv_{}": {30: position, ...}, ...}`` for every number in every name (no string work per bar)."""
    table: dict[str, dict[int, int]] = {}
    for name, position in INDEX.items():
        for match in re.finditer(r"\d+", name):
            pattern = name[: match.start()] + "{}" + name[match.end() :]
            table.setdefault(pattern, {})[int(match.group())] = position
    return table


_POS = _positions()


def _ix(pattern: str, n: int) -> int:
    """Position of the feature ``pattern.format(n)`` (set-up code; the per-bar code indexes ``_POS``)."""
    return _POS[pattern][n]


class _Adx:
    """ADX(n) with Wilder's sums for TR/DM and Wilder's average for DX."""

    __slots__ = ("_dm_m", "_dm_p", "_dx", "_n", "_seen", "_tr", "adx", "minus_di", "plus_di")

    def __init__(self, n: int) -> None:
        self._n = n
        self._seen = 0
        self._tr = 0.0
        self._dm_p = 0.0
        self._dm_m = 0.0
        self._dx = Wilder(n)
        self.plus_di = NAN
        self.minus_di = NAN
        self.adx = NAN

    def update(self, tr: float, dm_p: float, dm_m: float) -> None:
        n = self._n
        self._seen += 1
        if self._seen <= n:
            self._tr += tr
            self._dm_p += dm_p
            self._dm_m += dm_m
            if self._seen < n:
                return
        else:
            self._tr += tr - self._tr / n
            self._dm_p += dm_p - self._dm_p / n
            self._dm_m += dm_m - self._dm_m / n
        if self._tr > 0.0:
            self.plus_di = 100.0 * self._dm_p / self._tr
            self.minus_di = 100.0 * self._dm_m / self._tr
        else:
            self.plus_di = self.minus_di = 0.0
        total = self.plus_di + self.minus_di
        dx = 100.0 * abs(self.plus_di - self.minus_di) / total if total > 0.0 else 0.0
        self.adx = self._dx.update(dx)


def _pair_corr(sab: float, sa: float, sb: float, saa: float, sbb: float, n: int) -> float:
    """Correlation from the sums of two paired samples; 0 when either is constant."""
    va = saa - sa * sa / n
    vb = sbb - sb * sb / n
    if va <= 0.0 or vb <= 0.0:
        return 0.0
    return (sab - sa * sb / n) / math.sqrt(va * vb)


class _Regression:
    """OLS of y on the bar index over several trailing windows, O(windows) per bar (anchored sums)."""

    __slots__ = ("_anchor", "_buf", "_cap", "_i", "_s0", "_s2", "_since", "_t", "_windows", "count")

    def __init__(self, windows: tuple[int, ...]) -> None:
        self._windows = windows
        self._cap = max(windows)
        self._buf = [0.0] * self._cap
        self._i = 0
        self._since = 0
        self._anchor = NAN
        self._s0 = [0.0] * len(windows)
        self._s2 = [0.0] * len(windows)
        self._t = [0.0] * len(windows)
        self.count = 0

    def push(self, x: float) -> None:
        if self.count == 0:
            self._anchor = x
        y = x - self._anchor
        buf = self._buf
        i = self._i
        n = self.count
        for j, w in enumerate(self._windows):
            s0 = self._s0[j]
            if n >= w:
                old = buf[i - w]
                self._t[j] += s0 - w * old
                self._s0[j] = s0 + y - old
                self._s2[j] += y * y - old * old
            else:
                self._t[j] += s0
                self._s0[j] = s0 + y
                self._s2[j] += y * y
        buf[i] = y
        self._i = i + 1 if i + 1 < self._cap else 0
        self.count = n + 1
        self._since += 1
        if self._since >= self._cap:
            self._reanchor(x)

    def _reanchor(self, x: float) -> None:
        self._since = 0
        shift = self._anchor - x
        self._buf = [v + shift for v in self._buf]
        self._anchor = x
        i = self._i
        for j, w in enumerate(self._windows):
            k = min(w, self.count)
            vals = self._buf[i - k : i] if k <= i else self._buf[self._cap - (k - i) :] + self._buf[:i]
            newest_first = vals[::-1]
            self._s0[j] = math.fsum(newest_first)
            self._s2[j] = math.fsum(v * v for v in newest_first)
            self._t[j] = math.fsum(m * v for m, v in enumerate(newest_first))

    def slope_r2(self, j: int) -> tuple[float, float]:
        w = self._windows[j]
        if self.count < w:
            return NAN, NAN
        sxx = w * (w * w - 1) / 12.0
        s0 = self._s0[j]
        slope = ((w - 1) / 2.0 * s0 - self._t[j]) / sxx
        syy = self._s2[j] - s0 * s0 / w
        r2 = min(1.0, slope * slope * sxx / syy) if syy > 0.0 else 0.0
        return slope, r2


_CLOSE_N = tuple(sorted(set(SMA_N) | set(BB_N) | set(Z_N)))
#: Per-bar terms kept in one MultiRollingSum, by column.
_SERIES = {
    name: i
    for i, name in enumerate(
        (
            "parkinson", "garman_klass", "rogers_satchell", "tpv", "v", "mf_pos", "mf_neg", "amihud",
            "amihud_ok", "absdc", "dc", "dclag", "r", "r2", "r3", "r4", "rlag",
        ),
    )
}  # fmt: skip
_STARTS_AT_BAR_2 = ("mf_pos", "mf_neg", "amihud", "amihud_ok", "absdc", "dc", "r", "r2", "r3", "r4")
_RET_N = tuple(sorted(set(RV_N) | set(MOM_N) | set(AC_N) | {w + 1 for w in AC_N}))
_VOL_N = tuple(sorted(set(VWAP_N) | {a for a, _ in VOL_RATIO} | {b for _, b in VOL_RATIO}))
_HL_N = tuple(sorted(set(STOCH_N) | set(DON_N) | set(HHLL_N)))
_ALL_WINDOWS = tuple(
    sorted(
        set(RANGE_VOL_N)
        | set(VWAP_N)
        | set(_VOL_N)
        | set(MFI_N)
        | set(AMIHUD_N)
        | set(ER_N)
        | {n + 1 for n in ROLL_N}
        | set(ROLL_N)
        | set(_RET_N)
        | set(AC_N),
    ),
)


class TechnicalState:
    """Per-instrument state of the technical family: recursive indicators and rolling sums."""

    def __init__(self) -> None:
        self._prev_close = NAN
        self._prev_high = NAN
        self._prev_low = NAN
        self._prev_tp = NAN
        self._prev_r = NAN
        self._prev_dc = NAN
        self._rsi = [(Wilder(n), Wilder(n), _ix("rsi_{}", n)) for n in RSI_N]
        self._atr = [(Wilder(n), _ix("atr_{}", n), _ix("atr_{}_pct", n)) for n in ATR_N]
        self._atr14 = self._atr[ATR_N.index(14)][0]
        self._adx = [(_Adx(n), _ix("adx_{}", n), _ix("plus_di_{}", n), _ix("minus_di_{}", n)) for n in ADX_N]
        self._ema = [(Ema(n), n, _ix("ema_dist_{}", n)) for n in EMA_N]
        self._macd = [
            (
                Ema(f),
                Ema(s),
                Ema(g),
                s + g,
                INDEX[f"macd_{f}_{s}_{g}"],
                INDEX[f"macd_signal_{f}_{s}_{g}"],
                INDEX[f"macd_hist_{f}_{s}_{g}"],
            )
            for f, s, g in MACD_P
        ]
        self._closes = RollingMoments(_CLOSE_N)
        self._cj = {n: _CLOSE_N.index(n) for n in _CLOSE_N}
        # every windowed per-bar term in one vectorised structure (see _SERIES)
        self._sums = MultiRollingSum(len(_SERIES), _ALL_WINDOWS)
        view = self._view
        self._r1, self._r2, self._r3, self._r4 = (view(n, _RET_N) for n in ("r", "r2", "r3", "r4"))
        self._rj = {n: _RET_N.index(n) for n in _RET_N}
        self._rlag = view("rlag", AC_N)
        self._range = {name: view(name, RANGE_VOL_N) for name in ("parkinson", "garman_klass", "rogers_satchell")}
        self._tp = Ring(max(CCI_N))
        self._tpv = view("tpv", VWAP_N)
        self._vol = view("v", _VOL_N)
        self._vj = {n: _VOL_N.index(n) for n in _VOL_N}
        self._lnv = RollingMoments(VOLZ_N)
        self._mf_pos = view("mf_pos", MFI_N)
        self._mf_neg = view("mf_neg", MFI_N)
        self._amihud = view("amihud", AMIHUD_N)
        self._amihud_ok = view("amihud_ok", AMIHUD_N)
        self._absdc = view("absdc", ER_N)
        self._dc = view("dc", tuple(n + 1 for n in ROLL_N))
        self._dclag = view("dclag", ROLL_N)
        self._row = [0.0] * len(_SERIES)
        self._lr = _Regression(LR_N)
        self._stoch_k = [Ring(3) for _ in STOCH_N]
        self.atr14 = NAN
        self._i_ret = [(h, _ix("ret_{}", h)) for h in RET_H]

    # -- per bar --------------------------------------------------------------------------------

    def on_bar(self, ctx: BarContext, target: FloatArray) -> None:
        """Update every indicator with the bar and write the technical features."""
        out: list[float] = [NAN] * _N_SPECS  # list item writes are ~10x cheaper than numpy's; copied once
        bar = ctx.bar
        o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
        self._recursive(h, lo, c, out)
        self._push_terms(o, h, lo, c, v)
        hist = ctx.hist
        closes = hist.close
        for lag, k in self._i_ret:
            past = closes.newest(lag)
            if past == past:
                out[k] = math.log(c / past)
        self._close_stats(c, closes, out)
        self._return_stats(out)
        self._range_stats(hist.high.last(max(_HL_N)), hist.low.last(max(_HL_N)), c, out)
        self._volume_stats(c, out)
        self._bar_shape(o, h, lo, c, out)
        self._session_stats(ctx, c, out)
        self._prev_close, self._prev_high, self._prev_low = c, h, lo
        target[:] = out

    def _recursive(self, h: float, lo: float, c: float, out: list[float]) -> None:
        pc = self._prev_close
        first = pc != pc
        tr = h - lo if first else max(h - lo, abs(h - pc), abs(lo - pc))
        for w, k, k_pct in self._atr:
            atr = w.update(tr)
            out[k] = atr
            out[k_pct] = atr / c
        self.atr14 = self._atr14.value
        if not first:
            change = c - pc
            gain = change if change > 0.0 else 0.0
            loss = -change if change < 0.0 else 0.0
            for wg, wl, k in self._rsi:
                g = wg.update(gain)
                lv = wl.update(loss)
                if g == g and lv == lv:
                    out[k] = (50.0 if g == 0.0 else 100.0) if lv == 0.0 else 100.0 - 100.0 / (1.0 + g / lv)
            up = h - self._prev_high
            down = self._prev_low - lo
            dm_p = up if up > down and up > 0.0 else 0.0
            dm_m = down if down > up and down > 0.0 else 0.0
            for adx, k_adx, k_p, k_m in self._adx:
                adx.update(tr, dm_p, dm_m)
                out[k_adx] = adx.adx
                out[k_p] = adx.plus_di
                out[k_m] = adx.minus_di
        for ema, n, k in self._ema:
            value = ema.update(c)
            if ema.count >= n:
                out[k] = c / value - 1.0
        for fast, slow, sig, warm, k_m, k_s, k_h in self._macd:
            macd = (fast.update(c) - slow.update(c)) / c
            signal = sig.update(macd)
            if slow.count >= warm:
                out[k_m] = macd
                out[k_s] = signal
                out[k_h] = macd - signal

    def _view(self, name: str, windows: tuple[int, ...]) -> SeriesView:
        return SeriesView(self._sums, _SERIES[name], windows)

    def _push_terms(self, o: float, h: float, lo: float, c: float, v: float) -> None:
        """One row of per-bar terms into the rolling sums (placeholders 0 before a series starts)."""
        row = self._row
        log_hl = math.log(h / lo)
        log_co = math.log(c / o)
        row[0] = log_hl * log_hl
        row[1] = 0.5 * log_hl * log_hl - _GK_C * log_co * log_co
        row[2] = math.log(h / c) * math.log(h / o) + math.log(lo / c) * math.log(lo / o)
        tp = (h + lo + c) / 3.0
        self._tp.push(tp)
        row[3] = tp * v
        row[4] = v
        self._lnv.push(math.log1p(v))
        self._closes.push(c)
        self._lr.push(math.log(c))
        sums = self._sums
        ptp = self._prev_tp
        if ptp == ptp:
            flow = tp * v
            row[5] = flow if tp > ptp else 0.0
            row[6] = flow if tp < ptp else 0.0
        self._prev_tp = tp
        pc = self._prev_close
        if pc == pc:
            if sums.count == 1:
                for name in _STARTS_AT_BAR_2:
                    sums.start(_SERIES[name])
            r = math.log(c / pc)
            r2 = r * r
            row[12], row[13], row[14], row[15] = r, r2, r2 * r, r2 * r2
            dc = c - pc
            row[9] = abs(dc)
            row[10] = dc
            if v > 0.0:
                row[7] = abs(r) / (v * c) * 1e6
                row[8] = 1.0
            else:
                row[7] = row[8] = 0.0
            if self._prev_r == self._prev_r:
                if sums.count == 2:
                    sums.start(_SERIES["rlag"])
                    sums.start(_SERIES["dclag"])
                row[16] = r * self._prev_r
                row[11] = dc * self._prev_dc
            self._prev_r = r
            self._prev_dc = dc
        sums.push(row)

    def _close_stats(self, c: float, closes: Ring, out: list[float]) -> None:
        cm = self._closes
        cj = self._cj
        for n in SMA_N:
            m = cm.mean(cj[n])
            if m == m:
                out[_POS["sma_dist_{}"][n]] = c / m - 1.0
        for n in BB_N:
            m = cm.mean(cj[n])
            if m == m:
                s = cm.std(cj[n])
                out[_POS["bb_width_{}"][n]] = 4.0 * s / m
                out[_POS["bb_pctb_{}"][n]] = (c - (m - 2.0 * s)) / (4.0 * s) if s > 0.0 else 0.5
        for n in Z_N:
            m = cm.mean(cj[n])
            if m == m:
                s = cm.std(cj[n])
                out[_POS["zscore_close_{}"][n]] = (c - m) / s if s > 0.0 else 0.0
        paths = self._absdc.totals()
        closes_seen = cm.count
        for j, n in enumerate(ER_N):
            path = paths[j]
            if path == path and closes_seen > n:
                past = closes.newest(n)
                out[_POS["efficiency_ratio_{}"][n]] = abs(c - past) / path if path > 0.0 else 0.0
        for j, n in enumerate(LR_N):
            slope, r2 = self._lr.slope_r2(j)
            if slope == slope:
                out[_POS["linreg_slope_{}"][n]] = slope
                out[_POS["linreg_r2_{}"][n]] = r2
        tps = self._tp.last(max(CCI_N))
        for n in CCI_N:
            if len(tps) >= n:
                window = tps[-n:]
                m = float(window.sum()) / n
                mad = float(np.abs(window - m).sum()) / n
                out[_POS["cci_{}"][n]] = (window[-1] - m) / (0.015 * mad) if mad > 0.0 else 0.0

    def _return_stats(self, out: list[float]) -> None:
        rj = self._rj
        r1, r2, r3, r4 = self._r1, self._r2, self._r3, self._r4
        t1, t2, t3, t4 = r1.totals(), r2.totals(), r3.totals(), r4.totals()
        valid = r2.count
        longest = _RET_N[-1] if valid >= _RET_N[-1] else max((w for w in _RET_N if valid >= w), default=0)
        scale = t2[rj[longest]] / longest if longest else 0.0  # the sums' rounding scale
        rv = _POS["rv_{}"]
        for n in RV_N:
            j = rj[n]
            s1 = t1[j]
            if s1 == s1:
                m = s1 / n
                s2 = t2[j]
                var = (s2 - n * m * m) / (n - 1)
                out[rv[n]] = 0.0 if flat_variance(var, max(scale, s2 / n)) else math.sqrt(var)
        for n in MOM_N:
            j = rj[n]
            s1 = t1[j]
            if s1 != s1:
                continue
            m1 = s1 / n
            e2 = t2[j] / n
            e3 = t3[j] / n
            e4 = t4[j] / n
            var = e2 - m1 * m1
            if flat_variance(var, max(scale, e2)):
                out[_POS["skew_{}"][n]] = 0.0
                out[_POS["kurt_{}"][n]] = 0.0
                continue
            m3 = e3 - 3.0 * m1 * e2 + 2.0 * m1**3
            m4 = e4 - 4.0 * m1 * e3 + 6.0 * m1 * m1 * e2 - 3.0 * m1**4
            out[_POS["skew_{}"][n]] = m3 / var**1.5
            out[_POS["kurt_{}"][n]] = m4 / (var * var) - 3.0
        lags = self._rlag.totals()
        for j, n in enumerate(AC_N):
            sab = lags[j]
            if sab != sab or valid < n + 1:
                continue
            k = rj[n]
            sa = t1[k]
            saa = t2[k]
            newest = r1.value(0)
            oldest_prev = r1.value(n)
            sb = sa - newest + oldest_prev
            sbb = saa - newest * newest + oldest_prev * oldest_prev
            out[_POS["autocorr1_{}"][n]] = _pair_corr(sab, sa, sb, saa, sbb, n)

    def _range_stats(self, highs: FloatArray, lows: FloatArray, c: float, out: list[float]) -> None:
        hh = window_extremes(highs, _HL_N, highest=True)
        ll = window_extremes(lows, _HL_N, highest=False)
        ext = dict(zip(_HL_N, zip(hh, ll, strict=True), strict=True))
        for j, n in enumerate(STOCH_N):
            top, bottom = ext[n]
            if top == top:
                k = 100.0 * (c - bottom) / (top - bottom) if top > bottom else 50.0
                out[_POS["stoch_k_{}"][n]] = k
                ring = self._stoch_k[j]
                ring.push(k)
                if ring.count >= 3:
                    out[_POS["stoch_d_{}"][n]] = (ring.newest(0) + ring.newest(1) + ring.newest(2)) / 3.0
        for n in DON_N:
            top, bottom = ext[n]
            if top == top:
                out[_POS["donchian_pos_{}"][n]] = (c - bottom) / (top - bottom) if top > bottom else 0.5
        for n in HHLL_N:
            top, bottom = ext[n]
            if top == top:
                out[_POS["hh_dist_{}"][n]] = math.log(top / c)
                out[_POS["ll_dist_{}"][n]] = math.log(c / bottom)
        for name, sums in self._range.items():
            positions = _POS[name + "_{}"]
            scale = 4.0 * _LN2 if name == "parkinson" else 1.0
            for n, total in zip(RANGE_VOL_N, sums.totals(), strict=True):
                if total == total:
                    mean = total / n / scale
                    out[positions[n]] = math.sqrt(mean) if mean > 0.0 else 0.0

    def _volume_stats(self, c: float, out: list[float]) -> None:
        vol = self._vol
        vj = self._vj
        for j, n in enumerate(VWAP_N):
            tpv = self._tpv.total(j)
            if tpv == tpv:
                total = vol.sum_at(vj[n])
                out[_POS["vwap_dist_{}"][n]] = c / (tpv / total) - 1.0 if total > 0.0 else 0.0
        lnv = self._lnv
        newest = math.log1p(vol.value(0))
        for j, n in enumerate(VOLZ_N):
            m = lnv.mean(j)
            if m == m:
                s = lnv.std(j)
                out[_POS["vol_zscore_{}"][n]] = (newest - m) / s if s > 0.0 else 0.0
        for a, b in VOL_RATIO:
            long = vol.total(vj[b])
            if long == long:
                den = long / b
                out[_POS["volume_ratio_{}_" + str(b)][a]] = (vol.sum_at(vj[a]) / a) / den if den > 0.0 else 1.0
        for j, n in enumerate(MFI_N):
            p = self._mf_pos.total(j)
            if p == p:
                q = self._mf_neg.sum_at(j)
                out[_POS["mfi_{}"][n]] = (100.0 if p > 0.0 else 50.0) if q == 0.0 else 100.0 - 100.0 / (1.0 + p / q)
        for j, n in enumerate(AMIHUD_N):
            total = self._amihud.total(j)
            ok = self._amihud_ok.sum_at(j)
            if total == total and ok > 0.0:
                out[_POS["amihud_{}"][n]] = total / ok
        dc = self._dc
        for j, n in enumerate(ROLL_N):
            sab = self._dclag.total(j)
            if sab != sab or dc.count < n + 1:
                continue
            newest = dc.value(0)
            window_plus = dc.sum_at(j)  # newest n + 1 changes
            sa = window_plus - dc.value(n)
            sb = window_plus - newest
            cov = sab / n - (sa / n) * (sb / n)
            out[_POS["roll_spread_{}"][n]] = 2.0 * math.sqrt(-cov) / c * 1e4 if cov < 0.0 else 0.0

    def _bar_shape(self, o: float, h: float, lo: float, c: float, out: list[float]) -> None:
        rng = h - lo
        out[INDEX["bar_return"]] = math.log(c / o)
        atr = self.atr14
        if atr == atr:
            out[INDEX["range_atr_ratio"]] = rng / atr if atr > 0.0 else 0.0
        if rng > 0.0:
            out[INDEX["body_ratio"]] = (c - o) / rng
            out[INDEX["upper_wick_ratio"]] = (h - max(o, c)) / rng
            out[INDEX["lower_wick_ratio"]] = (min(o, c) - lo) / rng
            out[INDEX["close_location"]] = (c - lo) / rng
        else:
            out[INDEX["body_ratio"]] = 0.0
            out[INDEX["upper_wick_ratio"]] = 0.0
            out[INDEX["lower_wick_ratio"]] = 0.0
            out[INDEX["close_location"]] = 0.5

    def _session_stats(self, ctx: BarContext, c: float, out: list[float]) -> None:
        hist = ctx.hist
        out[INDEX["session_return"]] = math.log(c / hist.session_open_px)
        if hist.prev_session_close == hist.prev_session_close:
            out[INDEX["gap_prev_session"]] = math.log(hist.session_open_px / hist.prev_session_close)
            out[INDEX["prev_session_return"]] = math.log(hist.prev_session_close / hist.prev_session_open)
        out[INDEX["session_high_dist"]] = math.log(hist.session_high / c)
        out[INDEX["session_low_dist"]] = math.log(c / hist.session_low)
        atr = self.atr14
        if atr == atr:
            rng = hist.session_high - hist.session_low
            out[INDEX["session_range_atr"]] = rng / atr if atr > 0.0 else 0.0
        if hist.session_vol > 0.0:
            out[INDEX["vwap_dist_session"]] = c / (hist.session_pv / hist.session_vol) - 1.0
        else:
            out[INDEX["vwap_dist_session"]] = 0.0
