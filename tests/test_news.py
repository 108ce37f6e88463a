"""News: headline files, the offline sentiment model, and the decayed sentiment/impact features."""

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest

from catalog.news import NEWS_INSTRUMENT_ID
from catalog.news import SentimentModel
from catalog.news import ingest_news
from catalog.news import load_headlines
from catalog.types import NewsHeadline
from mia_strategies.errors import DataValidationError
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.params import NewsParams
from mia_strategies.features.sets import load_feature_sets


REPO = Path(__file__).resolve().parents[1]
HEADLINES = REPO / "tests" / "data" / "features" / "news" / "headlines.csv"
SETS = load_feature_sets(REPO / "config" / "feature_sets.yaml")
NAMES = SETS.resolve("ES.training").names
MIN = 60_000_000_000
T0 = 1_765_202_400_000_000_000  # 2025-12-08 14:00 UTC


def test_headline_file_loads_sorted_with_symbols_normalised():
    headlines = load_headlines(HEADLINES)
    assert len(headlines) == 16
    assert [h.ts_init for h in headlines] == sorted(h.ts_init for h in headlines)
    first = headlines[0]
    assert first.instrument_id == NEWS_INSTRUMENT_ID and first.source == "Reuters" and first.symbols == ""
    assert headlines[1].symbols == "ES,SPX"
    assert all(h.ts_event == h.ts_init for h in headlines)


def test_jsonl_and_validation(tmp_path):
    good = tmp_path / "news.jsonl"
    good.write_text(
        json.dumps({"ts": 1_700_000_000, "source": "Reuters", "headline": "Stocks rally", "symbols": ["ES"]}) + "\n"
    )
    [story] = load_headlines(good)
    assert story.ts_event == 1_700_000_000 * 1_000_000_000 and story.symbols == "ES"
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,source,headline\nnot a time,Reuters,Hello\n2024-01-01T00:00:00Z,Reuters,\n")
    with pytest.raises(
        DataValidationError, match=r"line 2: cannot read the time.*line 3: headline is empty.*nothing loaded"
    ):
        load_headlines(bad)


def test_sentiment_runs_offline_and_is_deterministic(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the sentiment model must not touch the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    model = SentimentModel(NewsParams().lexicon)
    negative = model.score("S&P 500 futures tumble at the open on Middle East worries")
    positive = model.score("Stocks rally after Fed decision")
    assert negative < -0.2 < 0.2 < positive
    assert model.score("Stocks rally after Fed decision") == positive
    assert SentimentModel().score("Markets plunge") == 0.0  # the plain VADER lexicon lacks "plunge"
    assert SentimentModel({"plunge": -2.8}).score("Markets plunge") < -0.5


def _hub(markets):
    hub = FeatureHub(SETS, {"ES": "ES.training"}, markets)
    hub.register("ESZ25.GLBX")
    return hub


def _bar(hub, minute: int) -> dict[str, float]:
    ts = T0 + minute * MIN
    return dict(
        zip(NAMES, hub.on_bar("ESZ25.GLBX", BarInput(ts, ts, 6800.0, 6801.0, 6799.0, 6800.0, 5.0)), strict=True)
    )


def _story(minute: float, headline: str, source: str = "Reuters", symbols: str = "") -> NewsHeadline:
    ts = int(T0 + minute * MIN)
    return NewsHeadline(
        story_id=f"s{minute}", source=source, headline=headline, symbols=symbols, ts_event=ts, ts_init=ts
    )


def test_decay_weights_and_relevance_follow_the_formula(markets):
    hub = _hub(markets)
    before = _bar(hub, 1)
    assert math.isnan(before["news_sentiment_score"]) and math.isnan(before["news_impact_score"])
    model = SentimentModel(NewsParams().lexicon)
    a = "Stocks rally on strong jobs data"
    b = "S&P 500 futures tumble on war fears"
    hub.on_news(_story(2, a, "Reuters"))  # weight 1.0
    hub.on_news(_story(5, b, "Benzinga", "ES"))  # weight 0.5
    hub.on_news(_story(6, "Apple upgrade lifts shares", "Reuters", "AAPL"))  # not about ES: ignored
    v = _bar(hub, 35)
    ca, cb = model.score(a), model.score(b)
    for tau, name, impact in (
        (60, "news_sentiment_score", "news_impact_score"),
        (15, "news_sentiment_15m", "news_impact_15m"),
    ):
        wa, wb = 1.0 * math.exp(-33 / tau), 0.5 * math.exp(-30 / tau)
        assert v[name] == pytest.approx((wa * ca + wb * cb) / (wa + wb), rel=1e-9)
        assert v[impact] == pytest.approx(wa * abs(ca) + wb * abs(cb), rel=1e-9)
    assert v["news_count_1h"] == 2 and v["news_count_24h"] == 2
    assert v["news_minutes_since_last"] == 30
    shares = np.array([ca, cb])
    assert v["news_negative_share_4h"] == pytest.approx(np.mean(shares < -0.05))
    assert v["news_sentiment_dispersion_4h"] == pytest.approx(np.std(shares))
    later = _bar(hub, 35 + 13 * 60)  # 13 hours later: older than stale_after_minutes (12 h)
    assert math.isnan(later["news_sentiment_score"])
    assert later["news_impact_score"] == pytest.approx(v["news_impact_score"] * math.exp(-13 * 60 / 60), rel=1e-9)
    assert later["news_count_1h"] == 0


def test_news_ingests_into_the_catalog(tmp_path):
    assert ingest_news(HEADLINES, tmp_path / "cat") == 16
    with pytest.raises(Exception, match="nothing written"):
        ingest_news(HEADLINES, tmp_path / "cat")  # the same stories again would overlap
