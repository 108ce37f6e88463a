"""SHAP feature selection: the top features of each market become its inference set.

``mia features select`` fits a fast surrogate (a seeded histogram gradient-boosting regressor, one
thread) on a market's training features, explains it with ``shap.TreeExplainer`` and ranks features
by mean absolute SHAP value. The target is the next bar's return (close to close, in ticks; none
across a roll or a session change) or, with a trained policy, the policy's target position. The
data is cut into ``windows`` consecutive spans of trading days; each span gets its own surrogate, and
a feature's importance is its mean share of the total across windows. The top ``top`` features (150
by default) replace the market's ``inference`` set in ``config/feature_sets.yaml`` (only that list is
rewritten; comments and every other set stay as they are, and the result is validated before it
replaces the file).

Stability is the agreement of the windows' own top lists: the mean and minimum pairwise Jaccard
overlap, and per feature the share of windows that selected it.

Every successful run refreshes a cached importance file per market; when SHAP cannot run (the
library fails or the surrogate cannot be explained) the cached ranking is used instead and the
result says so.
"""

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from mia_strategies import sessions
from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError
from research.env import MarketData


FloatArray = npt.NDArray[np.float64]
Method = Literal["shap", "cache"]


@dataclass(frozen=True)
class SelectionResult:
    """The ranking of one market's features and the chosen inference set."""

    market: str
    importance: pd.DataFrame
    selected: list[str]
    method: Method
    windows: int
    mean_jaccard: float
    min_jaccard: float
    samples: int


def forward_return_target(data: MarketData) -> FloatArray:
    """Next bar's close-to-close move in ticks; NaN across a roll, a session change, or at the end."""
    tick = _tick(data)
    move = np.full(len(data), np.nan)
    if len(data) < 2:
        return move
    days = data.trading_days()
    same = (data.contract[1:] == data.contract[:-1]) & (days[1:] == days[:-1])
    move[:-1] = np.where(same, np.diff(data.close) / tick, np.nan)
    return move


def _tick(data: MarketData) -> float:
    spreads = data.ask - data.bid
    positive = spreads[np.isfinite(spreads) & (spreads > 0)]
    return float(positive.min()) if len(positive) else 1.0


def _window_slices(data: MarketData, windows: int) -> list[npt.NDArray[np.int64]]:
    days = data.trading_days()
    distinct = sorted(set(days.tolist()))
    count = max(1, min(windows, len(distinct)))
    groups = np.array_split(np.arange(len(distinct)), count)
    return [np.flatnonzero(np.isin(days, [distinct[i] for i in g])) for g in groups if len(g)]


def shap_importance(features: FloatArray, target: FloatArray, seed: int, max_samples: int) -> FloatArray:
    """Mean |SHAP| per feature of a surrogate fitted on rows with a finite target."""
    import shap
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    rows = np.flatnonzero(np.isfinite(target))
    if len(rows) < 20:
        raise ValueError(f"only {len(rows)} rows with a target: too few to fit a surrogate")
    if len(rows) > max_samples:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_samples, replace=False))
    x, y = features[rows], target[rows]
    # a feature without two distinct values (all NaN while warming up, a constant) cannot split: 0
    usable = np.array([np.unique(col[np.isfinite(col)]).size >= 2 for col in x.T], dtype=bool)
    importance = np.zeros(features.shape[1])
    if not usable.any():
        raise ValueError("no feature varies over the rows with a target")
    x = x[:, usable]
    with threadpool_limits(1):
        model = HistGradientBoostingRegressor(
            max_iter=100,
            max_depth=4,
            learning_rate=0.1,
            max_bins=63,
            early_stopping=False,
            random_state=seed,
        )
        model.fit(x, y)
        values = shap.TreeExplainer(model).shap_values(x)
    mean_abs = np.abs(np.asarray(values, dtype=np.float64)).mean(axis=0)
    if mean_abs.shape != (int(usable.sum()),) or not np.all(np.isfinite(mean_abs)):
        raise ValueError("SHAP returned no usable importance")
    importance[usable] = mean_abs
    return importance


def jaccard(a: set[str], b: set[str]) -> float:
    """Overlap of two sets (1 when both are empty)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def cache_path(cache_dir: Path, market: str) -> Path:
    """The cached importance file of ``market``."""
    return cache_dir / f"feature_importance_{market.upper()}.csv"


def select_features(
    data: MarketData,
    *,
    top: int = 150,
    windows: int = 4,
    target: FloatArray | None = None,
    seed: int = 42,
    max_samples: int = 5000,
    cache_dir: Path | None = None,
) -> SelectionResult:
    """Rank ``data``'s features by SHAP across windows and pick the top ``top`` (see the module docstring)."""
    names = list(data.feature_names)
    if top < 1:
        raise ConfigError(f"--top must be at least 1, was {top}")
    y = forward_return_target(data) if target is None else np.asarray(target, dtype=np.float64)
    slices = _window_slices(data, windows)
    try:
        shares = []
        tops: list[set[str]] = []
        for rows in slices:
            imp = shap_importance(data.features[rows], y[rows], seed, max_samples)
            total = imp.sum()
            share = imp / total if total > 0 else np.zeros_like(imp)
            shares.append(share)
            order = np.argsort(-share, kind="stable")[:top]
            tops.append({names[i] for i in order})
        method: Method = "shap"
        importance = np.mean(shares, axis=0)
        frequency = np.mean([[n in t for n in names] for t in tops], axis=0)
    except Exception as err:
        cached = _read_cache(cache_dir, data.root, names, err)
        importance = cached["importance"].to_numpy(dtype=np.float64)
        frequency = cached["selection_frequency"].to_numpy(dtype=np.float64)
        method = "cache"
        tops = []
    order = np.argsort(-importance, kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(1, len(names) + 1)
    selected = [names[i] for i in order[: min(top, len(names))]]
    frame = pd.DataFrame(
        {
            "market": data.root,
            "feature": names,
            "importance": importance,
            "rank": rank,
            "selected": rank <= top,
            "selection_frequency": frequency,
            "method": method,
        },
    ).sort_values("rank", kind="stable", ignore_index=True)
    pairs = [jaccard(a, b) for a, b in itertools.combinations(tops, 2)]
    if method == "shap" and cache_dir is not None:
        _write_cache(cache_dir, data.root, frame)
    return SelectionResult(
        market=data.root,
        importance=frame,
        selected=selected,
        method=method,
        windows=len(slices),
        mean_jaccard=float(np.mean(pairs)) if pairs else math.nan,
        min_jaccard=float(np.min(pairs)) if pairs else math.nan,
        samples=int(np.isfinite(y).sum()),
    )


def _write_cache(cache_dir: Path, market: str, frame: pd.DataFrame) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_path(cache_dir, market)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def _read_cache(cache_dir: Path | None, market: str, names: list[str], err: Exception) -> pd.DataFrame:
    reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    if cache_dir is None or not cache_path(cache_dir, market).is_file():
        raise MiaError(
            f"SHAP selection failed for {market} ({reason}) and there is no cached importance file to fall back on"
        )
    cached = pd.read_csv(cache_path(cache_dir, market)).set_index("feature")
    missing = [n for n in names if n not in cached.index]
    if missing:
        raise MiaError(
            f"SHAP selection failed for {market} ({reason}) and the cached importance lacks {len(missing)} "
            f"of the features (first: {missing[0]}); run the selection where SHAP works",
        )
    return cached.loc[names].reset_index()


# -- writing the inference set ----------------------------------------------------------------------


def replace_inference_set(path: Path, market: str, names: list[str], set_name: str = "inference") -> None:
    """Rewrite ``markets.<market>.<set_name>`` of a feature-sets file in place, keeping everything else.

    The list is replaced as text (comments and other sets are untouched), the result is validated
    with the feature-sets model, and it replaces the file atomically.
    """
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start, end, indent = _list_span(lines, market.upper(), set_name, path)
    block = [f"{indent}{set_name}:\n", *(f"{indent}  - {name}\n" for name in names)]
    new_text = "".join(lines[:start] + block + lines[end:])
    _validate_feature_sets(path, new_text, market.upper(), set_name, names)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _trailing(line: str, key_indent: int) -> bool:
    """A blank line, or a comment at or left of the key: it belongs after the list, not in it."""
    stripped = line.strip()
    return not stripped or (stripped.startswith("#") and _indent(line) <= key_indent)


def _list_span(lines: list[str], market: str, set_name: str, path: Path) -> tuple[int, int, str]:
    """Line range of ``markets: -> MARKET: -> set_name:`` and its list (or where to insert it)."""
    in_markets = False
    market_indent = -1
    market_line = -1
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(line)
        if indent == 0:
            in_markets = stripped.startswith("markets:")
            market_line = -1
            continue
        if in_markets and market_line < 0 and stripped == f"{market}:":
            market_line, market_indent = i, indent
            continue
        if market_line >= 0 and indent <= market_indent:
            break
        if market_line >= 0 and stripped == f"{set_name}:":
            end = i + 1
            while end < len(lines):
                s = lines[end].strip()
                if s and not s.startswith("#") and (_indent(lines[end]) <= indent and not s.startswith("- ")):
                    break
                if s.startswith("- ") and _indent(lines[end]) < indent:
                    break
                end += 1
            while end > i + 1 and _trailing(lines[end - 1], indent):
                end -= 1
            return i, end, " " * indent
    if market_line < 0:
        raise ConfigError(f"{path}: no markets.{market} section to write the {set_name} set into")
    insert = market_line + 1
    while insert < len(lines) and (not lines[insert].strip() or _indent(lines[insert]) > market_indent):
        insert += 1
    while insert > market_line + 1 and not lines[insert - 1].strip():
        insert -= 1
    return insert, insert, " " * (market_indent + 2)


def _validate_feature_sets(path: Path, text: str, market: str, set_name: str, names: list[str]) -> None:
    from mia_strategies.features.sets import FeatureSetsFile

    try:
        raw = yaml.safe_load(text)
        model = FeatureSetsFile.model_validate(raw)
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(
            f"{path}: the new {market}.{set_name} set would make the file invalid ({first}); not written"
        ) from None
    if model.markets.get(market, {}).get(set_name) != names:
        raise ConfigError(f"{path}: could not place the {market}.{set_name} list; edit the file by hand")


def trading_days_of(data: MarketData) -> int:
    """Distinct trading days in ``data`` (for the report)."""
    return len({sessions.trading_day(int(t)) for t in data.ts_ns})
