"""The ``mia dashboard`` web app (Dash + Plotly) over one run folder.

The page re-reads the run folder on a timer (``refresh_s``) and redraws only when a file changed,
so a live node's folder updates on its own and a finished backtest costs nothing. It binds
127.0.0.1 by default; bound to any other address it requires a token (``?token=...`` once, then a
cookie, or an ``Authorization: Bearer`` header), compared in constant time. The server is
werkzeug's threaded server: this is an operator's tool for a handful of viewers, not a public site.
"""

import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash
from dash import Input
from dash import Output
from dash import State
from dash import dcc
from dash import html
from dash.exceptions import PreventUpdate
from flask import Response
from flask import request
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from mia_strategies.dashboard.data import RunData
from mia_strategies.dashboard.data import load_run
from mia_strategies.dashboard.data import signature
from mia_strategies.dashboard.figures import FIGURES
from mia_strategies.dashboard.figures import alerts_figure
from mia_strategies.dashboard.figures import summary_values


ALL = "__all__"
TOKEN_COOKIE = "mia_dashboard_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

_STYLE = {
    "page": {"fontFamily": "system-ui, sans-serif", "margin": "0 1.2em 2em 1.2em", "color": "#222"},
    "header": {"display": "flex", "alignItems": "baseline", "gap": "1.2em", "flexWrap": "wrap"},
    "cards": {"display": "flex", "gap": "0.8em", "flexWrap": "wrap", "margin": "0.6em 0"},
    "card": {"border": "1px solid #ddd", "borderRadius": "6px", "padding": "0.4em 0.9em", "minWidth": "7em"},
    "grid": {"display": "grid", "gridTemplateColumns": "repeat(auto-fit, minmax(560px, 1fr))", "gap": "0.6em"},
    "wide": {"gridColumn": "1 / -1"},
}
_WIDE = {"equity", "regime_probabilities", "alerts", "positions"}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine."""
    return host in LOOPBACK or host.startswith("127.")


def _cards(data: RunData) -> list[Any]:
    cards = [
        html.Div(
            [html.Div(label, style={"fontSize": "0.8em", "color": "#666"}), html.Div(value, className="card-value")],
            style=_STYLE["card"],
            id=f"card-{label.lower().replace(' ', '-').replace('&', 'and')}",
        )
        for label, value in summary_values(data)
    ]
    state = str(data.live.get("trading_state") or _last_risk_state(data) or "")
    if state:
        colour = {"ACTIVE": "#2e8b57", "REDUCING": "#e69500", "HALTED": "#b22222"}.get(state, "#666")
        cards.append(
            html.Div(
                [
                    html.Div("Trading", style={"fontSize": "0.8em", "color": "#666"}),
                    html.Div(state, className="card-value"),
                ],
                style={**_STYLE["card"], "borderColor": colour, "color": colour},
                id="card-trading",
            ),
        )
    return cards


def _last_risk_state(data: RunData) -> str:
    if data.risk.empty or "trading_state" not in data.risk.columns:
        return ""
    states = data.risk.groupby("instrument_id")["trading_state"].last().astype(str)
    for level in ("HALTED", "REDUCING", "ACTIVE"):
        if (states == level).any():
            return level
    return ""


def _status(data: RunData) -> str:
    updated = data.live.get("updated") or data.run_info.get("updated")
    stopped = "stopped" in (data.live.get("status"), data.run_info.get("status"))
    if data.mode in ("paper", "live") and not stopped:
        return f"{data.mode} node · updated {updated or 'unknown'}"
    return f"{data.mode} run" + (" (stopped)" if stopped else "")


def _market_options(data: RunData) -> list[dict[str, str]]:
    return [{"label": "All markets", "value": ALL}] + [{"label": m, "value": m} for m in data.markets()]


def _figures(data: RunData, market: str | None, recent_alerts: int) -> list[Any]:
    out = []
    for spec in FIGURES:
        if spec.key == "alerts":
            out.append(alerts_figure(data, market, limit=recent_alerts))
        else:
            out.append(spec.build(data, market))
    return out


def create_app(
    run_dir: Path | str,
    *,
    refresh_s: float = 5.0,
    token: str | None = None,
    recent_alerts: int = 50,
) -> dash.Dash:
    """The Dash app showing ``run_dir``; with ``token`` every request must carry it."""
    run_path = Path(run_dir)
    first = load_run(run_path)  # a one-line error now if the folder is not a run folder
    app = dash.Dash(
        __name__,
        title=f"MIA · {run_path.name}",
        update_title="",
        serve_locally=True,
        suppress_callback_exceptions=True,
    )
    if token:
        _require_token(app, token)
    graphs = [
        html.Div(
            dcc.Graph(id=f"fig-{spec.key}", figure=figure, config={"displaylogo": False}),
            style=_STYLE["wide"] if spec.key in _WIDE else {},
        )
        for spec, figure in zip(FIGURES, _figures(first, None, recent_alerts), strict=True)
    ]
    app.layout = html.Div(
        [
            html.Div(
                [
                    html.H2("MIA dashboard", style={"margin": "0.4em 0"}),
                    html.Code(str(run_path), id="run-path"),
                    html.Span(_status(first), id="status"),
                    dcc.Dropdown(
                        id="market",
                        options=_market_options(first),  # type: ignore[arg-type]
                        value=ALL,
                        clearable=False,
                        style={"width": "14em"},
                    ),
                ],
                style=_STYLE["header"],
            ),
            html.Div(_cards(first), id="cards", style=_STYLE["cards"]),
            html.Div(graphs, style=_STYLE["grid"]),
            dcc.Interval(id="refresh", interval=int(refresh_s * 1000), n_intervals=0),
            dcc.Store(id="signature", data=signature(run_path)),
        ],
        style=_STYLE["page"],
    )

    @app.callback(
        Output("signature", "data"),
        Input("refresh", "n_intervals"),
        State("signature", "data"),
    )
    def _watch(_: int, seen: str | None) -> str:
        """Cheap poll: a new signature only when a run file changed, which triggers the redraw."""
        current = signature(run_path)
        if current == seen:
            raise PreventUpdate
        return current

    outputs = [Output(f"fig-{spec.key}", "figure") for spec in FIGURES]
    outputs += [
        Output("cards", "children"),
        Output("status", "children"),
        Output("market", "options"),
    ]

    @app.callback(outputs, Input("signature", "data"), Input("market", "value"), prevent_initial_call=True)
    def _redraw(_: str, market: str) -> list[Any]:
        """Reload the run folder and rebuild every figure for the chosen market."""
        data = load_run(run_path)
        chosen = None if market in (None, ALL) else market
        return [*_figures(data, chosen, recent_alerts), _cards(data), _status(data), _market_options(data)]

    return app


def _require_token(app: dash.Dash, token: str) -> None:
    """Refuse every request without the token; a valid ``?token=`` sets a same-site cookie."""
    server = app.server
    expected = token.encode()

    def _matches(candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(str(candidate).encode(), expected)

    @server.before_request
    def _check() -> Response | None:
        header = request.headers.get("Authorization", "")
        bearer = header[7:] if header.startswith("Bearer ") else None
        if _matches(request.cookies.get(TOKEN_COOKIE)) or _matches(bearer):
            return None
        if _matches(request.args.get("token")):
            return None
        return Response("MIA dashboard: token required (open the URL printed by `mia dashboard`)\n", status=401)

    @server.after_request
    def _remember(response: Response) -> Response:
        if _matches(request.args.get("token")):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response


@dataclass
class DashboardServer:
    """A running dashboard: where it listens and how to stop it."""

    server: BaseWSGIServer
    thread: threading.Thread
    host: str
    port: int
    token: str | None

    @property
    def url(self) -> str:
        """The URL to open (with the token when one is required)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = f"/?token={self.token}" if self.token else "/"
        return f"http://{host}:{self.port}{suffix}"

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def resolve_token(host: str, env_value: str | None) -> str | None:
    """No token on loopback; elsewhere the configured one, or a fresh random one."""
    if is_loopback(host):
        return env_value or None
    return env_value or secrets.token_urlsafe(24)


def start_dashboard(
    run_dir: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    refresh_s: float = 5.0,
    token: str | None = None,
    recent_alerts: int = 50,
) -> DashboardServer:
    """Build the app and serve it in a background thread (port 0 picks a free port)."""
    if not is_loopback(host) and not token:
        raise ValueError("a token is required when the dashboard is bound to a non-loopback address")
    app = create_app(run_dir, refresh_s=refresh_s, token=token, recent_alerts=recent_alerts)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="mia-dashboard", daemon=True)
    thread.start()
    return DashboardServer(server=server, thread=thread, host=host, port=int(server.server_port), token=token)


__all__ = [
    "ALL",
    "DashboardServer",
    "create_app",
    "is_loopback",
    "resolve_token",
    "start_dashboard",
]
