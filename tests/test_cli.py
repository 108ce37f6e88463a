"""The CLI as a user meets it: ingest a CSV, list the catalog, build a demo; errors are one line."""

from conftest import run_mia


def _write(path, text):
    path.write_text(text)
    return path


TRADES = "Time,Last,Volume,Side\n2025-12-08 08:30:00.100,6850.25,3,B\n2025-12-08 08:30:00.200,6850.50,2,S\n"
MAPPING = ("--map", "ts=Time", "--map", "price=Last", "--map", "size=Volume", "--map", "side=Side")


def test_ingest_csv_then_catalog_ls(tmp_path):
    csv = _write(tmp_path / "trades.csv", TRADES)
    catalog = tmp_path / "catalog"
    args = ("--kind", "trades", "--instrument", "ESZ25", "--tz", "America/Chicago", "--catalog", str(catalog))
    result = run_mia("ingest", "csv", str(csv), *args, *MAPPING)
    assert result.returncode == 0, result.stderr
    assert "2 trades for ESZ25.GLBX" in result.stdout
    listing = run_mia("catalog", "ls", "--catalog", str(catalog))
    assert listing.returncode == 0
    # 08:30 Chicago in December (CST, UTC-6) is 14:30 UTC
    assert "trade_tick" in listing.stdout and "2025-12-08T14:30:00.1Z" in listing.stdout
    again = run_mia("ingest", "csv", str(csv), *args, *MAPPING)
    assert again.returncode == 2 and "overlapping" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_ingest_csv_with_bad_rows_writes_nothing(tmp_path):
    bad = TRADES + "2025-12-08 08:30:00.150,6850.10,0,B\n"
    csv = _write(tmp_path / "bad.csv", bad)
    catalog = tmp_path / "catalog"
    result = run_mia(
        "ingest", "csv", str(csv), "--kind", "trades", "--instrument", "ESZ25", "--catalog", str(catalog), *MAPPING
    )
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "line 4" in line and "0.25 tick grid" in line and "nothing written" in line
    assert not catalog.exists() or not any(p.is_file() for p in catalog.rglob("*"))


def test_cli_rejects_bad_options_in_one_line(tmp_path):
    csv = _write(tmp_path / "trades.csv", TRADES)
    for args, expected in (
        (("--kind", "ticks", "--instrument", "ESZ25"), "--kind 'ticks'"),
        (("--kind", "trades", "--instrument", "ESZ5"), "bad contract symbol"),
        (("--kind", "trades", "--instrument", "ESZ25", "--map", "oops"), "FIELD=COLUMN"),
    ):
        result = run_mia("ingest", "csv", str(csv), *args, "--catalog", str(tmp_path / "c"))
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_demo_command_builds_and_refuses_a_used_folder(tmp_path):
    catalog = tmp_path / "demo"
    result = run_mia("demo", "--catalog", str(catalog), "--days", "1", "--intensity", "0.05")
    assert result.returncode == 0, result.stderr
    assert "demo catalog ready" in result.stdout
    again = run_mia("demo", "--catalog", str(catalog), "--days", "1", "--intensity", "0.05")
    assert again.returncode == 2 and "not empty" in again.stderr


def test_help_lists_the_commands():
    result = run_mia("--help")
    assert result.returncode == 0
    for command in ("backtest", "demo", "config", "ingest", "catalog"):
        assert command in result.stdout
