"""IQFeed wire parsing: Eastern times, prices, Level 1 by field names, Level 2, bars, history, news."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price

from adapters.iqfeed.constants import LEVEL1_UPDATE_FIELDS
from adapters.iqfeed.parsing import ET
from adapters.iqfeed.parsing import EasternDay
from adapters.iqfeed.parsing import FundamentalParser
from adapters.iqfeed.parsing import Fundamentals
from adapters.iqfeed.parsing import Level1Parser
from adapters.iqfeed.parsing import Level2Parser
from adapters.iqfeed.parsing import PriceCodec
from adapters.iqfeed.parsing import bar_from_row
from adapters.iqfeed.parsing import compact_timestamp_ns
from adapters.iqfeed.parsing import format_request_datetime
from adapters.iqfeed.parsing import history_timestamp_ns
from adapters.iqfeed.parsing import parse_bar_fields
from adapters.iqfeed.parsing import parse_chain_fields
from adapters.iqfeed.parsing import parse_daily_rows
from adapters.iqfeed.parsing import parse_interval_rows
from adapters.iqfeed.parsing import parse_news_fields
from adapters.iqfeed.parsing import parse_news_row
from adapters.iqfeed.parsing import parse_tick_rows
from adapters.iqfeed.parsing import trade_ticks_from_history


NY = ZoneInfo("America/New_York")
ES = InstrumentId.from_str("ESZ25.GLBX")
FIELDS = ("Symbol", *LEVEL1_UPDATE_FIELDS)


def _utc_ns(local: dt.datetime) -> int:
    return int(pd.Timestamp(local.replace(tzinfo=NY)).tz_convert("UTC").value)


# -- time -------------------------------------------------------------------------------------------


@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 12, 31)),
    st.integers(min_value=0, max_value=999),
)
@settings(max_examples=300, deadline=None)
def test_eastern_wall_time_converts_to_utc_exactly(local, nanos):
    ns_of_day = (local.hour * 3600 + local.minute * 60 + local.second) * 10**9 + local.microsecond * 1000 + nanos
    expected = _utc_ns(local) + nanos  # zoneinfo, fold=0 (first of a repeated hour)
    assert ET.to_utc_ns(local.year, local.month, local.day, ns_of_day) == expected


def test_dst_days_use_the_right_offset_on_each_side_of_the_change():
    # 2025-03-09 02:00 EST -> 03:00 EDT; 2025-11-02 02:00 EDT -> 01:00 EST
    assert history_timestamp_ns("2025-03-09 01:59:59.999999") == int(
        pd.Timestamp("2025-03-09 06:59:59.999999", tz="UTC").value
    )
    assert history_timestamp_ns("2025-03-09 03:00:00") == int(pd.Timestamp("2025-03-09 07:00", tz="UTC").value)
    assert history_timestamp_ns("2025-11-02 00:30:00") == int(pd.Timestamp("2025-11-02 04:30", tz="UTC").value)
    assert history_timestamp_ns("2025-11-02 03:00:00") == int(pd.Timestamp("2025-11-02 08:00", tz="UTC").value)
    assert history_timestamp_ns("2025-07-01 09:30:00.123456") == int(
        pd.Timestamp("2025-07-01 13:30:00.123456", tz="UTC").value
    )
    assert compact_timestamp_ns("20251120 14:18:31") == int(pd.Timestamp("2025-11-20 19:18:31", tz="UTC").value)
    assert compact_timestamp_ns("20251120133103") == int(pd.Timestamp("2025-11-20 18:31:03", tz="UTC").value)
    assert format_request_datetime(int(pd.Timestamp("2025-07-01 13:30:05", tz="UTC").value)) == "20250701 093005"


def test_bare_times_take_the_eastern_day_nearest_the_receive_time():
    day = EasternDay()
    ref = int(pd.Timestamp("2025-11-21 04:59:59.900", tz="UTC").value)  # 23:59:59.9 ET on the 20th
    before_midnight = 23 * 3600 * 10**9 + 59 * 60 * 10**9 + 59_800_000_000
    assert day.resolve(before_midnight, ref) == int(pd.Timestamp("2025-11-21 04:59:59.8", tz="UTC").value)
    after = int(pd.Timestamp("2025-11-21 05:00:00.200", tz="UTC").value)  # 00:00:00.2 ET on the 21st
    assert day.resolve(before_midnight, after) == int(pd.Timestamp("2025-11-21 04:59:59.8", tz="UTC").value)
    assert day.resolve(100_000_000, ref) == int(pd.Timestamp("2025-11-21 05:00:00.1", tz="UTC").value)


# -- prices --------------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**8), st.sampled_from([0, 1, 2, 4]))
@settings(max_examples=300, deadline=None)
def test_price_text_converts_exactly(units, precision):
    text = f"{units / 10**precision:.{precision}f}"
    padded = text + "00" if precision else text + ".00"
    codec = PriceCodec(precision)
    assert codec.raw(text) == Price.from_str(text).raw
    assert codec.raw(padded) == Price.from_str(text).raw  # IQFeed pads decimals: 6012.2500


def test_price_codec_rounds_extra_digits_and_rejects_garbage():
    codec = PriceCodec(2)
    assert codec.price("6012.125").as_double() == 6012.13
    assert codec.price("6012.").as_double() == 6012.0
    assert codec.price("-1.5").as_double() == -1.5
    for bad in ("", "abc", "1.2.3", "1e5"):
        with pytest.raises(ValueError):
            codec.raw(bad)


# -- Level 1 ---------------------------------------------------------------------------------------------


def _line(kind: str, values: dict[str, str], names=FIELDS) -> list[str]:
    return [kind, *(values.get(n, "") for n in names)]


def _parser(names=FIELDS) -> Level1Parser:
    parser = Level1Parser()
    parser.set_fieldnames(names)
    parser.register("@ESZ25", ES, 2)
    return parser


BASE = {
    "Symbol": "@ESZ25",
    "Bid": "6012.00",
    "Bid Size": "10",
    "Bid Time": "14:30:00.100000",
    "Ask": "6012.25",
    "Ask Size": "12",
    "Ask Time": "14:30:00.200000",
    "Most Recent Trade": "6012.25",
    "Most Recent Trade Size": "3",
    "Most Recent Trade Time": "14:30:01.123456",
    "Most Recent Trade Date": "11/20/2025",
    "Most Recent Trade Aggressor": "1",
    "TickID": "1001",
    "Total Volume": "5000",
    "Message Contents": "Cba",
}
RECEIVED = int(pd.Timestamp("2025-11-20 19:30:01.2", tz="UTC").value)


def test_a_trade_update_gives_a_trade_with_us_time_tickid_and_aggressor():
    trade, quote = _parser().parse(_line("Q", BASE), RECEIVED)
    assert trade is not None and quote is not None
    assert trade.price.as_double() == 6012.25 and trade.size.as_double() == 3
    assert trade.ts_event == int(pd.Timestamp("2025-11-20 19:30:01.123456", tz="UTC").value)
    assert trade.trade_id.value == "1001" and trade.aggressor_side == AggressorSide.BUYER
    assert (quote.bid_price.as_double(), quote.ask_price.as_double()) == (6012.0, 6012.25)
    assert quote.ts_event == int(pd.Timestamp("2025-11-20 19:30:00.2", tz="UTC").value)  # the later side
    assert trade.ts_init == quote.ts_init == RECEIVED


def test_fields_are_found_by_announced_name_in_any_order_and_unknown_names_are_ignored():
    names = ("Symbol", "Brand New Field", *reversed(LEVEL1_UPDATE_FIELDS), "7 Day Yield")
    values = dict(BASE, **{"Brand New Field": "zzz", "7 Day Yield": "1.5"})
    trade, quote = _parser(names).parse(_line("Q", values, names), RECEIVED)
    assert trade is not None and trade.price.as_double() == 6012.25 and trade.trade_id.value == "1001"
    assert quote is not None and quote.ask_size.as_double() == 12


def test_quote_only_updates_repeats_and_summaries():
    parser = _parser()
    _, first = parser.parse(_line("P", BASE), RECEIVED)  # the summary: a quote, never a trade
    assert first is not None
    trade, again = parser.parse(_line("Q", dict(BASE, **{"Message Contents": "ba"})), RECEIVED)
    assert trade is None and again is None  # nothing changed
    trade, moved = parser.parse(_line("Q", dict(BASE, **{"Message Contents": "b", "Bid Size": "11"})), RECEIVED)
    assert trade is None and moved is not None and moved.bid_size.as_double() == 11
    trade, _ = parser.parse(_line("Q", dict(BASE, **{"Message Contents": "O", "TickID": "1002"})), RECEIVED)
    assert trade is None  # "other" trades are not last-qualified prints
    trade, _ = parser.parse(_line("Q", dict(BASE, **{"Message Contents": "E", "TickID": "1003"})), RECEIVED)
    assert trade is not None and trade.trade_id.value == "1003"
    trade, _ = parser.parse(_line("Q", dict(BASE, TickID="1003")), RECEIVED)
    assert trade is None and parser.counters.skipped == 1  # the same print twice


def test_without_message_contents_a_trade_is_a_new_tickid():
    names = tuple(n for n in FIELDS if n != "Message Contents")
    parser = _parser(names)
    parser.parse(_line("P", BASE, names), RECEIVED)
    trade, _ = parser.parse(_line("Q", BASE, names), RECEIVED)
    assert trade is None  # the summary's print
    trade, _ = parser.parse(_line("Q", dict(BASE, **{"TickID": "1002", "Total Volume": "5003"}), names), RECEIVED)
    assert trade is not None and trade.trade_id.value == "1002"


def test_malformed_and_foreign_lines_are_counted_not_raised():
    parser = _parser()
    assert parser.parse(_line("Q", dict(BASE, Bid="n/a")), RECEIVED) == (None, None)
    assert parser.parse(["Q", "@ESZ25", "1"], RECEIVED) == (None, None)
    assert parser.parse(_line("Q", dict(BASE, Symbol="@NQZ25")), RECEIVED) == (None, None)
    assert parser.counters.as_dict() == {"malformed": 2, "unknown_symbol": 1, "skipped": 0}
    assert parser.parse(_line("Q", BASE), RECEIVED)[0] is not None  # still parsing


def test_aggressor_codes():
    parser = _parser()
    sides = []
    for i, code in enumerate(("1", "2", "3", "0", "")):
        trade, _ = parser.parse(
            _line("Q", dict(BASE, **{"Most Recent Trade Aggressor": code, "TickID": str(2000 + i)})), RECEIVED
        )
        sides.append(trade.aggressor_side)
    assert sides == [AggressorSide.BUYER, AggressorSide.SELLER, *[AggressorSide.NO_AGGRESSOR] * 3]


def test_fundamentals_by_name():
    parser = FundamentalParser()
    values = dict.fromkeys(parser.names, "")
    values.update(
        {"Symbol": "@ESZ25", "Expiration Date": "12/19/2025", "Minimum Tick Size": "0.25", "Exchange Root": "ES"}
    )
    fields = ["F", *(values[n] for n in parser.names), ""]
    info = Fundamentals.from_values(parser.parse(fields))
    assert info.expiration == dt.date(2025, 12, 19) and info.tick_size == "0.25" and info.exchange_root == "ES"


# -- Level 2 --------------------------------------------------------------------------------------------


def test_price_level_depth_rebuilds_the_book_and_clears_one_side():
    parser = Level2Parser()
    parser.register("@ESZ25", ES, 2)
    book = OrderBook(ES, BookType.L2_MBP)
    lines = [
        "7,@ESZ25,B,6012.00,10,3,2,14:30:00.330855,2025-11-20,",
        "7,@ESZ25,B,6011.75,20,3,2,14:30:00.330855,2025-11-20,",
        "7,@ESZ25,A,6012.25,12,2,2,14:30:00.330855,2025-11-20,",
        "7,@ESZ25,A,6012.50,15,2,2,14:30:00.330855,2025-11-20,",
        "8,@ESZ25,B,6012.00,25,4,2,14:30:01.123456,2025-11-20,",
        "9,@ESZ25,A,6012.25,14:30:01.223456,2025-11-20,",
        "8,@ESZ25,A,6012.75,9,1,2,14:30:01.300000,2025-11-20,",
    ]
    for line in lines:
        deltas = parser.parse(line.split(","), 1)
        book.apply_deltas(deltas)
    assert [(lvl.price.as_double(), lvl.size()) for lvl in book.bids()] == [(6012.0, 25.0), (6011.75, 20.0)]
    assert [(lvl.price.as_double(), lvl.size()) for lvl in book.asks()] == [(6012.5, 15.0), (6012.75, 9.0)]
    first = parser.parse(lines[0].split(","), 1)
    assert first.deltas[0].ts_event == int(pd.Timestamp("2025-11-20 19:30:00.330855", tz="UTC").value)
    book.apply_deltas(parser.clear_side("@ESZ25", "B", 2))
    assert book.bids() == [] and len(book.asks()) == 2


def test_order_depth_adds_updates_and_deletes_orders_by_id():
    parser = Level2Parser()
    mnq = InstrumentId.from_str("MNQZ25.GLBX")
    parser.register("@MNQZ25", mnq, 2)
    book = OrderBook(mnq, BookType.L3_MBO)
    lines = [
        "6,@MNQZ25,101,,B,21050.25,10,1,2,14:30:00.881377,2025-11-20,",
        "6,@MNQZ25,102,,A,21050.50,12,1,2,14:30:00.881377,2025-11-20,",
        "3,@MNQZ25,103,,B,21050.25,5,2,2,14:30:01.000000,2025-11-20,",
        "4,@MNQZ25,101,,B,21050.25,7,1,2,14:30:01.100000,2025-11-20,",
        "5,@MNQZ25,102,,A,14:30:01.300000,2025-11-20,",
        "3,@MNQZ25,104,,A,21050.75,3,1,2,14:30:01.400000,2025-11-20,",
    ]
    for line in lines:
        book.apply_deltas(parser.parse(line.split(","), 1))
    assert [(lvl.price.as_double(), lvl.size()) for lvl in book.bids()] == [(21050.25, 12.0)]
    assert [(lvl.price.as_double(), lvl.size()) for lvl in book.asks()] == [(21050.75, 3.0)]
    assert parser.parse(["5", "@MNQZ25", "999", "", "A", "14:30:02.000000", "2025-11-20", ""], 1) is None  # never seen
    assert parser.parse(["8", "@MNQZ25", "B", "x", "1", "1", "2", "14:30:02.000000", "2025-11-20", ""], 1) is None
    assert parser.counters.malformed == 1 and parser.counters.skipped == 1
    assert parser.reset("@MNQZ25", 5).deltas[0].is_clear


# -- bars, history, chains, news -----------------------------------------------------------------------


def test_bar_lines_are_open_high_low_close_and_stamped_at_the_close():
    row = parse_bar_fields("rb1,BC,@ESZ25,2025-11-20 14:30:00,6012.25,6012.75,6011.75,6012.50,1000,10,4,".split(","))  # noqa: SIM905
    assert row is not None and row.kind == "BC" and row.request_id == "rb1"
    bar_type = BarType.from_str("ESZ25.GLBX-1-MINUTE-LAST-EXTERNAL")
    bar = bar_from_row(row, bar_type, PriceCodec(2), 60 * 10**9, 0)
    assert (bar.open.as_double(), bar.high.as_double(), bar.low.as_double(), bar.close.as_double()) == (
        6012.25, 6012.75, 6011.75, 6012.5,
    )  # fmt: skip
    assert bar.ts_event == int(pd.Timestamp("2025-11-20 19:31", tz="UTC").value) and bar.volume.as_double() == 10
    history = parse_bar_fields("BH,@ESZ25,2025-11-20 14:29:00,1,2,0.5,1.5,10,10,0,".split(","))  # noqa: SIM905
    assert history is not None and history.request_id == ""
    assert parse_bar_fields(["n", "@NOPE"]) is None


def test_history_rows_keep_high_low_open_close_order_and_eastern_times():
    intervals = parse_interval_rows(["2025-11-20 14:30:00,6013.00,6011.00,6012.00,6012.50,5000,20,0,"])
    assert (intervals.high[0], intervals.low[0], intervals.open[0], intervals.close[0]) == (
        6013.0,
        6011.0,
        6012.0,
        6012.5,
    )
    assert intervals.ts_ns[0] == int(pd.Timestamp("2025-11-20 19:30", tz="UTC").value)
    daily = parse_daily_rows(["2025-07-01,601.17,601.09,601.13,601.14,1500000,0,"])
    assert daily.volume[0] == 1500000 and daily.ts_ns[0] == int(pd.Timestamp("2025-07-01 04:00", tz="UTC").value)
    ticks = parse_tick_rows(
        [
            "2025-11-20 14:30:00.123456,6012.25,1,1001,6012.00,6012.25,77,C,34,01,1,20,",
            "2025-11-20 14:30:01.123456,6012.00,4,1005,6012.00,6012.25,78,C,34,3D87,2,20,",
        ],
    )
    assert ticks.tick_id == ["77", "78"] and list(ticks.aggressor) == [1, 2]
    trades = trade_ticks_from_history(ticks, ES, 2, 0.25)
    assert [t.ts_event for t in trades] == [
        int(pd.Timestamp("2025-11-20 19:30:00.123456", tz="UTC").value),
        int(pd.Timestamp("2025-11-20 19:30:01.123456", tz="UTC").value),
    ]
    assert [t.aggressor_side for t in trades] == [AggressorSide.BUYER, AggressorSide.SELLER]
    assert len(parse_tick_rows([])) == 0


def test_chain_symbols_and_headlines_with_commas():
    options = parse_chain_fields("@ESZ25C600000,@ESZ25C600500,:,@ESZ25P600000,@ESZ21,grep: No such file,".split(","))  # noqa: SIM905
    assert [(o.right, o.strike, o.month, o.year) for o in options] == [
        (1, 6000.0, 12, 2025), (1, 6005.0, 12, 2025), (-1, 6000.0, 12, 2025),
    ]  # fmt: skip
    line = "N,DTN,22290175664,@ES:SPY,20251120 133103,Stocks open higher, futures rally,"
    news = parse_news_fields(line.split(","))
    assert news.headline == "Stocks open higher, futures rally" and news.symbols == ("@ES", "SPY")
    assert news.ts_ns == int(pd.Timestamp("2025-11-20 18:31:03", tz="UTC").value)
    row = parse_news_row("N,BEN,22290175664,:BZRatings::AAPL::AMD:,20200612131321,Why Key Intel Chip For AMD, Nvidia")
    assert row.headline == "Why Key Intel Chip For AMD, Nvidia" and row.symbols == ("BZRatings", "AAPL", "AMD")
    with pytest.raises(ValueError):
        parse_news_fields(["N", "DTN"])
    assert np.isclose(len(options), 3)
