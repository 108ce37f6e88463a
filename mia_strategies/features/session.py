"""Time and session features: where the bar sits in the Globex day, the week, the month and the roll cycle.

All of them are functions of the bar's close time and the roll calendar, so they are defined from
the first bar. Times are exchange time (America/Chicago); the trading day is the day the Globex
session closes on (Sunday 17:00 CT opens Monday's session).
"""

import math

from mia_strategies.features.core import NS_PER_DAY
from mia_strategies.features.core import NS_PER_MINUTE
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray


FAMILY = "session"
SPECS = SpecList(FAMILY)
_C = ("clock",)
SPECS.add(
    "minutes_since_session_open", _C, 1, "minutes from the Globex open (17:00 CT the day before) to the bar close"
)
SPECS.add("minutes_to_session_close", _C, 1, "minutes from the bar close to the session close (16:00 CT halt)")
SPECS.add("session_progress", _C, 1, "share of the Globex session elapsed at the bar close, 0..1")
SPECS.add("is_rth", _C, 1, "1 when the bar closes within regular trading hours (08:30-15:00 CT], else 0")
SPECS.add("is_overnight", _C, 1, "1 when the bar closes outside RTH, else 0")
SPECS.add(
    "minutes_since_rth_open", _C, 1, "minutes from 08:30 CT of the trading day to the bar close (negative before)"
)
SPECS.add("minutes_to_rth_close", _C, 1, "minutes from the bar close to 15:00 CT of the trading day (negative after)")
SPECS.add("day_of_week", _C, 1, "trading day of week, 0 = Monday .. 4 = Friday")
SPECS.add("dow_sin", _C, 1, "sin(2 pi day_of_week / 5)")
SPECS.add("dow_cos", _C, 1, "cos(2 pi day_of_week / 5)")
SPECS.add("tod_sin", _C, 1, "sin(2 pi x session_progress)")
SPECS.add("tod_cos", _C, 1, "cos(2 pi x session_progress)")
SPECS.add("month_sin", _C, 1, "sin(2 pi (month - 1) / 12) of the trading day")
SPECS.add("month_cos", _C, 1, "cos(2 pi (month - 1) / 12) of the trading day")
SPECS.add("is_month_end", _C, 1, "1 on the last trading weekday of the month")
SPECS.add("is_opex_week", _C, 1, "1 from the Monday to the third Friday of the month (monthly option expiry week)")
SPECS.add("is_quad_witching", _C, 1, "1 on the third Friday of March, June, September, December")
SPECS.add("is_first_bar_of_session", _C, 1, "1 on the first bar of a trading day seen by this instrument")
SPECS.add(
    "roll_proximity_days", _C, 1, "days from the bar close to this contract's roll time (negative after the roll)"
)
SPECS.add("days_to_expiry", _C, 1, "days from the bar close to this contract's last trading time")
SPECS.add("is_roll_window", _C, 1, "1 within 2 days before this contract's roll time, else 0")
SPECS.add("is_active_contract", _C, 1, "1 when this contract is the active one of its root per the roll calendar")
INDEX = SPECS.index()

_TWO_PI = 2.0 * math.pi


class SessionState:
    """Stateless apart from the instrument's roll times (bar history holds the session)."""

    def __init__(self, info: InstrumentInfo) -> None:
        self._info = info

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the session features of the bar closing at ``ctx.bar.ts_event``."""
        ts = ctx.bar.ts_event
        session = ctx.hist.session
        if session is None:
            return
        length = session.close_ns - session.open_ns
        progress = (ts - session.open_ns) / length
        rth = session.rth_open_ns < ts <= session.rth_close_ns
        out[0] = (ts - session.open_ns) / NS_PER_MINUTE
        out[1] = (session.close_ns - ts) / NS_PER_MINUTE
        out[2] = progress
        out[3] = 1.0 if rth else 0.0
        out[4] = 0.0 if rth else 1.0
        out[5] = (ts - session.rth_open_ns) / NS_PER_MINUTE
        out[6] = (session.rth_close_ns - ts) / NS_PER_MINUTE
        out[7] = float(session.weekday)
        out[8] = math.sin(_TWO_PI * session.weekday / 5.0)
        out[9] = math.cos(_TWO_PI * session.weekday / 5.0)
        out[10] = math.sin(_TWO_PI * progress)
        out[11] = math.cos(_TWO_PI * progress)
        out[12] = math.sin(_TWO_PI * (session.month - 1) / 12.0)
        out[13] = math.cos(_TWO_PI * (session.month - 1) / 12.0)
        out[14] = 1.0 if session.is_month_end else 0.0
        out[15] = 1.0 if session.is_opex_week else 0.0
        out[16] = 1.0 if session.is_quad_witching else 0.0
        out[17] = 1.0 if ctx.hist.new_session else 0.0
        info = self._info
        if info.roll_ns is not None:
            days_to_roll = (info.roll_ns - ts) / NS_PER_DAY
            out[18] = days_to_roll
            out[20] = 1.0 if 0.0 < days_to_roll <= 2.0 else 0.0
            start = info.previous_roll_ns
            out[21] = 1.0 if (start is None or start <= ts) and ts < info.roll_ns else 0.0
        else:
            out[18] = out[20] = out[21] = NAN
        out[19] = (info.expiry_ns - ts) / NS_PER_DAY if info.expiry_ns is not None else NAN
