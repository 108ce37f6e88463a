"""Macro-calendar features: time to and from scheduled releases, how many are near, how much they move markets.

The calendar holds every ``MacroEvent`` seen so far (the calendar file loaded at start and any
events that arrive as data). An event counts at bar time ``t`` only once it is known
(``ts_init <= t``), so a rescheduled or unscheduled release never leaks into earlier bars. With no
calendar at all every macro feature is NaN; with a calendar, "no event ahead" leaves the
minutes-to features NaN (unknown) while counts and impact are 0.
"""

import bisect
import math
from dataclasses import dataclass

from catalog.macro import category_of
from mia_strategies import sessions
from mia_strategies.features.core import NS_PER_MINUTE
from mia_strategies.features.core import BarContext
from mia_strategies.features.params import MacroParams
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray


FAMILY = "macro"
_M = ("macro",)
_DAY_MIN = 1440

SPECS = SpecList(FAMILY)
SPECS.add("minutes_to_next_high_impact", _M, 1, "minutes to the next known importance-3 release (FOMC, CPI, NFP, ...)")
SPECS.add("minutes_since_last_high_impact", _M, 1, "minutes since the last importance-3 release")
SPECS.add("minutes_to_next_fomc", _M, 1, "minutes to the next known FOMC decision")
SPECS.add("minutes_to_next_cpi", _M, 1, "minutes to the next known CPI release")
SPECS.add("minutes_to_next_nfp", _M, 1, "minutes to the next known employment report (NFP)")
SPECS.add("minutes_to_next_event", _M, 1, "minutes to the next known release of importance 2 or 3")
SPECS.add("event_frequency_24h", _M, 1, "known releases in the next 24 hours")
SPECS.add("event_frequency_past_24h", _M, 1, "releases in the last 24 hours")
SPECS.add("event_volatility_impact", _M, 1, "sum of release impact x 0.5^(|minutes away| / 90) within 6 hours")
SPECS.add("high_impact_within_60m", _M, 1, "1 when an importance-3 release is within 60 minutes either side")
SPECS.add("is_event_day", _M, 1, "1 when an importance-3 release falls on the bar's trading day")
SPECS.add("event_importance_next", _M, 1, "importance (1-3) of the next known release")
INDEX = SPECS.index()


@dataclass(frozen=True)
class CalendarEvent:
    """A release as the features see it."""

    ts: int
    known: int
    name: str
    category: str
    importance: int


class MacroCalendar:
    """Known releases sorted by time; reads are pure functions of the bar time."""

    def __init__(self, params: MacroParams) -> None:
        self._params = params
        self._events: list[CalendarEvent] = []
        self._times: list[int] = []
        self._keys: set[tuple[int, str]] = set()

    def __len__(self) -> int:
        return len(self._events)

    def add(self, ts: int, known: int, name: str, importance: int) -> None:
        """Add a release (the same time and name again is ignored: calendar file and data may overlap)."""
        key = (ts, name)
        if key in self._keys:
            return
        self._keys.add(key)
        event = CalendarEvent(ts, min(known, ts), name, category_of(name), max(1, min(3, int(importance))))
        i = bisect.bisect_right(self._times, ts)
        self._times.insert(i, ts)
        self._events.insert(i, event)

    def _impact(self, event: CalendarEvent) -> float:
        p = self._params
        by_category = p.impact_by_category.get(event.category)
        return by_category if by_category is not None else p.impact_by_importance.get(event.importance, 0.0)

    def write(self, ts: int, trading_day_ord: int, out: FloatArray) -> None:
        """Write the macro features at bar time ``ts``."""
        events = self._events
        if not events:
            return
        i = bisect.bisect_right(self._times, ts)
        nxt: dict[str, float] = {}
        next_any_importance = NAN
        horizon = ts + _DAY_MIN * NS_PER_MINUTE
        count_ahead = 0
        for event in events[i:]:
            if event.known > ts:
                continue
            if event.ts > horizon and len(nxt) >= 5:
                break
            minutes = (event.ts - ts) / NS_PER_MINUTE
            if event.ts <= horizon:
                count_ahead += 1
            if next_any_importance != next_any_importance:
                next_any_importance = float(event.importance)
            if event.importance >= 3:
                nxt.setdefault("high", minutes)
            if event.importance >= 2:
                nxt.setdefault("any", minutes)
            if event.category in ("FOMC", "CPI", "NFP"):
                nxt.setdefault(event.category, minutes)
        out[INDEX["minutes_to_next_high_impact"]] = nxt.get("high", NAN)
        out[INDEX["minutes_to_next_event"]] = nxt.get("any", NAN)
        out[INDEX["minutes_to_next_fomc"]] = nxt.get("FOMC", NAN)
        out[INDEX["minutes_to_next_cpi"]] = nxt.get("CPI", NAN)
        out[INDEX["minutes_to_next_nfp"]] = nxt.get("NFP", NAN)
        out[INDEX["event_importance_next"]] = next_any_importance
        out[INDEX["event_frequency_24h"]] = float(count_ahead)
        past_cut = ts - _DAY_MIN * NS_PER_MINUTE
        last_high = NAN
        count_past = 0
        for event in reversed(events[:i]):
            if event.ts <= past_cut and last_high == last_high:
                break
            if event.known > ts:
                continue
            if event.ts > past_cut:
                count_past += 1
            if event.importance >= 3 and last_high != last_high:
                last_high = (ts - event.ts) / NS_PER_MINUTE
        out[INDEX["minutes_since_last_high_impact"]] = last_high
        out[INDEX["event_frequency_past_24h"]] = float(count_past)
        p = self._params
        reach = int(p.impact_horizon_minutes * NS_PER_MINUTE)
        lo = bisect.bisect_left(self._times, ts - reach)
        hi = bisect.bisect_right(self._times, ts + reach)
        impact = 0.0
        near_high = 0.0
        for event in events[lo:hi]:
            if event.known > ts:
                continue
            away = abs(event.ts - ts) / NS_PER_MINUTE
            impact += self._impact(event) * math.pow(0.5, away / p.impact_half_width_minutes)
            if event.importance >= 3 and away <= 60.0:
                near_high = 1.0
        out[INDEX["event_volatility_impact"]] = impact
        out[INDEX["high_impact_within_60m"]] = near_high
        out[INDEX["is_event_day"]] = 1.0 if self._has_high_impact_on(trading_day_ord, ts) else 0.0

    def _has_high_impact_on(self, day_ord: int, ts: int) -> bool:
        lo = bisect.bisect_left(self._times, ts - 2 * _DAY_MIN * NS_PER_MINUTE)
        hi = bisect.bisect_right(self._times, ts + 2 * _DAY_MIN * NS_PER_MINUTE)
        for event in self._events[lo:hi]:
            if event.importance >= 3 and event.known <= ts and sessions.trading_day(event.ts).toordinal() == day_ord:
                return True
        return False


class MacroState:
    """Per instrument: reads the shared calendar."""

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the macro features at the bar close."""
        session = ctx.hist.session
        if session is not None:
            ctx.shared.macro.write(ctx.bar.ts_event, session.day.toordinal(), out)
