"""News features: decayed, source-weighted sentiment and impact of the stories relevant to a root.

Each relevant headline contributes its VADER compound score ``c`` (see ``catalog.news``) with its
source weight ``w``; contributions decay as ``exp(-age / tau)`` with ``tau`` of 15, 60 or 240 minutes.
Sentiment is the decayed weighted mean of ``c``; impact is the decayed weighted sum of ``|c|``.
Until a root's first story every news feature is NaN (no news feed is not "neutral news"), and the
sentiment means are NaN again once the newest story is older than ``stale_after_minutes``.

The store is shared by every contract of the root; it changes only when a story arrives and bar
reads are pure functions of the store and the bar time, so results never depend on which contract's
bar is processed first.
"""

import math
import re
from collections import deque

import numpy as np

from catalog.news import SentimentModel
from mia_strategies.features.core import NS_PER_MINUTE
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.params import NewsParams
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray


FAMILY = "news"
_N = ("news",)
TAUS_MIN = (15, 60, 240)
_POSITIVE = 0.05
_NEGATIVE = -0.05

SPECS = SpecList(FAMILY)
SPECS.add(
    "news_sentiment_score", _N, 1, "decayed (tau 60 min), source-weighted mean VADER compound of recent stories, -1..1"
)
SPECS.add("news_sentiment_15m", _N, 1, "the same with tau 15 min")
SPECS.add("news_sentiment_240m", _N, 1, "the same with tau 240 min")
SPECS.add("news_impact_score", _N, 1, "decayed (tau 60 min), source-weighted sum of |compound|")
SPECS.add("news_impact_15m", _N, 1, "the same with tau 15 min")
SPECS.add("news_impact_240m", _N, 1, "the same with tau 240 min")
SPECS.add("news_count_1h", _N, 1, "relevant stories in the last hour")
SPECS.add("news_count_24h", _N, 1, "relevant stories in the last 24 hours")
SPECS.add(
    "news_negative_share_4h", _N, 1, "share of the last 4 hours' stories with compound < -0.05 (NaN without stories)"
)
SPECS.add(
    "news_positive_share_4h", _N, 1, "share of the last 4 hours' stories with compound > 0.05 (NaN without stories)"
)
SPECS.add(
    "news_sentiment_dispersion_4h", _N, 1, "standard deviation of the last 4 hours' compounds (NaN under 2 stories)"
)
SPECS.add("news_max_abs_sentiment_1h", _N, 1, "largest |compound| in the last hour (0 without stories)")
SPECS.add("news_minutes_since_last", _N, 1, "minutes since the newest relevant story")
INDEX = SPECS.index()


class NewsStore:
    """Decayed sums and a 24-hour window of the stories relevant to one root."""

    def __init__(self, root: str, params: NewsParams) -> None:
        self.root = root
        aliases = params.aliases.get(root, [root])
        self._symbols = {a.upper() for a in aliases} | {root.upper()}
        self._market_wide = {s.upper() for s in params.market_wide}
        words = sorted((a for a in aliases if len(a) > 2), key=len, reverse=True)
        self._text = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.I) if words else None
        self._taus = [t * NS_PER_MINUTE for t in TAUS_MIN]
        self._num = [0.0] * len(TAUS_MIN)
        self._den = [0.0] * len(TAUS_MIN)
        self._abs = [0.0] * len(TAUS_MIN)
        self._last_update = 0
        self.last_story = 0
        self.stories = 0
        self._window: deque[tuple[int, float]] = deque()
        self._stale_ns = int(params.stale_after_minutes * NS_PER_MINUTE)

    def relevant(self, symbols: str, headline: str) -> bool:
        """A story counts for the root when it names none, a market-wide tag, an alias, or an alias word."""
        names = [s for s in symbols.split(",") if s]
        if not names:
            return True
        if any(s in self._market_wide or s in self._symbols for s in names):
            return True
        return bool(self._text is not None and self._text.search(headline))

    def add(self, ts: int, compound: float, weight: float) -> None:
        """Decay the sums to ``ts`` (never backwards) and add one story."""
        ts = max(ts, self._last_update)
        self._decay_to(ts)
        for j in range(len(self._taus)):
            self._num[j] += weight * compound
            self._den[j] += weight
            self._abs[j] += weight * abs(compound)
        self._window.append((ts, compound))
        self.last_story = ts
        self.stories += 1

    def _decay_to(self, ts: int) -> None:
        dt = ts - self._last_update
        if dt > 0 and self._last_update:
            for j, tau in enumerate(self._taus):
                f = math.exp(-dt / tau)
                self._num[j] *= f
                self._den[j] *= f
                self._abs[j] *= f
        self._last_update = ts

    def write(self, ts: int, out: FloatArray) -> None:
        """Write the features at bar time ``ts`` without changing the store."""
        if not self.stories:
            return
        dt = max(0, ts - self._last_update)
        stale = ts - self.last_story > self._stale_ns
        for j, tau in enumerate(self._taus):
            f = math.exp(-dt / tau)
            den = self._den[j] * f
            sentiment = self._num[j] * f / den if den > 0.0 and not stale else NAN
            impact = self._abs[j] * f
            out[INDEX[("news_sentiment_15m", "news_sentiment_score", "news_sentiment_240m")[j]]] = sentiment
            out[INDEX[("news_impact_15m", "news_impact_score", "news_impact_240m")[j]]] = impact
        window = self._window
        cutoff_24h = ts - 1440 * NS_PER_MINUTE
        while window and window[0][0] <= cutoff_24h - 1440 * NS_PER_MINUTE:
            window.popleft()  # keep two days: reads for slightly older bars stay exact
        recent = [(t, c) for t, c in window if cutoff_24h < t <= ts]
        hour = [c for t, c in recent if t > ts - 60 * NS_PER_MINUTE]
        four = np.array([c for t, c in recent if t > ts - 240 * NS_PER_MINUTE])
        out[INDEX["news_count_1h"]] = float(len(hour))
        out[INDEX["news_count_24h"]] = float(len(recent))
        if len(four):
            out[INDEX["news_negative_share_4h"]] = float(np.mean(four < _NEGATIVE))
            out[INDEX["news_positive_share_4h"]] = float(np.mean(four > _POSITIVE))
        if len(four) >= 2:
            out[INDEX["news_sentiment_dispersion_4h"]] = float(np.std(four))
        out[INDEX["news_max_abs_sentiment_1h"]] = max((abs(c) for c in hour), default=0.0)
        out[INDEX["news_minutes_since_last"]] = (ts - self.last_story) / NS_PER_MINUTE


class NewsHub:
    """Scores each story once and files it with every root it is relevant to."""

    def __init__(self, params: NewsParams) -> None:
        self._params = params
        self._model: SentimentModel | None = None
        self.stores: dict[str, NewsStore] = {}

    def store(self, root: str) -> NewsStore:
        """The store of ``root`` (created on first use)."""
        store = self.stores.get(root)
        if store is None:
            store = NewsStore(root, self._params)
            self.stores[root] = store
        return store

    def on_headline(self, ts: int, source: str, headline: str, symbols: str) -> float:
        """Score one story and add it to every relevant root; return its compound score."""
        if self._model is None:
            self._model = SentimentModel(self._params.lexicon)
        compound = self._model.score(headline)
        weight = self._params.source_weights.get(source.strip().lower(), self._params.default_source_weight)
        for store in self.stores.values():
            if store.relevant(symbols, headline):
                store.add(ts, compound, weight)
        return compound


class NewsState:
    """Per instrument: reads its root's store."""

    def __init__(self, info: InstrumentInfo) -> None:
        self._root = info.root

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the news features of the root at the bar close."""
        store = ctx.shared.news.stores.get(self._root)
        if store is not None:
            store.write(ctx.bar.ts_event, out)
