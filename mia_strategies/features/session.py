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
from mia_strategies.features.core import SessionInfo
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
    """Stateless apart from the instrument's roll times and the current session's constant values."""

    def __init__(self, info: InstrumentInfo) -> None:
        self._info = info
        self._session: SessionInfo | None = None
        self._calendar: list[float] = []

    def _calendar_of(self, session: SessionInfo) -> list[float]:
        """Features 7, 8, 9 and 12 to 16: constant over a session, so computed once per session."""
        if session is not self._session:
            self._session = session
            self._calendar = [
                float(session.weekday),
                math.sin(_TWO_PI * session.weekday / 5.0),
                math.cos(_TWO_PI * session.weekday / 5.0),
                math.sin(_TWO_PI * (session.month - 1) / 12.0),
                math.cos(_TWO_PI * (session.month - 1) / 12.0),
                1.0 if session.is_month_end else 0.0,
                1.0 if session.is_opex_week else 0.0,
                1.0 if session.is_quad_witching else 0.0,
            ]
        return self._calendar

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the session features of the bar closing at ``ctx.bar.ts_event`` (one slice assignment)."""
        ts = ctx.bar.ts_event
        hist = ctx.hist
        session = hist.session
        if session is None:
            return
        cal = self._calendar_of(session)
        open_ns = session.open_ns
        progress = (ts - open_ns) / (session.close_ns - open_ns)
        rth = session.rth_open_ns < ts <= session.rth_close_ns
        info = self._info
        roll = info.roll_ns
        if roll is not None:
            days_to_roll = (roll - ts) / NS_PER_DAY
            in_window = 1.0 if 0.0 < days_to_roll <= 2.0 else 0.0
            start = info.previous_roll_ns
            active = 1.0 if (start is None or start <= ts) and ts < roll else 0.0
        else:
            days_to_roll = in_window = active = NAN
        angle = _TWO_PI * progress
        out[:] = [
            (ts - open_ns) / NS_PER_MINUTE,
            (session.close_ns - ts) / NS_PER_MINUTE,
            progress,
            1.0 if rth else 0.0,
            0.0 if rth else 1.0,
            (ts - session.rth_open_ns) / NS_PER_MINUTE,
            (session.rth_close_ns - ts) / NS_PER_MINUTE,
            cal[0],
            cal[1],
            cal[2],
            math.sin(angle),
            math.cos(angle),
            cal[3],
            cal[4],
            cal[5],
            cal[6],
            cal[7],
            1.0 if hist.new_session else 0.0,
            days_to_roll,
            (info.expiry_ns - ts) / NS_PER_DAY if info.expiry_ns is not None else NAN,
            in_window,
            active,
        ]
