"""The IQConnect simulator at the byte level (raw sockets, not our client): the protocol document's script."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import REPO

from adapters.iqfeed.simulator import SimulatorConfig
from adapters.iqfeed.simulator import SimulatorSource
from adapters.iqfeed.simulator import build_simulator
from adapters.iqfeed.simulator.wire import ALL_UPDATE_FIELDS
from adapters.iqfeed.simulator.wire import FUNDAMENTAL_FIELDS


pytestmark = pytest.mark.timeout(60)


TIMESTAMP = re.compile(r"T,\d{8} \d\d:\d\d:\d\d")


class Raw:
    """A bare socket client: send CRLF commands, read raw server lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""
        #: The server's 1-second ``T,`` timestamps arrive at any moment; dropped unless a test wants them.
        self.keep_timestamps = False

    @classmethod
    async def open(cls, port: int) -> "Raw":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, *lines: str) -> None:
        for line in lines:
            self.writer.write(line.encode("latin-1") + b"\r\n")

    async def lines(self, seconds: float) -> list[str]:
        """Every complete line received within ``seconds`` (raw, with the CRLF checked and removed)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if not chunk:
                break
            self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\r\n")
        assert all(b"\n" not in line and b"\r" not in line for line in complete)
        decoded = [line.decode("latin-1") for line in complete]
        return decoded if self.keep_timestamps else [x for x in decoded if not TIMESTAMP.fullmatch(x)]

    async def until(self, predicate, seconds: float = 3.0) -> list[str]:
        collected: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            collected += await self.lines(0.1)
            if predicate(collected):
                return collected
        raise AssertionError(f"not seen: {collected[-5:]}")

    def close(self) -> None:
        self.writer.close()


def run(markets, body, rate: float = 0.0, **config) -> None:
    async def main() -> None:
        sim = build_simulator(markets, SimulatorSource(rate=rate), SimulatorConfig(**config))
        await sim.start()
        try:
            await asyncio.wait_for(body(sim), 45)
        finally:
            await sim.close()

    asyncio.run(main())


def _es(sim) -> str:
    return sorted(s for s in sim.market.universe.specs if s.startswith("@ES"))[0]


def test_level1_greeting_fieldsets_watch_and_errors(markets):
    async def body(sim):
        es = _es(sim)
        c = await Raw.open(sim.ports["level1"])
        greeting = await c.lines(0.3)
        assert greeting[:2] == ["S,KEY,FAKE0000,", "S,SERVER CONNECTED"]
        assert (
            greeting[2].startswith("S,IP,")
            and greeting[3].startswith("S,CUST,real_time,")
            and len(greeting[3].split(",")) >= 12
        )
        c.send("S,SET PROTOCOL,6.2", "S,REQUEST ALL UPDATE FIELDNAMES", "S,REQUEST FUNDAMENTAL FIELDNAMES")
        lines = await c.until(lambda ls: any(x.startswith("S,FUNDAMENTAL FIELDNAMES") for x in ls))
        assert lines[0] == "S,CURRENT PROTOCOL,6.2,"
        assert lines[1].startswith("S,CURRENT UPDATE FIELDNAMES,Symbol,Most Recent Trade,") and not lines[1].endswith(
            ","
        )
        assert lines[2] == "S,UPDATE FIELDNAMES," + ",".join(ALL_UPDATE_FIELDS) and len(ALL_UPDATE_FIELDS) == 70
        assert lines[3] == "S,FUNDAMENTAL FIELDNAMES," + ",".join(FUNDAMENTAL_FIELDS) and len(FUNDAMENTAL_FIELDS) == 57
        c.send("S,SELECT UPDATE FIELDS,Bid,Ask,No Such Field,TickID", f"w{es}", "w@NOPE", "xyz", "S,REQUEST WATCHES")
        lines = await c.until(lambda ls: any(x.startswith("S,WATCHES") for x in ls))
        assert lines[0] == "S,CURRENT UPDATE FIELDNAMES,Symbol,Bid,Ask,TickID"
        fundamental = lines[1].split(",")
        assert fundamental[0] == "F" and len(fundamental) == 1 + 57 + 1 and fundamental[-1] == ""
        assert fundamental[1 + FUNDAMENTAL_FIELDS.index("Minimum Tick Size")] == "0.25"
        assert re.fullmatch(r"P,@ES[HMUZ]\d\d,\d+\.\d\d,\d+\.\d\d,\d*,", lines[2])
        assert lines[3:5] == ["n,@NOPE", "E,!SYNTAX_ERROR!,"]
        assert lines[5] == f"S,WATCHES,{es},"
        # a trade fans out as a Q with the selected fields; timestamps arrive every second (and on "T")
        c.keep_timestamps = True
        book = sim.market.book(es)
        sim.market.trade(es, book.ask, 2, 1)
        c.send("T")
        lines = await c.lines(1.2)
        assert any(x.startswith(f"Q,{es},") and x.endswith(f",{book.tick_id},") for x in lines)
        assert any(x.startswith("T,") for x in lines)
        c.send("S,SET PROTOCOL,9.9")
        assert "E,9.9 is not a valid protocol.," in await c.lines(0.3)
        c.close()

    run(markets, body)


def test_lookup_rows_prefixes_errors_and_terminators(markets):
    async def body(sim):
        es = _es(sim)
        now = sim.market.clock()
        for i in range(4):
            sim.market.trade(
                es, sim.market.book(es).bid + i, 1 + i, 1 + i % 2, ts_ns=now - 130_000_000_000 + i * 60_000_000_000
            )
        c = await Raw.open(sim.ports["lookup"])
        assert await c.lines(0.2) == []  # the lookup port sends nothing unasked
        c.send("S,SET PROTOCOL,6.2", f"HTX,{es},2,1,r1,100", f"HIX,{es},60,2,1,r2,100,s,1", "HTX,@NOPE,5,0,r4,100")
        c.send("FOO,1", f"HDX,{es},1", "CFU,@ES,,,4,r6", "CFO,@ES,pc,,,1,r7", f"HTX,{es},5,1,r8,100,x,y,z")
        lines = await c.until(lambda ls: any(x.startswith("r8,!ENDMSG!") for x in ls))
        assert lines[0] == "S,CURRENT PROTOCOL,6.2,"
        ticks = [x for x in lines if x.startswith("r1,")]
        assert [x.split(",")[1] for x in ticks] == ["LH", "LH", "!ENDMSG!"]
        assert len(ticks[0].split(",")) == 2 + 12 + 1  # 6.2 rows: aggressor and day code, trailing comma
        bars = [x for x in lines if x.startswith("r2,LH,")]
        assert len(bars) == 2 and all(x.split(",")[2].endswith(":00") for x in bars)  # labelled at the bar start
        high, low, open_, close = (float(v) for v in bars[0].split(",")[3:7])
        assert low <= min(open_, close) <= max(open_, close) <= high  # High,Low,Open,Close
        assert [x for x in lines if x.startswith("r4,")] == ["r4,E,Invalid symbol.,", "r4,!ENDMSG!,"]
        i = lines.index("E,!SYNTAX_ERROR!,")
        assert lines[i + 1] == "!ENDMSG!,"
        assert lines[i + 2].startswith("LH,") and lines[i + 3] == "!ENDMSG!,"  # HDX without a request id
        assert re.fullmatch(r"r6,LC,@ESZ\d\d,@ESH\d\d,", next(x for x in lines if x.startswith("r6,LC")))
        chain = next(x for x in lines if x.startswith("r7,LC,")).split(",")
        assert ":" in chain and all(re.fullmatch(r"@ES[HMUZ]\d\d[CP]\d+", s) for s in chain[2:-1] if s != ":")
        assert [x for x in lines if x.startswith("r8,")] == ["r8,E,Invalid number of parameters.,", "r8,!ENDMSG!,"]
        # protocol 6.1 rows carry no data identifier
        c.send("S,SET PROTOCOL,6.1", f"HTX,{es},1,1,r9,100")
        lines = await c.until(lambda ls: any(x.startswith("r9,!ENDMSG!") for x in ls))
        assert re.match(r"r9,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6},", next(x for x in lines if x.startswith("r9,2")))
        c.close()

    run(markets, body)


def test_depth_price_levels_orders_and_no_depth(markets):
    async def body(sim):
        es = _es(sim)
        c = await Raw.open(sim.ports["depth"])
        c.send("S,SET PROTOCOL,6.2", f"WPL,{es},3", "WPL,@NOPE", "WPL,SPY", f"w{es}")
        lines = await c.until(lambda ls: "E,!SYNTAX_ERROR!," in ls)
        assert lines[:2] == ["S,SERVER CONNECTED", "S,CURRENT PROTOCOL,6.2,"]
        levels = [x for x in lines if x.startswith("7,")]
        assert len(levels) == 6 and {x.split(",")[2] for x in levels} == {"B", "A"}
        assert re.fullmatch(
            rf"7,{re.escape(es)},B,\d+\.\d\d,\d+,\d+,2,\d\d:\d\d:\d\d\.\d{{6}},\d{{4}}-\d\d-\d\d,", levels[0]
        )
        assert "n,@NOPE" in lines and "q,SPY," in lines  # unknown symbol; no depth for an ETF here
        book = sim.market.book(es)
        sim.market.quote(es, book.bid + 1, book.ask + 1, 7, 8)  # the book moves up a tick
        moved = await c.lines(0.3)
        assert any(x.startswith("8,") for x in moved) and any(x.startswith("9,") for x in moved)
        c.send(f"RPL,{es}", f"WOR,{es}")
        orders = await c.lines(0.3)
        assert orders and all(x.startswith("6,") for x in orders)
        assert len(orders[0].split(",")) == 12 and orders[0].split(",")[3] == ""
        c.close()

    run(markets, body)


def test_bars_backfill_update_complete_and_replace(markets):
    async def body(sim):
        es = _es(sim)
        c = await Raw.open(sim.ports["bars"])
        now = sim.market.clock()
        for k in range(3):
            sim.market.trade(es, sim.market.book(es).bid, 1, 2, ts_ns=now - (3 - k) * 1_000_000_000)
        c.send("S,SET PROTOCOL,6.2", f"BW,{es},1,,,3,,,rb1,s,,0")
        lines = await c.until(lambda ls: sum(x.startswith("rb1,BH,") for x in ls) >= 2)
        assert lines[:2] == ["S,SERVER CONNECTED", "S,CURRENT PROTOCOL,6.2,"]
        history = [x for x in lines if x.startswith("rb1,BH,")]
        assert all(len(x.split(",")) == 12 for x in history)  # rid,BH,sym,time,O,H,L,C,cum,vol,trades,
        sim.market.trade(es, sim.market.book(es).ask, 4, 1)
        lines = await c.until(lambda ls: any(x.startswith("rb1,BC,") for x in ls), 3.0)
        assert any(x.startswith("rb1,BU,") for x in lines)
        c.send(f"BW,{es},1,,,3,,,rb1,s,,0", "BW,@NOPE,60,,,3,,,rb2,s,,1", "BW")
        lines = await c.until(lambda ls: "E,!SYNTAX_ERROR!," in ls)
        assert f"S,REPLACED PREVIOUS WATCH,{es}," in lines and "n,@NOPE" in lines
        assert not any("!ENDMSG!" in x for x in lines)  # never on the bars port
        c.close()

    run(markets, body)


def test_admin_greeting_and_commands(markets):
    async def body(sim):
        c = await Raw.open(sim.ports["admin"])
        c.send("S,REGISTER CLIENT APP,PRODUCT,1.0", "S,SET LOGINID,me", "S,SET PASSWORD,secret", "S,SET AUTOCONNECT,On")
        lines = await c.until(lambda ls: "S,AUTOCONNECT ON," in ls[1:])
        assert lines[:4] == [
            "S,AUTOCONNECT ON,",
            "S,CURRENT PROTOCOL,6.0,",
            "S,CURRENT LOGINID,FAKELOGIN,",
            "S,CURRENT PASSWORD,(*****),",
        ]
        stats = next(x for x in lines if x.startswith("S,STATS,")).split(",")
        assert len(stats) > 20 and stats[12] == "Connected" and re.fullmatch(r"\w{3} \d\d \d\d:\d\d[AP]M", stats[10])
        assert "S,REGISTER CLIENT APP COMPLETED," in lines and "S,CURRENT LOGINID,me," in lines
        assert "secret" not in "".join(lines)
        c.close()

    run(markets, body, default_protocol="6.0")


def test_news_streams_to_subscribers_and_is_served_by_nhl(markets):
    async def body(sim):
        l1 = await Raw.open(sim.ports["level1"])
        l1.send("S,SET PROTOCOL,6.2", "S,NEWSON")
        await l1.lines(0.2)
        story = sim.push_news("Stocks open higher, futures rally", ("@ES", "SPY"))
        lines = await l1.lines(0.3)
        assert re.fullmatch(
            rf"N,DTN,{story.story_id},@ES:SPY,\d{{8}} \d{{6}},Stocks open higher, futures rally", lines[0]
        )
        lk = await Raw.open(sim.ports["lookup"])
        lk.send("S,SET PROTOCOL,6.2", "NHL,,SPY,t,10,,r8", "NHL,,AAPL,t,10,,r9", f"NSY,{story.story_id},t,,r10")
        lines = await lk.until(lambda ls: any(x.startswith("r10,!ENDMSG!") for x in ls))
        assert [x for x in lines if x.startswith("r8,LN,")] == [
            f"r8,LN,N,DTN,{story.story_id},:@ES:SPY:,{lines[1].split(',')[6]},Stocks open higher, futures rally"
        ]
        assert "r9,E,!NO_DATA!," in lines
        l1.close()
        lk.close()

    run(markets, body)


def test_mia_iqfeed_sim_prints_ports_serves_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "mia_strategies.cli", "iqfeed-sim", "--any-ports", "--rate", "5"],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        deadline = time.time() + 30
        while time.time() < deadline and "level1=" not in line:
            line = proc.stdout.readline()
        ports = dict(re.findall(r"(\w+)=(\d+)", line))
        assert set(ports) == {"level1", "lookup", "depth", "admin", "bars"}

        async def talk() -> list[str]:
            c = await Raw.open(int(ports["lookup"]))
            c.send("S,SET PROTOCOL,6.2", "CFU,@ES,,,2,r1")
            got = await c.until(lambda ls: any(x.startswith("r1,!ENDMSG!") for x in ls), 5)
            c.close()
            return got

        assert any(x.startswith("r1,LC,@ES") for x in asyncio.run(talk()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "simulator stopped" in out


def test_config_files_validate_with_their_models():
    from conftest import run_mia

    for name in ("iqfeed.yaml", "paper.yaml"):
        result = run_mia("config", "check", str(REPO / "config" / name), timeout=60)
        assert result.returncode == 0 and "ok" in result.stdout, result.stderr
    assert json.loads(json.dumps({"t": pd.Timestamp(0, tz="UTC").isoformat()}))
