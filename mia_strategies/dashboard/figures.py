"""The dashboard's figures, built from a :class:`RunData`; the web app and ``mia report`` share them.

Every builder takes the run data and a market (a root such as ``ES``; ``None`` for the whole
account) and returns a Plotly figure. A run without the data a figure needs gets a figure that says
which file is missing instead of an error. Values are handed to Plotly as plain lists so the numbers
in the page are the numbers in the files.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mia_strategies.dashboard import data as files
from mia_strategies.dashboard.data import RunData


_MAX_POINTS = 5000
_TEMPLATE = "plotly_white"
_REGIME_COLOURS = {"trend": "#2e8b57", "range": "#4682b4", "defensive": "#b22222"}
_PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")
_STATE_COLOURS = {"ACTIVE": "#2e8b57", "REDUCING": "#e69500", "HALTED": "#b22222"}


def _stamps(index: pd.Index | pd.Series) -> list[str]:
    values = pd.DatetimeIndex(index)
    values = values.tz_convert("UTC") if values.tz is not None else values.tz_localize("UTC")
    return [str(v) for v in values.strftime("%Y-%m-%d %H:%M:%S")]


def _floats(values: pd.Series | np.ndarray | list[float]) -> list[float | None]:
    out: list[float | None] = []
    for v in np.asarray(values, dtype=float).tolist():
        out.append(v if math.isfinite(v) else None)
    return out


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        template=_TEMPLATE,
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def empty_figure(title: str, reason: str) -> go.Figure:
    """A figure that says why it has nothing to show (which file the run lacks)."""
    fig = go.Figure()
    fig.add_annotation(
        text=reason,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": "grey"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(meta={"empty": True, "reason": reason})
    return _layout(fig, title, height=220)


def _missing(data: RunData, name: str, what: str, market: str | None) -> str:
    where = f" for {market}" if market else ""
    if data.has(name):
        return f"no {what}{where} yet in {name}"
    return f"this run has no {what} ({name} not found)"


def _of_market(frame: pd.DataFrame, market: str | None) -> pd.DataFrame:
    if frame.empty or market is None or "root" not in frame.columns:
        return frame
    return frame[frame["root"].astype(str) == market]


def _decimate(values: np.ndarray, limit: int = _MAX_POINTS) -> np.ndarray:
    """Positions to plot: all, or per bucket the first, last, lowest and highest (extremes survive)."""
    n = values.size
    if n <= limit:
        return np.arange(n)
    bucket = math.ceil(n / (limit // 4))
    keep: set[int] = set()
    for start in range(0, n, bucket):
        chunk = values[start : start + bucket]
        keep.update((start, start + chunk.size - 1, start + int(np.argmin(chunk)), start + int(np.argmax(chunk))))
    return np.array(sorted(keep), dtype=np.int64)


# -- equity and P&L ---------------------------------------------------------------------------------


def equity_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Account equity over its drawdown; for one market, its cumulative realised P&L and drawdown."""
    title = "Equity and drawdown" if market is None else f"{market}: cumulative net P&L and drawdown"
    if market is None:
        if data.equity.empty:
            return empty_figure(title, _missing(data, files.EQUITY, "equity curve", None))
        series = data.equity.sort_index(kind="stable")
        values = series.to_numpy(dtype=float)
        peak = np.maximum.accumulate(np.concatenate([[data.starting_balance], values]))[1:]
        drawdown = (values / peak - 1.0) * 100.0
        labels, dd_label, y_label = "equity", "drawdown %", "equity"
    else:
        trades = _of_market(data.trades, market)
        if trades.empty or "realized_pnl" not in trades.columns:
            return empty_figure(title, _missing(data, files.POSITIONS, "closed trades", market))
        trades = trades.sort_values("closed_ts", kind="stable")
        series = pd.Series(
            pd.to_numeric(trades["realized_pnl"], errors="coerce").fillna(0.0).cumsum().to_numpy(),
            index=pd.DatetimeIndex(trades["closed_ts"]),
        )
        values = series.to_numpy(dtype=float)
        drawdown = values - np.maximum.accumulate(np.maximum(values, 0.0))
        labels, dd_label, y_label = "cumulative P&L", "drawdown", "net P&L"
    keep = _decimate(values)
    stamps = _stamps(series.index[keep])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=stamps, y=_floats(values[keep]), mode="lines", name=labels), row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=stamps,
            y=_floats(drawdown[keep]),
            mode="lines",
            name=dd_label,
            fill="tozeroy",
            line={"color": "firebrick", "width": 1},
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text=y_label, row=1, col=1)
    fig.update_yaxes(title_text=dd_label, row=2, col=1)
    return _layout(fig, title, height=440)


def _pnl_bars(table: pd.Series, title: str) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[str(k) for k in table.index],
            y=_floats(table.to_numpy()),
            text=[f"{v:,.2f}" for v in table.to_numpy()],
            textposition="auto",
            marker={"color": ["seagreen" if v >= 0 else "firebrick" for v in table.to_numpy()]},
            name="net P&L",
        ),
    )
    fig.update_yaxes(title_text="net P&L")
    return _layout(fig, title)


def pnl_by_instrument_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Net realised P&L of the closed trades per contract."""
    title = "Net P&L by instrument"
    trades = _of_market(data.trades, market)
    if trades.empty or "realized_pnl" not in trades.columns:
        return empty_figure(title, _missing(data, files.POSITIONS, "closed trades", market))
    pnl = pd.to_numeric(trades["realized_pnl"], errors="coerce").fillna(0.0)
    return _pnl_bars(pnl.groupby(trades["instrument_id"].astype(str)).sum().sort_index(), title)


def pnl_by_regime_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Net realised P&L per regime the trades were entered in, with the share of time spent in each.

    ``per_regime.csv`` is the run's own table and also counts regimes nobody traded in (a defensive
    regime that blocks entries shows 0 P&L and the time it cost); without it the P&L is summed from
    ``positions.csv`` (``unknown`` when trades carry no regime).
    """
    title = "Net P&L by regime"
    table = _of_market(data.per_regime, market)
    if not table.empty:
        return _per_regime_bars(table, title)
    trades = _of_market(data.trades, market)
    if trades.empty or "realized_pnl" not in trades.columns:
        return empty_figure(title, _missing(data, files.POSITIONS, "closed trades", market))
    regime = trades["regime"] if "regime" in trades.columns else pd.Series("", index=trades.index)
    regime = regime.fillna("").astype(str).replace("", "unknown")
    pnl = pd.to_numeric(trades["realized_pnl"], errors="coerce").fillna(0.0)
    return _pnl_bars(pnl.groupby(regime).sum().sort_index(), title)


def per_regime_totals(table: pd.DataFrame) -> pd.DataFrame:
    """``per_regime.csv`` rows summed over markets: bars, trades, P&L; time share and win rate re-weighted."""
    frame = table.assign(
        wins=table["win_rate"].fillna(0.0) * table["trades"].fillna(0.0),
        bars=table["bars"].fillna(0.0),
        trades=table["trades"].fillna(0.0),
    )
    totals = frame.groupby("regime", sort=False)[["bars", "trades", "net_pnl", "wins"]].sum()
    all_bars = float(totals["bars"].sum())
    totals["time_share"] = totals["bars"] / all_bars if all_bars else math.nan
    totals["win_rate"] = (totals["wins"] / totals["trades"]).where(totals["trades"] > 0)
    order = sorted(totals.index, key=lambda r: (list(_REGIME_COLOURS).index(r) if r in _REGIME_COLOURS else 9, r))
    return totals.loc[order, ["bars", "time_share", "trades", "net_pnl", "win_rate"]]


def _per_regime_bars(table: pd.DataFrame, title: str) -> go.Figure:
    totals = per_regime_totals(table)
    regimes = [str(r) for r in totals.index]
    pnl = totals["net_pnl"].to_numpy(dtype=float)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=regimes,
            y=_floats(pnl),
            text=[f"{v:,.2f}" for v in pnl],
            textposition="auto",
            marker={"color": ["seagreen" if v >= 0 else "firebrick" for v in pnl]},
            name="net P&L",
            customdata=[
                [int(t), "-" if not math.isfinite(w) else f"{w:.0%}"]
                for t, w in zip(totals["trades"], totals["win_rate"].astype(float), strict=True)
            ],
            hovertemplate="%{x}: %{y:,.2f}<br>%{customdata[0]} trades, win rate %{customdata[1]}<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=regimes,
            y=_floats(totals["time_share"].to_numpy(dtype=float) * 100),
            mode="markers+text",
            text=[f"{v:.0%} of bars" for v in totals["time_share"].to_numpy(dtype=float)],
            textposition="top center",
            marker={"symbol": "diamond", "size": 12, "color": "#444"},
            name="time in regime (%)",
            hovertemplate="%{x}: %{y:.1f}% of decision bars<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="net P&L", secondary_y=False)
    fig.update_yaxes(
        title_text="time in regime (%)", range=[0, 105], tickmode="linear", dtick=25, showgrid=False, secondary_y=True
    )
    return _layout(fig, title)


# -- regimes ----------------------------------------------------------------------------------------


def _roots(frame: pd.DataFrame, market: str | None) -> list[str]:
    if market is not None:
        return [market]
    return sorted(str(r) for r in frame["root"].unique()) if "root" in frame.columns else []


def regime_probabilities_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Filtered HMM state probabilities (``hmm_state_distribution``) over time, stacked to 1."""
    title = "Regime probabilities"
    frame = _of_market(data.regimes, market)
    if frame.empty:
        return empty_figure(title, _missing(data, files.REGIMES, "regime states", market))
    roots = _roots(frame, market)
    fig = make_subplots(rows=len(roots), cols=1, shared_xaxes=True, subplot_titles=roots, vertical_spacing=0.08)
    for row, root in enumerate(roots, start=1):
        part = frame[frame["root"] == root]
        labels = max(part["labels"], key=len) if len(part) else []
        width = max((len(p) for p in part["probabilities"]), default=0)
        labels = list(labels) + [f"state {i}" for i in range(len(labels), width)]
        keep = _decimate(np.arange(len(part), dtype=float))
        stamps = _stamps(part["ts"].iloc[keep])
        for j, label in enumerate(labels):
            probs = [p[j] if j < len(p) else None for p in part["probabilities"].iloc[keep]]
            fig.add_trace(
                go.Scatter(
                    x=stamps,
                    y=probs,
                    mode="lines",
                    stackgroup=f"r{row}",
                    name=label,
                    legendgroup=label,
                    showlegend=row == 1,
                    line={"width": 0.5, "color": _REGIME_COLOURS.get(label)},
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(range=[0, 1], title_text="p", row=row, col=1)
    return _layout(fig, title, height=max(320, 240 * len(roots)))


def transition_matrix_figure(data: RunData, market: str | None = None) -> go.Figure:
    """The latest HMM transition matrix of each market (row: from, column: to)."""
    title = "HMM transition matrix"
    frame = _of_market(data.regimes, market)
    frame = frame[[len(m) > 0 for m in frame["transition_matrix"]]] if not frame.empty else frame
    if frame.empty:
        return empty_figure(title, _missing(data, files.REGIMES, "transition matrix", market))
    roots = _roots(frame, market)
    fig = make_subplots(rows=1, cols=len(roots), subplot_titles=roots, horizontal_spacing=0.12)
    for col, root in enumerate(roots, start=1):
        last = frame[frame["root"] == root].iloc[-1]
        values = list(last["transition_matrix"])
        n = math.isqrt(len(values))
        if n * n != len(values):
            continue
        labels = list(last["labels"]) if len(last["labels"]) == n else [f"state {i}" for i in range(n)]
        matrix = [values[i * n : (i + 1) * n] for i in range(n)]
        fig.add_trace(
            go.Heatmap(
                z=matrix,
                x=labels,
                y=labels,
                zmin=0,
                zmax=1,
                colorscale="Blues",
                text=[[f"{v:.2f}" for v in row] for row in matrix],
                texttemplate="%{text}",
                showscale=col == len(roots),
                name=root,
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", title_text="from", row=1, col=col)
        fig.update_xaxes(title_text="to", row=1, col=col)
    return _layout(fig, title, height=360)


# -- models -----------------------------------------------------------------------------------------


def feature_importance_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Mean |SHAP| per feature, the 20 largest."""
    title = "Feature importance (SHAP)"
    frame = data.importance
    if not frame.empty and market is not None and "market" in frame.columns:
        frame = frame[frame["market"].astype(str) == market]
    if frame.empty:
        return empty_figure(title, _missing(data, files.IMPORTANCE, "SHAP feature importance", market))
    table = frame.groupby(frame["feature"].astype(str))["importance"].mean().sort_values(ascending=False).head(20)
    table = table.iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=_floats(table.to_numpy()),
            y=[str(i) for i in table.index],
            orientation="h",
            text=[f"{v:.4g}" for v in table.to_numpy()],
            textposition="auto",
            name="mean |SHAP|",
        ),
    )
    fig.update_xaxes(title_text="mean |SHAP value|")
    return _layout(fig, title, height=max(320, 22 * len(table) + 120))


def cvar_figure(data: RunData, market: str | None = None) -> go.Figure:
    """``cvar_loss`` of each model over time against its limit."""
    title = "cvar_loss"
    frame = _of_market(data.metrics, market)
    if not frame.empty:
        frame = frame[frame["cvar_loss"].notna()]
    if frame.empty:
        return empty_figure(title, _missing(data, files.METRICS, "cvar_loss values", market))
    fig = go.Figure()
    for (source, iid), part in frame.groupby(["source", "instrument_id"], sort=True):
        name = f"{source} {iid}".strip()
        fig.add_trace(go.Scatter(x=_stamps(part["ts"]), y=_floats(part["cvar_loss"]), mode="lines+markers", name=name))
        if part["cvar_limit"].notna().any():
            fig.add_trace(
                go.Scatter(
                    x=_stamps(part["ts"]),
                    y=_floats(part["cvar_limit"]),
                    mode="lines",
                    name=f"limit {name}",
                    line={"dash": "dash", "color": "firebrick"},
                ),
            )
    fig.update_yaxes(title_text="cvar_loss")
    return _layout(fig, title)


def quantiles_figure(data: RunData, market: str | None = None) -> go.Figure:
    """The latest QR-DQN return quantiles of each model and instrument (the lower tail in red)."""
    title = "QR-DQN return quantiles (latest)"
    frame = _of_market(data.metrics, market)
    if not frame.empty:
        frame = frame[frame["quantiles"].notna()]
    if frame.empty:
        return empty_figure(title, _missing(data, files.METRICS, "QR-DQN quantiles", market))
    fig = go.Figure()
    for (source, iid), part in frame.groupby(["source", "instrument_id"], sort=True):
        values = sorted(part["quantiles"].iloc[-1])
        n = len(values)
        levels = [f"{(i + 0.5) / n:.2f}" for i in range(n)]
        fig.add_trace(
            go.Bar(
                x=levels,
                y=_floats(values),
                name=f"{source} {iid}".strip(),
                marker={"color": ["firebrick" if v < 0 else "seagreen" for v in values]},
                hovertext=f"as of {_stamps(part['ts'].iloc[-1:])[0]}",
            ),
        )
    fig.update_xaxes(title_text="quantile level τ")
    fig.update_yaxes(title_text="return")
    return _layout(fig, title)


def ensemble_weights_figure(data: RunData, market: str | None = None) -> go.Figure:
    """``ensemble_weights`` of the Bayesian ensemble over time, one stacked panel per instrument."""
    title = "Ensemble weights"
    frame = _of_market(data.metrics, market)
    if not frame.empty:
        frame = frame[frame["ensemble_weights"].notna()]
    if frame.empty:
        return empty_figure(title, _missing(data, files.METRICS, "ensemble weights", market))
    models = sorted({str(k) for w in frame["ensemble_weights"] for k in w})
    instruments = sorted(frame["instrument_id"].astype(str).unique())
    fig = make_subplots(
        rows=len(instruments),
        cols=1,
        shared_xaxes=True,
        subplot_titles=instruments,
        vertical_spacing=0.1,
    )
    for row, iid in enumerate(instruments, start=1):
        part = frame[frame["instrument_id"].astype(str) == iid]
        stamps = _stamps(part["ts"])
        totals = [sum(max(0.0, float(v)) for v in w.values()) or 1.0 for w in part["ensemble_weights"]]
        for colour, model in enumerate(models):
            pairs = zip(part["ensemble_weights"], totals, strict=True)
            weights = [max(0.0, float(w.get(model, 0.0))) / t for w, t in pairs]
            fig.add_trace(
                go.Scatter(
                    x=stamps,
                    y=weights,
                    mode="lines",
                    stackgroup=f"w{row}",
                    name=model,
                    legendgroup=model,
                    showlegend=row == 1,
                    line={"width": 0.5, "color": _PALETTE[colour % len(_PALETTE)]},
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(range=[0, 1], title_text="weight", row=row, col=1)
    return _layout(fig, title, height=max(320, 220 * len(instruments)))


# -- risk, positions, alerts ------------------------------------------------------------------------


def risk_state_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Contracts the risk actor allows over time, with its trading state as coloured markers."""
    title = "Risk state"
    frame = _of_market(data.risk, market)
    if frame.empty:
        return empty_figure(title, _missing(data, files.RISK, "risk states", market))
    fig = go.Figure()
    for iid, part in frame.groupby("instrument_id", sort=True):
        states = _column(part, "trading_state", "ACTIVE")
        reasons = [f"{r} {b}".strip() for r, b in zip(_column(part, "halt_reason", ""), _blocks(part), strict=True)]
        allowed = pd.to_numeric(part["allowed_contracts"], errors="coerce") if "allowed_contracts" in part else None
        fig.add_trace(
            go.Scatter(
                x=_stamps(part["ts"]),
                y=_floats(allowed if allowed is not None else np.full(len(part), np.nan)),
                mode="lines+markers",
                line={"shape": "hv"},
                name=str(iid),
                marker={"color": [_STATE_COLOURS.get(s, "grey") for s in states], "size": 8},
                text=[f"{s} {r}".strip() for s, r in zip(states, reasons, strict=True)],
            ),
        )
    for start, end, state in _state_spans(frame):
        fig.add_vrect(x0=start, x1=end, fillcolor=_STATE_COLOURS.get(state, "grey"), opacity=0.15, line_width=0)
    fig.update_yaxes(title_text="allowed contracts", rangemode="tozero")
    latest = frame.groupby("instrument_id", sort=True).tail(1)
    worst = max(
        _column(latest, "trading_state", "ACTIVE"),
        key=lambda v: list(_STATE_COLOURS).index(v) if v in _STATE_COLOURS else 0,
    )
    notes = [
        " ".join(v for v in (files.root_of(str(i)), "" if s == "ACTIVE" else s, r) if v) if s != "ACTIVE" or r else ""
        for i, s, r in zip(
            latest["instrument_id"],
            _column(latest, "trading_state", "ACTIVE"),
            [f"{h} {b}".strip() for h, b in zip(_column(latest, "halt_reason", ""), _blocks(latest), strict=True)],
            strict=True,
        )
    ]
    state = worst
    fig.add_annotation(
        text=f"now: {state} {'; '.join(n for n in notes if n)}".strip(),
        x=1,
        y=1.12,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"color": _STATE_COLOURS.get(state, "grey"), "size": 14},
    )
    return _layout(fig, title)


def _blocks(frame: pd.DataFrame) -> list[str]:
    """The risk actor's active blocks per row (``blocks`` in ``risk_states.jsonl``), as hover text."""
    if "blocks" not in frame.columns:
        return [""] * len(frame)
    out = []
    for value in frame["blocks"]:
        names = [str(v) for v in value] if isinstance(value, list | tuple) else []
        out.append(f"blocked: {', '.join(names)}" if names else "")
    return out


def _state_spans(frame: pd.DataFrame, limit: int = 200) -> list[tuple[str, str, str]]:
    """Time spans in which any instrument was not ACTIVE (REDUCING or HALTED), for shading."""
    if "trading_state" not in frame.columns:
        return []
    spans: list[tuple[str, str, str]] = []
    for _, part in frame.groupby("instrument_id", sort=True):
        states = part["trading_state"].fillna("ACTIVE").astype(str).tolist()
        stamps = _stamps(part["ts"])
        start = None
        for i, state in enumerate(states):
            if state != "ACTIVE" and start is None:
                start = i
            if start is not None and (state == "ACTIVE" or i == len(states) - 1):
                spans.append((stamps[start], stamps[i], states[start]))
                start = None
    return spans[:limit]


def _column(frame: pd.DataFrame, name: str, default: str) -> list[str]:
    if name not in frame.columns:
        return [default] * len(frame)
    return [default if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in frame[name]]


def _table(title: str, frame: pd.DataFrame, columns: list[str], height: int | None = None) -> go.Figure:
    shown = [c for c in columns if c in frame.columns]
    cells = []
    for column in shown:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            cells.append(_stamps(values))
        elif pd.api.types.is_float_dtype(values):
            cells.append([f"{v:,.2f}" if math.isfinite(v) else "" for v in values.to_numpy(dtype=float)])
        else:
            cells.append([str(v) if not (isinstance(v, float) and math.isnan(v)) else "" for v in values])
    fig = go.Figure(
        go.Table(
            header={"values": shown, "align": "left", "fill": {"color": "#eef"}},
            cells={"values": cells, "align": "left"},
        ),
    )
    return _layout(fig, title, height=height or 110 + 36 * min(len(frame), 25))


def positions_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Open positions (live runs) and the latest closed trades."""
    title = "Positions"
    open_ = _of_market(data.open_positions, market)
    if not open_.empty:
        columns = ["instrument_id", "side", "quantity", "avg_px_open", "unrealized_pnl", "realized_pnl", "ts"]
        return _table("Open positions", open_, columns)
    trades = _of_market(data.trades, market)
    if trades.empty:
        reason = "no open position (open_positions.csv)" if data.has(files.OPEN_POSITIONS) else ""
        return empty_figure(title, reason or _missing(data, files.POSITIONS, "positions", market))
    columns = ["closed_ts", "instrument_id", "side", "quantity", "avg_px_open", "avg_px_close", "realized_pnl"]
    columns += ["regime", "exit_reason"]
    latest = trades.sort_values("closed_ts", ascending=False, kind="stable").head(25)
    return _table("Closed trades (latest 25)", latest, columns)


def orders_figure(data: RunData, market: str | None = None) -> go.Figure:
    """Working orders of a live run."""
    title = "Working orders"
    orders = _of_market(data.orders, market)
    if orders.empty:
        if data.has(files.ORDERS):
            return empty_figure(title, "no working order")
        return empty_figure(title, "this run has no working-order snapshot (orders.csv not found)")
    columns = [
        "instrument_id",
        "side",
        "order_type",
        "quantity",
        "filled_qty",
        "price",
        "trigger_price",
        "status",
        "tags",
    ]
    return _table(title, orders, columns)


def alerts_figure(data: RunData, market: str | None = None, limit: int = 50) -> go.Figure:
    """The most recent alerts, newest first."""
    title = "Recent alerts"
    alerts = data.alerts
    if not alerts.empty and market is not None:
        ids = alerts["instrument_id"].astype(str)
        alerts = alerts[(ids == "") | (ids.map(files.root_of) == market)]
    if alerts.empty:
        return empty_figure(title, _missing(data, files.ALERTS, "alerts", market))
    latest = alerts.iloc[::-1].head(limit)
    return _table(title, latest, ["ts", "priority", "kind", "title", "message", "instrument_id"])


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the dashboard and the report: its id, title and builder."""

    key: str
    title: str
    build: Callable[[RunData, str | None], go.Figure]


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("equity", "Equity and drawdown", equity_figure),
    FigureSpec("positions", "Positions", positions_figure),
    FigureSpec("orders", "Working orders", orders_figure),
    FigureSpec("pnl_instrument", "Net P&L by instrument", pnl_by_instrument_figure),
    FigureSpec("pnl_regime", "Net P&L by regime", pnl_by_regime_figure),
    FigureSpec("regime_probabilities", "Regime probabilities", regime_probabilities_figure),
    FigureSpec("transition_matrix", "HMM transition matrix", transition_matrix_figure),
    FigureSpec("feature_importance", "Feature importance (SHAP)", feature_importance_figure),
    FigureSpec("cvar", "cvar_loss", cvar_figure),
    FigureSpec("quantiles", "QR-DQN quantiles", quantiles_figure),
    FigureSpec("ensemble_weights", "Ensemble weights", ensemble_weights_figure),
    FigureSpec("risk_state", "Risk state", risk_state_figure),
    FigureSpec("alerts", "Recent alerts", alerts_figure),
)


def build_all(data: RunData, market: str | None = None) -> dict[str, go.Figure]:
    """Every figure for one market (or the account), keyed by :attr:`FigureSpec.key`."""
    return {spec.key: spec.build(data, market) for spec in FIGURES}


SUMMARY_CARDS: tuple[tuple[str, str, str], ...] = (
    ("net_pnl", "Net P&L", "money"),
    ("total_return", "Return", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("trades", "Trades", "count"),
    ("win_rate", "Win rate", "pct"),
)


def summary_values(data: RunData) -> list[tuple[str, str]]:
    """(label, formatted value) for the header cards; a live run's come from its equity and trades."""
    summary = dict(data.summary)
    if not summary and not data.equity.empty:
        start = data.starting_balance
        last = float(data.equity.iloc[-1])
        peak = np.maximum.accumulate(np.concatenate([[start], data.equity.to_numpy(dtype=float)]))
        summary = {
            "net_pnl": last - start,
            "total_return": last / start - 1.0,
            "max_drawdown": float(np.max(1.0 - np.concatenate([[start], data.equity.to_numpy(dtype=float)]) / peak)),
            "trades": len(data.trades),
        }
    out = []
    for key, label, kind in SUMMARY_CARDS:
        value = summary.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(float(value)):
            out.append((label, "n/a"))
        elif kind == "money":
            out.append((label, f"{'-' if value < 0 else ''}${abs(value):,.2f}"))
        elif kind == "pct":
            out.append((label, f"{value * 100:,.2f}%"))
        elif kind == "ratio":
            out.append((label, f"{value:,.2f}"))
        else:
            out.append((label, f"{value:,.0f}"))
    return out
