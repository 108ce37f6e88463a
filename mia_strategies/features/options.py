"""Options positioning from ``OptionChainSnapshot``: implied volatility, skew, dealer gamma, walls, max pain.

The heavy work happens once per snapshot (``analyse_chain``); each bar then reads the analysis and
measures distances from its own close. Chain levels are in the chain's underlying units (SPX points
for an index chain); distances convert them with the ratio of the instrument's close to the chain's
underlying price at the first bar that saw the snapshot, so an SPX wall maps onto ES prices.

Greeks follow Black's model with zero rates (futures options) when the chain does not carry them;
dealer positioning follows the usual convention (dealers long calls, short puts: calls add gamma,
puts subtract it). A chain with no strike near the money, or missing IV/open interest, leaves the
features that need them NaN and logs why; it never stops the pipeline. Formulas: ``docs/features.md``.
"""

import math
from dataclasses import dataclass
from dataclasses import field

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

from mia_strategies.features.core import MAX_INPUT
from mia_strategies.features.core import MIN_INPUT
from mia_strategies.features.core import NS_PER_DAY
from mia_strategies.features.core import NS_PER_MINUTE
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.core import valid_price
from mia_strategies.features.params import OptionsParams
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray


FAMILY = "options"
_O = ("options",)
_OB = ("options", "bars")
KEY_STRIKES = 5
_YEAR_NS = 365.0 * NS_PER_DAY
_SQRT_2PI = math.sqrt(2.0 * math.pi)

SPECS = SpecList(FAMILY)
SPECS.add("call_iv_atm", _O, 1, "implied vol of calls at the money (linear in strike), nearest qualifying expiry")
SPECS.add("put_iv_atm", _O, 1, "implied vol of puts at the money, same expiry")
SPECS.add("iv_atm", _O, 1, "mean of call_iv_atm and put_iv_atm")
SPECS.add("option_skew", _O, 1, "put IV at 0.95 S - call IV at 1.05 S, same expiry")
SPECS.add("option_skew_25d", _O, 1, "IV of the -25 delta put - IV of the +25 delta call, same expiry")
SPECS.add("iv_term_slope", _O, 1, "ATM IV of the next qualifying expiry - ATM IV of the first")
SPECS.add("expected_move_1d", _O, 1, "iv_atm / sqrt(252): one-day implied move as a fraction of the underlying")
SPECS.add("gex", _O, 1, "net dealer gamma exposure, $ millions per 1% move: sum(sign gamma OI mult S^2 0.01)")
SPECS.add("gex_call", _O, 1, "call part of gex, $ millions per 1% move")
SPECS.add("gex_put", _O, 1, "put part of gex (negative), $ millions per 1% move")
SPECS.add("net_gamma", _O, 1, "sum(sign gamma OI) / sum(gamma OI): share of dealer gamma that is long, -1..1")
SPECS.add("zero_gamma", _O, 1, "underlying level where gex changes sign nearest the spot (chain units)")
SPECS.add("zero_gamma_distance", _OB, 1, "ln(zero_gamma mapped to the instrument / C)")
SPECS.add("call_wall", _O, 1, "strike with the largest call gamma exposure (chain units)")
SPECS.add("call_wall_distance", _OB, 1, "ln(call_wall mapped to the instrument / C)")
SPECS.add("put_wall", _O, 1, "strike with the largest put gamma exposure (chain units)")
SPECS.add("put_wall_distance", _OB, 1, "ln(put_wall mapped to the instrument / C)")
SPECS.add("max_pain_strike", _O, 1, "strike minimising option holders' payoff at the nearest expiry with open interest")
SPECS.add("max_pain_distance", _OB, 1, "ln(max_pain_strike mapped to the instrument / C)")
for _k in range(1, KEY_STRIKES + 1):
    SPECS.add(f"key_strikes_{_k}", _O, 1, f"strike with the {_k}. largest total |gamma exposure| (chain units)")
SPECS.add("key_strike_nearest_distance", _OB, 1, "ln(key strike nearest the close, mapped / C)")
SPECS.add("put_call_oi_ratio", _O, 1, "put open interest / call open interest")
SPECS.add("put_call_volume_ratio", _O, 1, "put volume / call volume")
SPECS.add("chain_age_minutes", _O, 1, "minutes since the snapshot in use")
SPECS.add("chain_strikes", _O, 1, "distinct strikes in the snapshot within the expiry range")
SPECS.add("atm_strike_gap", _O, 1, "|nearest strike - underlying| / underlying")
INDEX = SPECS.index()

_LEVELS = ("zero_gamma", "call_wall", "put_wall", "max_pain_strike")


# -- Black's model (zero rates) ---------------------------------------------------------------------


def black_price(forward: float, strike: float, vol: float, years: float, right: int) -> float:
    """Undiscounted Black price of a call (right +1) or put (-1)."""
    if vol <= 0.0 or years <= 0.0:
        return max(0.0, right * (forward - strike))
    sd = vol * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if right > 0:
        return forward * float(ndtr(d1)) - strike * float(ndtr(d2))
    return strike * float(ndtr(-d2)) - forward * float(ndtr(-d1))


def black_gamma(forward: FloatArray, strike: FloatArray, vol: FloatArray, years: FloatArray) -> FloatArray:
    """Black gamma (per point of the underlying), vectorised; NaN where an input is unusable."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = vol * np.sqrt(years)
        d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
        gamma = np.exp(-0.5 * d1 * d1) / _SQRT_2PI / (forward * sd)
    return np.where((vol > 0) & (years > 0) & (strike > 0) & (forward > 0), gamma, np.nan)


def black_delta(
    forward: FloatArray, strike: FloatArray, vol: FloatArray, years: FloatArray, right: FloatArray
) -> FloatArray:
    """Black delta: N(d1) for calls, N(d1) - 1 for puts; NaN where an input is unusable."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = vol * np.sqrt(years)
        d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
        delta = ndtr(d1) - (right < 0)
    return np.where((vol > 0) & (years > 0) & (strike > 0) & (forward > 0), delta, np.nan)


def implied_vol(price: float, forward: float, strike: float, years: float, right: int) -> float:
    """Black implied volatility by Brent's method on [0.1%, 500%]; NaN outside the arbitrage bounds."""
    if not (price > 0.0 and forward > 0.0 and strike > 0.0 and years > 0.0):
        return NAN
    intrinsic = max(0.0, right * (forward - strike))
    upper = forward if right > 0 else strike
    if price <= intrinsic + 1e-12 or price >= upper:
        return NAN
    lo, hi = 1e-3, 5.0
    f_lo = black_price(forward, strike, lo, years, right) - price
    f_hi = black_price(forward, strike, hi, years, right) - price
    if f_lo > 0.0 or f_hi < 0.0:
        return NAN
    return float(brentq(lambda v: black_price(forward, strike, v, years, right) - price, lo, hi, xtol=1e-10))


# -- analysis of one snapshot ----------------------------------------------------------------------


@dataclass
class ChainAnalytics:
    """Everything the options family needs from one snapshot, computed when it arrives."""

    ts: int
    underlying: float
    values: dict[str, float] = field(default_factory=dict)
    key_strikes: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _interp(x: FloatArray, y: FloatArray, at: float) -> float:
    """Linear interpolation of ``y`` at ``at`` over sorted ``x``; NaN outside the range."""
    if len(x) == 0 or at < x[0] or at > x[-1]:
        return NAN
    return float(np.interp(at, x, y))


def _iv_at(strikes: FloatArray, ivs: FloatArray, at: float) -> float:
    ok = np.isfinite(ivs)
    xs = strikes[ok]
    if len(xs) == 0:
        return NAN
    order = np.argsort(xs, kind="stable")
    return _interp(xs[order], ivs[ok][order], at)


def analyse_chain(
    ts: int,
    underlying: float,
    expiries_ns: FloatArray,
    strikes: FloatArray,
    rights: FloatArray,
    ivs: FloatArray,
    deltas: FloatArray,
    gammas: FloatArray,
    open_interest: FloatArray,
    volumes: FloatArray,
    multiplier: float,
    params: OptionsParams,
) -> ChainAnalytics:
    """Positioning analytics of one chain snapshot (pure function of its arrays)."""
    out = ChainAnalytics(ts=ts, underlying=underlying)
    v = out.values
    if not valid_price(underlying):
        out.warnings.append("underlying price missing: options features are NaN")
        return out
    arrays = (expiries_ns, strikes, rights, ivs, deltas, gammas, open_interest, volumes)
    if len({len(a) for a in arrays}) != 1:
        out.warnings.append("chain arrays of different lengths: options features are NaN")
        return out
    ivs, deltas, gammas, open_interest, volumes, bad = _sanitised(ivs, deltas, gammas, open_interest, volumes)
    years = (expiries_ns - ts) / _YEAR_NS
    days = years * 365.0
    usable_strike = (strikes >= MIN_INPUT) & (strikes <= MAX_INPUT)
    bad += int(np.count_nonzero(~usable_strike))
    if bad:
        out.warnings.append(f"{bad} non-finite or out-of-range values treated as missing")
    live = np.isfinite(years) & (days > 0.0) & (days <= params.max_days_to_expiry) & usable_strike
    if not live.any():
        out.warnings.append(f"no option expires within {params.max_days_to_expiry:g} days: options features are NaN")
        return out
    e, k, r = expiries_ns[live], strikes[live], rights[live]
    iv, dl, gm = ivs[live], deltas[live], gammas[live]
    oi, vol, yrs = open_interest[live], volumes[live], years[live]
    days = days[live]
    s = underlying
    # greeks from IV where the chain has none
    gm = np.where(np.isfinite(gm), gm, black_gamma(np.full_like(k, s), k, iv, yrs))
    dl = np.where(np.isfinite(dl), dl, black_delta(np.full_like(k, s), k, iv, yrs, r))
    unique = np.unique(k)
    v["chain_strikes"] = float(len(unique))
    v["atm_strike_gap"] = float(np.min(np.abs(unique - s)) / s)
    _atm_and_skew(out, s, e, k, r, iv, dl, days, params)
    _gamma_exposure(out, s, k, r, iv, gm, oi, yrs, multiplier, params)
    _max_pain(out, e, k, r, oi, days, params)
    call_oi = float(np.nansum(np.where(r > 0, oi, np.nan))) if np.isfinite(oi[r > 0]).any() else NAN
    put_oi = float(np.nansum(np.where(r < 0, oi, np.nan))) if np.isfinite(oi[r < 0]).any() else NAN
    v["put_call_oi_ratio"] = put_oi / call_oi if call_oi == call_oi and call_oi > 0 and put_oi == put_oi else NAN
    call_vol = float(np.nansum(vol[r > 0])) if np.isfinite(vol[r > 0]).any() else NAN
    put_vol = float(np.nansum(vol[r < 0])) if np.isfinite(vol[r < 0]).any() else NAN
    v["put_call_volume_ratio"] = (
        put_vol / call_vol if call_vol == call_vol and call_vol > 0 and put_vol == put_vol else NAN
    )
    return out


def _sanitised(
    ivs: FloatArray, deltas: FloatArray, gammas: FloatArray, oi: FloatArray, volumes: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, int]:
    """The per-option arrays with unusable entries (NaN excepted) set to NaN, and how many were unusable.

    An IV outside 0.01%..1000% or a negative open interest is corrupt, not a market: it becomes missing,
    so it can never overflow the exposure sums or pass for a real value.
    """
    with np.errstate(invalid="ignore"):
        keep = (
            (ivs >= 1e-4) & (ivs <= 10.0),
            np.abs(deltas) <= 1.0,
            (gammas >= 0.0) & (gammas <= MAX_INPUT),
            (oi >= 0.0) & (oi <= MAX_INPUT),
            (volumes >= 0.0) & (volumes <= MAX_INPUT),
        )
    out = []
    bad = 0
    for values, ok in zip((ivs, deltas, gammas, oi, volumes), keep, strict=True):
        values = np.asarray(values, dtype=np.float64)
        wrong = ~ok & ~np.isnan(values)
        bad += int(np.count_nonzero(wrong))
        out.append(np.where(ok, values, np.nan))
    return out[0], out[1], out[2], out[3], out[4], bad


def _atm_and_skew(
    out: ChainAnalytics,
    s: float,
    e: FloatArray,
    k: FloatArray,
    r: FloatArray,
    iv: FloatArray,
    dl: FloatArray,
    days: FloatArray,
    params: OptionsParams,
) -> None:
    v = out.values
    atm: list[tuple[float, float]] = []
    first_expiry = NAN
    for expiry in np.unique(e):
        sel = e == expiry
        if float(days[sel][0]) < params.min_days_to_expiry:
            continue
        calls = sel & (r > 0)
        puts = sel & (r < 0)
        near = np.abs(k[sel & np.isfinite(iv)] - s)
        if len(near) == 0 or float(near.min()) > params.atm_tolerance * s:
            continue
        call_iv = _iv_at(k[calls], iv[calls], s)
        put_iv = _iv_at(k[puts], iv[puts], s)
        if call_iv != call_iv or put_iv != put_iv:
            continue
        atm.append((call_iv, put_iv))
        if len(atm) == 1:
            first_expiry = float(expiry)
            v["call_iv_atm"] = call_iv
            v["put_iv_atm"] = put_iv
            v["iv_atm"] = 0.5 * (call_iv + put_iv)
            v["expected_move_1d"] = v["iv_atm"] / math.sqrt(252.0)
            v["option_skew"] = _iv_at(k[puts], iv[puts], 0.95 * s) - _iv_at(k[calls], iv[calls], 1.05 * s)
            v["option_skew_25d"] = _skew_25d(dl, iv, calls, puts)
        if len(atm) == 2:
            v["iv_term_slope"] = 0.5 * (atm[1][0] + atm[1][1]) - v["iv_atm"]
            break
    if first_expiry != first_expiry:
        out.warnings.append(
            f"no expiry of at least {params.min_days_to_expiry:g} days has call and put IVs within "
            f"{params.atm_tolerance:.0%} of the underlying {s:g}: ATM IV and skew are NaN",
        )


def _skew_25d(dl: FloatArray, iv: FloatArray, calls: FloatArray, puts: FloatArray) -> float:
    def at(mask: FloatArray, target: float) -> float:
        ok = mask & np.isfinite(dl) & np.isfinite(iv)
        if ok.sum() < 2:
            return NAN
        x = dl[ok]
        order = np.argsort(x, kind="stable")
        return _interp(x[order], iv[ok][order], target)

    return at(puts, -0.25) - at(calls, 0.25)


def _gamma_exposure(
    out: ChainAnalytics,
    s: float,
    k: FloatArray,
    r: FloatArray,
    iv: FloatArray,
    gm: FloatArray,
    oi: FloatArray,
    yrs: FloatArray,
    multiplier: float,
    params: OptionsParams,
) -> None:
    v = out.values
    ok = np.isfinite(gm) & np.isfinite(oi)
    if not ok.any():
        out.warnings.append("no option has both gamma and open interest: gamma exposure, walls and key strikes are NaN")
        return
    sign = np.where(r > 0, 1.0, -1.0)
    exposure = np.where(ok, gm * np.nan_to_num(oi) * multiplier * s * s * 0.01, 0.0)
    v["gex_call"] = float(exposure[r > 0].sum()) / 1e6
    v["gex_put"] = -float(exposure[r < 0].sum()) / 1e6
    v["gex"] = v["gex_call"] + v["gex_put"]
    raw = np.where(ok, gm * np.nan_to_num(oi), 0.0)
    total = float(raw.sum())
    v["net_gamma"] = float((sign * raw).sum()) / total if total > 0.0 else 0.0
    strikes = np.unique(k[ok])
    call_by = np.array([exposure[(k == x) & (r > 0)].sum() for x in strikes])
    put_by = np.array([exposure[(k == x) & (r < 0)].sum() for x in strikes])
    if call_by.max() > 0.0:
        v["call_wall"] = float(strikes[int(np.argmax(call_by))])
    if put_by.max() > 0.0:
        v["put_wall"] = float(strikes[int(np.argmax(put_by))])
    total_by = call_by + put_by
    order = np.lexsort((strikes, -total_by))
    out.key_strikes = [float(strikes[i]) for i in order[:KEY_STRIKES] if total_by[i] > 0.0]
    # zero gamma: gex as a function of a hypothetical spot
    usable = ok & np.isfinite(iv) & (iv > 0)
    if usable.any():
        grid = s * np.linspace(1.0 - params.zero_gamma_range, 1.0 + params.zero_gamma_range, 121)
        kk, vv, yy = k[usable], iv[usable], yrs[usable]
        weight = sign[usable] * oi[usable] * multiplier * 0.01
        g = black_gamma(grid[:, None], kk[None, :], vv[None, :], yy[None, :])
        curve = np.nansum(g * weight[None, :], axis=1) * grid * grid
        flips = np.flatnonzero(np.sign(curve[:-1]) * np.sign(curve[1:]) < 0)
        if len(flips):
            x0, x1 = grid[flips], grid[flips + 1]
            y0, y1 = curve[flips], curve[flips + 1]
            levels = x0 - y0 * (x1 - x0) / (y1 - y0)
            v["zero_gamma"] = float(levels[int(np.argmin(np.abs(levels - s)))])


def _max_pain(
    out: ChainAnalytics,
    e: FloatArray,
    k: FloatArray,
    r: FloatArray,
    oi: FloatArray,
    days: FloatArray,
    params: OptionsParams,
) -> None:
    for expiry in np.unique(e):
        sel = (e == expiry) & np.isfinite(oi)
        if not sel.any() or float(days[e == expiry][0]) < params.min_days_to_expiry:
            continue
        ks, rs, ois = k[sel], r[sel], oi[sel]
        candidates = np.unique(ks)
        calls = rs > 0
        pain = np.array(
            [
                float(np.sum(ois[calls] * np.maximum(0.0, x - ks[calls])))
                + float(np.sum(ois[~calls] * np.maximum(0.0, ks[~calls] - x)))
                for x in candidates
            ],
        )
        out.values["max_pain_strike"] = float(candidates[int(np.argmin(pain))])
        return


# -- the family ------------------------------------------------------------------------------------


class OptionsState:
    """Per instrument: which chain it follows and the price ratio that maps chain levels onto it."""

    def __init__(self, info: InstrumentInfo, params: OptionsParams) -> None:
        keys = [info.instrument_id]
        alias = params.underlyings.get(info.root)
        if alias:
            keys.append(alias)
        self._keys = tuple(keys)
        self._max_age_ns = int(params.max_age_days * NS_PER_DAY)
        self._seen_ts = -1
        self._ratio = NAN

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the options features from the newest fresh snapshot of this instrument's chain."""
        ts = ctx.bar.ts_event
        chain = None
        for key in self._keys:
            candidate = ctx.shared.chains.get(key)
            if candidate is not None and ts - candidate.ts <= self._max_age_ns:
                chain = candidate
                break
        if chain is None:
            return
        if chain.ts != self._seen_ts:
            self._seen_ts = chain.ts
            self._ratio = ctx.bar.close / chain.underlying if chain.underlying > 0.0 else NAN
        for name, value in chain.values.items():
            out[INDEX[name]] = value
        for j, strike in enumerate(chain.key_strikes):
            out[INDEX[f"key_strikes_{j + 1}"]] = strike
        out[INDEX["chain_age_minutes"]] = (ts - chain.ts) / NS_PER_MINUTE
        ratio = self._ratio
        close = ctx.bar.close
        if ratio == ratio:
            for name in _LEVELS:
                level = chain.values.get(name, NAN)
                if level == level:
                    out[INDEX[f"{name.removesuffix('_strike')}_distance"]] = math.log(level * ratio / close)
            if chain.key_strikes:
                nearest = min(chain.key_strikes, key=lambda x: abs(x * ratio - close))
                out[INDEX["key_strike_nearest_distance"]] = math.log(nearest * ratio / close)
