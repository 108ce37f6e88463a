"""The macro calendar: the shipped file of real release dates, its rules, and the macro features."""

import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from catalog.macro import category_of
from catalog.macro import ingest_macro_calendar
from catalog.macro import load_macro_calendar
from mia_strategies.errors import DataValidationError
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.sets import load_feature_sets


REPO = Path(__file__).resolve().parents[1]
CALENDAR = REPO / "config" / "macro_calendar.csv"
SETS = load_feature_sets(REPO / "config" / "feature_sets.yaml")
NAMES = SETS.resolve("ES.training").names
NY = ZoneInfo("America/New_York")


def _ns(text: str) -> int:
    return int(pd.Timestamp(text, tz=NY).tz_convert("UTC").value)


def test_shipped_calendar_holds_real_releases_for_the_data_years():
    events = load_macro_calendar(CALENDAR)
    by_time = {(e.ts_event, category_of(e.name)) for e in events}
    assert (_ns("2013-10-30 14:00"), "FOMC") in by_time
    assert (_ns("2013-12-18 14:00"), "FOMC") in by_time
    assert (_ns("2013-10-22 08:30"), "NFP") in by_time  # September 2013 report, delayed by the shutdown
    assert (_ns("2020-01-10 08:30"), "NFP") in by_time
    assert (_ns("2020-01-14 08:30"), "CPI") in by_time
    assert (_ns("2025-12-10 14:00"), "FOMC") in by_time  # inside the demo catalog's week
    assert all(e.importance == 3 for e in events)
    assert all(e.ts_init <= e.ts_event for e in events)
    delayed = next(e for e in events if e.ts_event == _ns("2013-10-22 08:30"))
    assert delayed.ts_init == _ns("2013-10-17 00:00")  # known only once the new date was announced
    unscheduled = next(e for e in events if e.ts_event == _ns("2020-03-15 17:00"))
    assert unscheduled.ts_init == unscheduled.ts_event


def test_categories():
    assert category_of("FOMC: rate decision") == "FOMC"
    assert category_of("Nonfarm payrolls") == "NFP"
    assert category_of("CPI: consumer price index") == "CPI"
    assert category_of("Housing starts") == "OTHER"


def test_bad_calendar_rows_are_reported_together(tmp_path):
    bad = tmp_path / "cal.csv"
    bad.write_text(
        "date,time,timezone,name,importance,country,known_from\n"
        "2024-13-01,08:30,America/New_York,CPI: x,3,US,\n"
        "2024-01-10,08:30,Mars/Base,CPI: x,3,US,\n"
        "2024-01-11,08:30,America/New_York,CPI: x,7,US,\n"
        "2024-01-12,08:30,America/New_York,CPI: x,3,US,2024-02-01\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError) as err:
        load_macro_calendar(bad)
    text = str(err.value)
    assert (
        "line 2" in text
        and "line 3" in text
        and "importance must be 1, 2 or 3" in text
        and "is after the release" in text
    )
    assert "\n" not in text


def _at(hub, when: str) -> dict[str, float]:
    ts = _ns(when)
    values = hub.on_bar("ESZ13.GLBX", BarInput(ts, ts, 1700.0, 1701.0, 1699.0, 1700.0, 10.0))
    return dict(zip(NAMES, values, strict=True))


def _calendar_hub(markets) -> FeatureHub:
    """A fresh hub per query: bars must come in time order, and these queries jump back and forth."""
    hub = FeatureHub(SETS, {"ES": "ES.training"}, markets, load_macro_calendar(CALENDAR))
    hub.register("ESZ13.GLBX")
    return hub


def test_macro_features_around_the_october_2013_fomc(markets):
    v = _at(_calendar_hub(markets), "2013-10-30 13:00")  # one hour before the FOMC statement; CPI came out at 08:30
    assert v["minutes_to_next_fomc"] == 60
    assert v["minutes_to_next_high_impact"] == 60
    assert v["minutes_since_last_high_impact"] == pytest.approx(4.5 * 60)
    assert v["is_event_day"] == 1.0
    assert v["high_impact_within_60m"] == 1.0
    expected = 2.5 * 0.5 ** (60 / 90) + 2.0 * 0.5 ** (270 / 90)
    assert v["event_volatility_impact"] == pytest.approx(expected)
    assert v["event_frequency_past_24h"] == 1 and v["event_frequency_24h"] == 1
    # 2013-10-15, mid-shutdown: the delayed NFP (Oct 22, announced Oct 17), the November NFP and the
    # delayed CPI (announced Oct 18) are not known yet; the next known releases are further out
    early = _at(_calendar_hub(markets), "2013-10-15 10:00")
    now = _ns("2013-10-15 10:00")
    assert early["minutes_to_next_high_impact"] == (_ns("2013-10-30 14:00") - now) / 60e9  # the FOMC
    assert early["minutes_to_next_nfp"] == (_ns("2013-12-06 08:30") - now) / 60e9
    assert early["minutes_to_next_cpi"] == (_ns("2013-12-17 08:30") - now) / 60e9
    later = _at(_calendar_hub(markets), "2013-10-21 10:00")  # after both announcements
    assert later["minutes_to_next_nfp"] == (_ns("2013-10-22 08:30") - _ns("2013-10-21 10:00")) / 60e9


def test_without_a_calendar_macro_features_are_nan(markets):
    hub = FeatureHub(SETS, {"ES": "ES.training"}, markets)
    hub.register("ESZ13.GLBX")
    v = _at(hub, "2013-10-30 13:00")
    assert math.isnan(v["minutes_to_next_high_impact"]) and math.isnan(v["event_volatility_impact"])


def test_calendar_ingests_as_macro_events(tmp_path):
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from catalog.types import MacroEvent

    count = ingest_macro_calendar(CALENDAR, tmp_path / "cat")
    assert count == len(load_macro_calendar(CALENDAR))
    back = [getattr(x, "data", x) for x in ParquetDataCatalog(str(tmp_path / "cat")).query(MacroEvent)]
    assert len(back) == count and all(e.ts_init <= e.ts_event for e in back)
