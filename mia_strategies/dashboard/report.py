"""``mia report RUN_DIR``: the dashboard's figures as PNG and HTML files in ``RUN_DIR/figures/<market>/``.

One folder per market (root) plus ``portfolio/`` for the whole account, each with ``<figure>.png``,
``<figure>.html`` (sharing one ``plotly.min.js`` per folder, so the pages open offline) and an
``index.html`` that shows every PNG. Images are rendered by kaleido through a headless Chromium kept
open for the whole export (the first image costs several seconds, the next ones a fraction).
Files are written to a temporary folder and moved into place, so an interrupted export never
leaves half a report.
"""

import html
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from mia_strategies.dashboard.data import RunData
from mia_strategies.dashboard.data import load_run
from mia_strategies.dashboard.figures import FIGURES
from mia_strategies.dashboard.figures import summary_values


PORTFOLIO = "portfolio"
_WIDTH = 1200
_CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


@dataclass(frozen=True)
class ReportResult:
    """What an export wrote."""

    folder: Path
    markets: list[str]
    files: list[Path]


def _ensure_browser() -> None:
    """Point kaleido at the system Chromium when it has no browser of its own configured."""
    if os.environ.get("BROWSER_PATH"):
        return
    for candidate in _CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            os.environ["BROWSER_PATH"] = candidate
            return


class _Renderer:
    """Kaleido's persistent Chromium: start once, render many figures, stop."""

    def __enter__(self) -> "_Renderer":
        import kaleido

        _ensure_browser()
        kaleido.start_sync_server(n=1, silence_warnings=True)
        return self

    def png(self, figure: go.Figure) -> bytes:
        import kaleido

        height = int(figure.layout.height or 400)
        data = kaleido.calc_fig_sync(figure, opts={"format": "png", "width": _WIDTH, "height": height, "scale": 1})
        return bytes(data)

    def __exit__(self, *exc: object) -> None:
        import kaleido

        kaleido.stop_sync_server(silence_warnings=True)


def _index_page(title: str, data: RunData, entries: list[tuple[str, str]], images: bool) -> str:
    cards = "".join(
        f"<div class='card'><div class='label'>{html.escape(k)}</div><div>{html.escape(v)}</div></div>"
        for k, v in summary_values(data)
    )
    figures = "\n".join(
        f"<h2>{html.escape(name)}</h2><a href='{key}.html'>"
        + (f"<img src='{key}.png' alt='{html.escape(name)}'>" if images else "open the interactive figure")
        + "</a>"
        for key, name in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
.cards {{ display: flex; gap: .8em; flex-wrap: wrap; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: .4em .9em; }}
.label {{ font-size: .8em; color: #666; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
</style></head>
<body><h1>{html.escape(title)}</h1><div class="cards">{cards}</div>
{figures}
</body></html>
"""


def export_report(
    run_dir: Path | str,
    *,
    markets: list[str] | None = None,
    png: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ReportResult:
    """Write every figure of every market of a run as PNG and HTML under ``RUN_DIR/figures/``."""
    run_path = Path(run_dir)
    data = load_run(run_path)
    chosen = markets if markets is not None else data.markets()
    targets: list[tuple[str, str | None]] = [(PORTFOLIO, None)] + [(m, m) for m in chosen]
    final = run_path / "figures"
    staging = Path(tempfile.mkdtemp(prefix=".figures-", dir=run_path))
    written: list[Path] = []
    total = len(targets) * len(FIGURES)
    done = 0
    try:
        renderer = _Renderer() if png else None
        if renderer is not None:
            renderer.__enter__()
        try:
            for folder_name, market in targets:
                folder = staging / folder_name
                folder.mkdir(parents=True)
                entries = []
                for spec in FIGURES:
                    figure = spec.build(data, market)
                    figure.write_html(folder / f"{spec.key}.html", include_plotlyjs="directory", full_html=True)
                    if renderer is not None:
                        (folder / f"{spec.key}.png").write_bytes(renderer.png(figure))
                    entries.append((spec.key, spec.title))
                    done += 1
                    if progress is not None:
                        progress(done, total)
                title = f"MIA report {run_path.name} · {market or 'all markets'}"
                (folder / "index.html").write_text(_index_page(title, data, entries, png), encoding="utf-8")
        finally:
            if renderer is not None:
                renderer.__exit__(None, None, None)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for path in sorted(final.rglob("*")):
        if path.is_file():
            written.append(path)
    return ReportResult(folder=final, markets=[t[0] for t in targets], files=written)


__all__ = ["PORTFOLIO", "ReportResult", "export_report"]
