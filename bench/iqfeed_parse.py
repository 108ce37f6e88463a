"""IQFeed parsing and ingestion throughput against nautilus's wrangler path, measured in the same run.

Three measurements, each against a baseline doing the same job the stock nautilus way:

- Level 1: raw ``Q`` line bytes (the data client's 14 selected fields, a third of them trades) →
  ``QuoteTick``/``TradeTick`` through the adapter's framing and ``Level1Parser``. Baseline: the same
  bytes → ``pandas.read_csv`` → ``QuoteTickDataWrangler`` / ``TradeTickDataWrangler``.
- Level 2: raw ``8``/``9`` price-level lines → ``OrderBookDeltas`` via ``Level2Parser``. Baseline:
  the same bytes → ``read_csv`` → ``OrderBookDeltaDataWrangler``.
- Ingestion: a day of ES tick history rows (``HTT`` rows) → trade ticks in a Parquet catalog the way
  ``mia ingest iqfeed`` writes a batch (bulk ``parse_tick_rows``, direct Arrow tables, staged commit).
  Baseline: ``read_csv`` + ``TradeTickDataWrangler`` + ``write_data``. Also end to end: the same day
  downloaded from the simulator over a socket and written by ``mia ingest iqfeed``'s code.

The baselines get the timestamps pre-parsed for free (a naive UTC column), which flatters them; the
adapter converts every Eastern wall time itself. Best of ``--repeat`` runs, alternating sides.

    .venv/bin/python bench/iqfeed_parse.py [--lines 200000] [--ticks 500000] [--repeat 3]
"""

import argparse
import asyncio
import io
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import OrderBookDeltaDataWrangler
from nautilus_trader.persistence.wranglers import QuoteTickDataWrangler
from nautilus_trader.persistence.wranglers import TradeTickDataWrangler


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.iqfeed.client import split_lines  # noqa: E402
from adapters.iqfeed.constants import LEVEL1_UPDATE_FIELDS  # noqa: E402
from adapters.iqfeed.history import Batch  # noqa: E402
from adapters.iqfeed.history import _write as write_batch  # noqa: E402
from adapters.iqfeed.history import ingest_async  # noqa: E402
from adapters.iqfeed.parsing import Level1Parser  # noqa: E402
from adapters.iqfeed.parsing import Level2Parser  # noqa: E402
from adapters.iqfeed.parsing import parse_tick_rows  # noqa: E402
from adapters.iqfeed.simulator import build_simulator  # noqa: E402
from adapters.iqfeed.simulator.runner import SimulatorSource  # noqa: E402
from adapters.iqfeed.simulator.wire import history_tick_times  # noqa: E402
from mia_strategies import sessions  # noqa: E402
from mia_strategies.config import MarketsConfig  # noqa: E402
from mia_strategies.config import load_markets  # noqa: E402
from mia_strategies.instruments import ContractRef  # noqa: E402
from mia_strategies.instruments import build_futures_contract  # noqa: E402


ES = InstrumentId.from_str("ESZ25.GLBX")
DAY = "2025-12-09"


def best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Fastest wall time of ``repeat`` runs and the item count it reported."""
    times, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - started)
    return min(times), count


# -- synthetic wire data ------------------------------------------------------------------------------


def level1_bytes(n: int, seed: int = 7) -> tuple[bytes, pd.DataFrame]:
    """``n`` Q lines in the data client's field layout, plus the same values as a frame (baseline input)."""
    rng = random.Random(seed)
    bid = 24_000  # ticks of 0.25
    volume, tick_id = 100_000, 5_000_000
    rows = []
    base = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York")
    for i in range(n):
        ts = base + pd.Timedelta(microseconds=i * 40)
        t = ts.strftime("%H:%M:%S.%f")
        trade = rng.random() < 0.35
        if trade:
            size = rng.randint(1, 5)
            volume += size
            tick_id += 1
            contents = "C"
        else:
            bid += rng.choice((-1, 0, 0, 1))
            size = 0
            contents = "ba"
        price = bid + (1 if trade and rng.random() < 0.5 else 0)
        bid_size, ask_size = rng.randint(1, 60), rng.randint(1, 60)
        rows.append(
            (t, bid * 0.25, bid_size, (bid + 1) * 0.25, ask_size, price * 0.25, size, tick_id, volume, contents,
             1 if price > bid else 2),
        )  # fmt: skip
    lines = []
    for t, b, bs, a, as_, p, s, tid, vol, contents, agg in rows:
        lines.append(
            f"Q,@ESZ25,{b:.2f},{bs},{t},{a:.2f},{as_},{t},{p:.2f},{s},{t},{DAY[5:7]}/{DAY[8:10]}/{DAY[:4]},{agg},"
            f"{tid},{vol},{contents},\r\n",
        )
    frame = pd.DataFrame(
        rows,
        columns=["time", "bid", "bid_size", "ask", "ask_size", "price", "size", "tick_id", "volume", "contents", "agg"],
    )
    return "".join(lines).encode("latin-1"), frame


def level2_bytes(n: int, seed: int = 11) -> bytes:
    """``n`` price-level update/delete lines of one symbol around a moving touch."""
    rng = random.Random(seed)
    lines = []
    base = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York")
    for i in range(n):
        t = (base + pd.Timedelta(microseconds=i * 20)).strftime("%H:%M:%S.%f")
        side = "B" if rng.random() < 0.5 else "A"
        px = 24_000 + (-rng.randint(0, 9) if side == "B" else 1 + rng.randint(0, 9))
        if rng.random() < 0.15:
            lines.append(f"9,@ESZ25,{side},{px * 0.25:.2f},{t},{DAY},\r\n")
        else:
            lines.append(f"8,@ESZ25,{side},{px * 0.25:.2f},{rng.randint(1, 80)},{rng.randint(1, 9)},2,{t},{DAY},\r\n")
    return "".join(lines).encode("latin-1")


def frame_lines(data: bytes) -> list[list[str]]:
    """The client's own framing (``split_lines``) over 64 KiB reads, then the comma split it does."""
    out: list[list[str]] = []
    pending = ""
    for start in range(0, len(data), 65536):
        lines, pending = split_lines(pending, data[start : start + 65536])
        out.extend(line.split(",") for line in lines)
    return out


# -- measurements ----------------------------------------------------------------------------------------


def run_level1(data: bytes) -> int:
    parser = Level1Parser()
    parser.set_fieldnames(("Symbol", *LEVEL1_UPDATE_FIELDS))
    parser.register("@ESZ25", ES, 2)
    ts_init = int(pd.Timestamp(f"{DAY} 14:30", tz="UTC").value)
    made = 0
    for fields in frame_lines(data):
        trade, quote = parser.parse(fields, ts_init)
        made += (trade is not None) + (quote is not None)
    return made


def baseline_level1(data: bytes, instrument: FuturesContract) -> int:
    # columns after the message type: 0 Symbol, 1 Bid, 2 Bid Size, 3 Bid Time, 4 Ask, 5 Ask Size, 6 Ask Time,
    # 7 Most Recent Trade, 8 Size, 9 Time, 10 Date, 11 Aggressor, 12 TickID, 13 Total Volume, 14 Contents
    df = pd.read_csv(io.BytesIO(data), header=None, usecols=range(1, 16))
    df.columns = list(range(15))
    stamps = pd.to_datetime(DAY + " " + df[3], format="%Y-%m-%d %H:%M:%S.%f").dt.tz_localize("America/New_York")
    index = pd.DatetimeIndex(stamps.dt.tz_convert("UTC"), name="timestamp")
    quotes = pd.DataFrame(
        {
            "bid_price": df[1].to_numpy(),
            "bid_size": df[2].to_numpy(dtype=float),
            "ask_price": df[4].to_numpy(),
            "ask_size": df[5].to_numpy(dtype=float),
        },
        index=index,
    )
    made = len(QuoteTickDataWrangler(instrument).process(quotes))
    is_trade = df[14].astype(str).str.contains("C").to_numpy()
    trades = pd.DataFrame(
        {
            "price": df[7].to_numpy()[is_trade],
            "quantity": df[8].to_numpy(dtype=float)[is_trade],
            "side": np.where(df[11].to_numpy()[is_trade] == 1, "BUY", "SELL"),
            "trade_id": df[12].astype(str).to_numpy()[is_trade],
        },
        index=index[is_trade],
    )
    made += len(TradeTickDataWrangler(instrument).process(trades))
    return made


def run_level2(data: bytes) -> int:
    parser = Level2Parser()
    parser.register("@ESZ25", ES, 2)
    made = 0
    for fields in frame_lines(data):
        made += parser.parse(fields, 1) is not None
    return made


def baseline_level2(data: bytes, instrument: FuturesContract) -> int:
    df = pd.read_csv(io.BytesIO(data), header=None, names=list(range(10)), usecols=range(10))
    deletes = df[0] == 9
    time_col = np.where(deletes, df[4], df[7])
    stamps = pd.to_datetime(DAY + " " + pd.Series(time_col, dtype=str), format="%Y-%m-%d %H:%M:%S.%f")
    index = pd.DatetimeIndex(stamps.dt.tz_localize("America/New_York").dt.tz_convert("UTC"), name="timestamp")
    frame = pd.DataFrame(
        {
            "action": np.where(deletes, "DELETE", "UPDATE"),
            "side": np.where(df[2] == "B", "BUY", "SELL"),
            "price": df[3].astype(float).to_numpy(),
            "size": np.where(deletes, 0.0, pd.to_numeric(df[4], errors="coerce").to_numpy()),
            "order_id": 0,
            "flags": 0,
            "sequence": np.arange(len(df)),
        },
        index=index,
    )
    return len(OrderBookDeltaDataWrangler(instrument).process(frame))


def tick_rows(n: int, seed: int = 3) -> tuple[list[str], pd.DataFrame]:
    """A Globex day of ES ``HTT`` rows (after the request id and LH prefix) and the same as a frame."""
    rng = np.random.default_rng(seed)
    open_ns, close_ns = sessions.session_bounds(pd.Timestamp(DAY).date())
    ts = np.sort(rng.integers(open_ns, close_ns, n)) // 1000 * 1000
    price = 24_000 + np.cumsum(rng.choice([-1, 0, 0, 1], n))
    size = rng.integers(1, 6, n)
    aggressor = rng.integers(1, 3, n)
    local = history_tick_times(ts.astype(np.int64))
    rows = [
        f"{t},{p * 0.25:.2f},{s},{v},{(p - 1) * 0.25:.2f},{p * 0.25:.2f},{i},C,34,01,{a},9,"
        for i, (t, p, s, v, a) in enumerate(zip(local, price, size, np.cumsum(size), aggressor, strict=True))
    ]
    frame = pd.DataFrame(
        {"price": price * 0.25, "quantity": size.astype(float), "side": np.where(aggressor == 1, "BUY", "SELL"),
         "trade_id": [str(i) for i in range(n)]},
        index=pd.DatetimeIndex(pd.to_datetime(ts, utc=True), name="timestamp"),
    )  # fmt: skip
    return rows, frame


def run_ingest(rows: list[str], instrument: FuturesContract, folder: Path) -> int:
    """What ``mia ingest iqfeed`` does with a downloaded session: bulk parse, then the direct Arrow writer."""
    history = parse_tick_rows(rows)
    written = write_batch(folder, {"ticks": history}, instrument)
    return written["ticks"]


def baseline_ingest(rows: list[str], frame: pd.DataFrame, instrument: FuturesContract, folder: Path) -> int:
    df = pd.read_csv(io.StringIO("\n".join(rows)), header=None, usecols=range(12))  # the same text is parsed
    assert len(df) == len(frame)
    ticks = TradeTickDataWrangler(instrument).process(frame)
    ParquetDataCatalog(str(folder)).write_data(ticks)
    return len(ticks)


def end_to_end(n: int, markets: MarketsConfig, folder: Path) -> tuple[float, int]:
    """A day of ticks downloaded from the simulator over a socket and written to a catalog."""
    _, frame = tick_rows(n)
    day = pd.Timestamp(DAY).date()
    open_ns, close_ns = sessions.session_bounds(day)

    async def main() -> tuple[float, int]:
        sim = build_simulator(markets, SimulatorSource(rate=0))
        ref = ContractRef(2025, 12, "ES")
        from adapters.iqfeed.simulator.market import contract_spec

        spec = contract_spec(ref, markets)
        sim.market.universe.add(spec)
        sim.market.book(spec.symbol)
        ts = frame.index.to_numpy(dtype="datetime64[ns]").view(np.int64)
        ticks = np.rint(frame["price"].to_numpy() / 0.25).astype(np.int64)
        sim.market.history[spec.symbol].extend(
            {
                "ts": ts,
                "price": ticks,
                "size": frame["quantity"].to_numpy().astype(np.int64),
                "aggressor": np.where(frame["side"].to_numpy() == "BUY", 1, 2).astype(np.int64),
                "tick_id": np.arange(1, n + 1, dtype=np.int64),
                "total_volume": np.cumsum(frame["quantity"].to_numpy()).astype(np.int64),
                "bid": ticks - 1,
                "ask": ticks,
            },
        )
        ports = await sim.start()
        try:
            batch = Batch("ticks", ref, open_ns, close_ns, ("ticks",), f"ESZ25 ticks {day}")
            started = time.perf_counter()
            report = await ingest_async(folder, [batch], markets, "127.0.0.1", ports["lookup"])
            return time.perf_counter() - started, report.rows["ticks"]
        finally:
            await sim.close()

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="Level 1 and Level 2 lines")
    parser.add_argument("--ticks", type=int, default=500_000, help="ticks in the day of history")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    markets = load_markets(ROOT / "config" / "markets.yaml")
    instrument = build_futures_contract(ContractRef(2025, 12, "ES"), markets)
    results: dict[str, dict[str, float]] = {}

    l1, _ = level1_bytes(args.lines)
    ours, made = best(lambda: run_level1(l1), args.repeat)
    base, _ = best(lambda: baseline_level1(l1, instrument), args.repeat)
    results["level1"] = {"lines": args.lines, "objects": made, "lines_per_s": args.lines / ours,
                         "baseline_lines_per_s": args.lines / base, "ratio": base / ours}  # fmt: skip

    l2 = level2_bytes(args.lines)
    ours, made = best(lambda: run_level2(l2), args.repeat)
    base, _ = best(lambda: baseline_level2(l2, instrument), args.repeat)
    results["level2"] = {"lines": args.lines, "deltas": made, "lines_per_s": args.lines / ours,
                         "baseline_lines_per_s": args.lines / base, "ratio": base / ours}  # fmt: skip

    rows, frame = tick_rows(args.ticks)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))
        ours, made = best(lambda: run_ingest(rows, instrument, Path(tmp) / f"a{next(counter)}"), args.repeat)
        base, _ = best(lambda: baseline_ingest(rows, frame, instrument, Path(tmp) / f"b{next(counter)}"), args.repeat)
        e2e, e2e_rows = end_to_end(args.ticks, markets, Path(tmp) / "e2e")
    results["ingest"] = {
        "ticks": made,
        "ticks_per_s": made / ours,
        "baseline_ticks_per_s": made / base,
        "ratio": base / ours,
        "end_to_end_s": e2e,
        "end_to_end_ticks_per_s": e2e_rows / e2e,
    }

    for name, r in results.items():
        print(
            f"{name:7s} " + "  ".join(f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v:,}" for k, v in r.items())
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
