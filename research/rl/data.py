"""Load a market's decision bars for the environment from the catalog and the offline feature build.

The loader seam between the feature pipeline and RL: ``load_market_data`` returns a ``MarketData``
with one row per decision bar of the contract the roll calendar makes active, holding

* the features of that bar, from the offline build (``mia features build``): its research Parquet
  file when given, else the ``FeatureVector`` data it wrote to the catalog (``ROOT.training`` or
  ``ROOT.inference``; a model's names are selected from whichever set holds them);
* the regime probabilities in force at the bar (``RegimeState`` data in the catalog, else the
  ``regime_p_*`` features, else unknown);
* the bar's close (the last trade at or before the close time, which is the close of the bar the
  engine aggregates from trades) and the quote in force at the close (bid/ask), read straight from
  the catalog's Parquet files;
* the adaptive reward's inputs (``config/risk.yaml`` names for news sentiment, VIX, ``atr_dynamic``).

Only data stamped at or before each bar's close is used for that bar.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.store import iter_catalog_files
from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import contract_windows
from research.env import REWARD_INPUTS
from research.env import MarketData


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Regime labels in the order ``RegimeState.labels`` uses by default.
REGIME_LABELS = ("trend", "range", "defensive")
_FIXED_SCALE = 10.0**16  # nautilus 128-bit fixed point (FIXED_PRECISION = 16)


def decode_fixed(column: pa.Array | pa.ChunkedArray) -> FloatArray:
    """Nautilus 128-bit fixed-point prices (Arrow ``fixed_size_binary[16]``) as floats."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.byte_width
    if width != 16:
        raise CatalogError(f"unsupported fixed-point width {width} bytes (this build reads the 128-bit catalog)")
    raw = np.frombuffer(column.buffers()[1], dtype="<u8", count=2 * len(column) + 2 * column.offset)
    pairs = raw[2 * column.offset :].reshape(-1, 2)
    low = pairs[:, 0].astype(np.float64)
    high = pairs[:, 1].view(np.int64).astype(np.float64)
    return (high * 2.0**64 + low) / _FIXED_SCALE


def read_ticks(
    catalog_path: Path,
    data_type: str,
    instrument_id: str,
    price_columns: Sequence[str],
    end_ns: int,
) -> tuple[IntArray, dict[str, FloatArray]]:
    """``ts_init`` and decoded price columns of every tick of one instrument up to ``end_ns``, in time order."""
    times: list[IntArray] = []
    values: dict[str, list[FloatArray]] = {c: [] for c in price_columns}
    for entry in iter_catalog_files(catalog_path, data_type):
        if entry.identifier != instrument_id or (entry.start_ns is not None and entry.start_ns > end_ns):
            continue
        table = pq.read_table(entry.path, columns=[*price_columns, "ts_init"])
        times.append(table.column("ts_init").to_numpy().astype(np.int64))
        for c in price_columns:
            values[c].append(decode_fixed(table.column(c)))
    if not times:
        return np.zeros(0, dtype=np.int64), {c: np.zeros(0) for c in price_columns}
    ts = np.concatenate(times)
    order = np.argsort(ts, kind="stable")
    return ts[order], {c: np.concatenate(v)[order] for c, v in values.items()}


def asof(ts: IntArray, values: FloatArray, query: IntArray) -> FloatArray:
    """The last value stamped at or before each query time (NaN before the first)."""
    idx = np.searchsorted(ts, query, side="right") - 1
    out = np.full(len(query), np.nan)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def _active_mask(
    instrument_ids: npt.NDArray[np.object_], ts: IntArray, root: str, markets: MarketsConfig
) -> npt.NDArray[np.bool_]:
    """Rows whose instrument is the contract the roll calendar makes active at the row's time."""
    if len(ts) == 0:
        return np.zeros(0, dtype=bool)
    mask = np.zeros(len(ts), dtype=bool)
    for window in contract_windows(root, int(ts.min()), int(ts.max()), markets):
        iid = window.contract.instrument_id(markets.venue).value
        mask |= (instrument_ids == iid) & (ts >= window.active_from_ns) & (ts < window.active_to_ns)
    return mask


def _rows_from_parquet(path: Path, root: str) -> tuple[pd.DataFrame, str]:
    from research.features import read_feature_parquet

    frame, _meta = read_feature_parquet(path)
    if frame.empty:
        raise CatalogError(f"{path}: the feature file holds no rows (build features for {root} first)")
    frame = frame[frame["root"] == root]
    if frame.empty:
        raise CatalogError(f"{path}: no {root} features in the file (build them with `mia features build`)")
    ts = pd.to_datetime(frame["ts_event"], utc=True).astype("int64")
    frame = frame.assign(ts_ns=ts.to_numpy())
    sets = frame["feature_set"].unique()
    return frame, str(sets[0])


def _rows_from_catalog(catalog_path: Path, root: str) -> tuple[pd.DataFrame, str]:
    """Feature vectors of ``root`` in the catalog as a frame (one column per feature)."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from mia_strategies.features.sets import load_feature_sets

    found = {e.identifier for e in iter_catalog_files(catalog_path, "custom_feature_vector")}
    ids = sorted(i for i in found if i.split(".")[0][:-3] == root)
    if not ids:
        raise CatalogError(
            f"catalog {catalog_path} holds no {root} feature vectors: run `mia features build` "
            "(or pass --features with the research Parquet file)",
        )
    catalog = ParquetDataCatalog(str(catalog_path))
    vectors = [getattr(v, "data", v) for v in catalog.query(FeatureVector, identifiers=ids)]
    if not vectors:
        raise CatalogError(f"catalog {catalog_path}: no {root} feature vectors could be read")
    set_name = vectors[0].feature_set
    names = load_feature_sets().resolve(set_name).names
    vectors = [v for v in vectors if v.feature_set == set_name]
    frame = pd.DataFrame(np.vstack([v.values for v in vectors]), columns=list(names))
    frame.insert(0, "ts_ns", np.array([v.ts_event for v in vectors], dtype=np.int64))
    frame.insert(1, "instrument_id", [v.instrument_id.value for v in vectors])
    return frame, set_name


def _regimes(
    catalog_path: Path,
    instrument_ids: npt.NDArray[np.object_],
    ts: IntArray,
    frame: pd.DataFrame,
    labels: tuple[str, ...],
) -> FloatArray:
    """Regime probabilities in force at each bar, in ``labels`` order (NaN: unknown)."""
    out = np.full((len(ts), len(labels)), np.nan)
    states_ids = {e.identifier for e in iter_catalog_files(catalog_path, "custom_regime_state")}
    wanted = sorted(set(instrument_ids.tolist()) & states_ids)
    if wanted:
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        catalog = ParquetDataCatalog(str(catalog_path))
        states = [getattr(s, "data", s) for s in catalog.query(RegimeState, identifiers=wanted)]
        for iid in wanted:
            mine = sorted((s for s in states if s.instrument_id.value == iid), key=lambda s: s.ts_event)
            if not mine:
                continue
            rows = instrument_ids == iid
            s_ts = np.array([s.ts_event for s in mine], dtype=np.int64)
            idx = np.searchsorted(s_ts, ts[rows], side="right") - 1
            table = np.full((len(mine), len(labels)), np.nan)
            for k, state in enumerate(mine):
                order = [x.strip() for x in state.labels.split(",")]
                probs = dict(zip(order, np.asarray(state.probabilities).tolist(), strict=False))
                table[k] = [probs.get(label, np.nan) for label in labels]
            block = np.full((int(rows.sum()), len(labels)), np.nan)
            block[idx >= 0] = table[idx[idx >= 0]]
            out[rows] = block
        return out
    columns = [f"regime_p_{label}" for label in labels]
    if all(c in frame.columns for c in columns):
        out[:] = frame[columns].to_numpy(dtype=np.float64)
    return out


def load_market_data(
    catalog_path: Path,
    root: str,
    markets: MarketsConfig,
    *,
    feature_names: Sequence[str] | None = None,
    features_path: Path | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    regime_labels: tuple[str, ...] = REGIME_LABELS,
    reward_feature_names: dict[str, str] | None = None,
) -> MarketData:
    """One ``MarketData`` for ``root`` from the offline feature build and the catalog's ticks.

    ``feature_names`` selects the model's features (default: every feature of the build's set);
    ``reward_feature_names`` maps ``REWARD_INPUTS`` to feature names (default: ``config/risk.yaml``).
    """
    root = root.upper()
    catalog_path = Path(catalog_path)
    if features_path is not None:
        frame, set_name = _rows_from_parquet(features_path, root)
    else:
        frame, set_name = _rows_from_catalog(catalog_path, root)
    frame = frame.sort_values("ts_ns", kind="stable")
    ts_all = frame["ts_ns"].to_numpy(dtype=np.int64)
    ids_all = frame["instrument_id"].to_numpy(dtype=object)
    keep = _active_mask(ids_all, ts_all, root, markets)
    if start_ns is not None:
        keep &= ts_all >= start_ns
    if end_ns is not None:
        keep &= ts_all < end_ns
    frame = frame[keep].drop_duplicates(subset="ts_ns", keep="last")
    if len(frame) < 2:
        raise CatalogError(f"fewer than 2 {root} decision bars with features in the requested range of {catalog_path}")
    ts = frame["ts_ns"].to_numpy(dtype=np.int64)
    ids = frame["instrument_id"].to_numpy(dtype=object)
    meta_columns = {"ts_ns", "ts_event", "ts_init", "instrument_id", "root", "feature_set", "active"}
    available = [c for c in frame.columns if c not in meta_columns]
    names = tuple(feature_names) if feature_names is not None else tuple(available)
    missing = [n for n in names if n not in frame.columns]
    if len(missing) == len(names):
        raise ConfigError(f"none of the model's features are in the {set_name} build: rebuild features or retrain")
    features = np.column_stack(
        [frame[n].to_numpy(dtype=np.float64) if n in frame.columns else np.full(len(frame), np.nan) for n in names],
    )
    close = np.full(len(ts), np.nan)
    bid = np.full(len(ts), np.nan)
    ask = np.full(len(ts), np.nan)
    for iid in sorted(set(ids.tolist())):
        rows = ids == iid
        q_ts, quotes = read_ticks(catalog_path, "quote_tick", iid, ("bid_price", "ask_price"), int(ts[rows].max()))
        t_ts, trades = read_ticks(catalog_path, "trade_tick", iid, ("price",), int(ts[rows].max()))
        bid[rows] = asof(q_ts, quotes["bid_price"], ts[rows])
        ask[rows] = asof(q_ts, quotes["ask_price"], ts[rows])
        close[rows] = asof(t_ts, trades["price"], ts[rows]) if len(t_ts) else (bid[rows] + ask[rows]) / 2.0
    usable = np.isfinite(bid) & np.isfinite(ask) & np.isfinite(close)
    if usable.sum() < 2:
        raise CatalogError(f"catalog {catalog_path}: no quotes in force at the {root} decision bars (ingest quotes)")
    reward_names = reward_feature_names or _risk_reward_names()
    context = {
        key: frame[name].to_numpy(dtype=np.float64) if name in frame.columns else np.full(len(frame), np.nan)
        for key, name in reward_names.items()
    }
    regimes = _regimes(catalog_path, ids, ts, frame, regime_labels)
    contracts = np.array([i.split(".")[0] for i in ids])
    data = MarketData(
        root=root,
        ts_ns=ts,
        contract=contracts,
        close=close,
        bid=bid,
        ask=ask,
        features=features,
        feature_names=names,
        regime_probs=regimes,
        regime_labels=regime_labels,
        context=context,
    )
    return data.take(np.flatnonzero(usable))


def _risk_reward_names() -> dict[str, str]:
    """``REWARD_INPUTS`` → feature names, as ``config/risk.yaml`` names them."""
    from mia_strategies.risk.config import load_risk

    names = load_risk().features
    mapping = {"news_sentiment": names.news_sentiment, "vix": names.vix, "atr_dynamic": names.atr_dynamic}
    return {key: mapping[key] for key in REWARD_INPUTS}
