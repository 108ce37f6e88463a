"""Parameters of the feature families that are not part of a feature's name (``parameters:`` in feature_sets.yaml).

Windows and horizons are in the feature names (``rv_30``, ``news_sentiment_240m``) and fixed in code;
what may be tuned without renaming a feature lives here, validated like every other config file.
"""

from typing import Annotated

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderFlowParams(_Model):
    """Thresholds of the spoofing tracker, the fast-quote clock and the large-trade filter."""

    fast_quote_ms: Annotated[float, Field(gt=0, le=10_000)] = 100.0
    large_add_multiple: Annotated[float, Field(gt=1, le=100)] = 3.0
    spoof_max_life_ms: Annotated[float, Field(gt=0, le=600_000)] = 5_000.0
    spoof_pull_fraction: Annotated[float, Field(gt=0, le=1)] = 0.8
    large_trade_multiple: Annotated[float, Field(gt=1, le=100)] = 5.0


class CrossMarketParams(_Model):
    """Which reference series feed a root, and how stale they may be."""

    #: Root → the ETF proxy's bar type (SPY for ES/MES, QQQ for NQ/MNQ) as loaded in the catalog.
    etf_bar_types: dict[str, str] = {
        "ES": "SPY.ARCA-1-MINUTE-LAST-EXTERNAL",
        "MES": "SPY.ARCA-1-MINUTE-LAST-EXTERNAL",
        "NQ": "QQQ.NASDAQ-1-MINUTE-LAST-EXTERNAL",
        "MNQ": "QQQ.NASDAQ-1-MINUTE-LAST-EXTERNAL",
    }
    vix_bar_type: str = "VIX.CBOE-1-DAY-LAST-EXTERNAL"
    vix3m_bar_type: str = "VIX3M.CBOE-1-DAY-LAST-EXTERNAL"
    vix9d_bar_type: str = "VIX9D.CBOE-1-DAY-LAST-EXTERNAL"
    etf_max_age_minutes: Annotated[float, Field(gt=0, le=1440)] = 5.0
    #: Pair statistics (correlation, beta) are NaN once the newest pair is older than this.
    etf_pair_max_age_hours: Annotated[float, Field(gt=0, le=720)] = 24.0
    vix_max_age_days: Annotated[float, Field(gt=0, le=30)] = 5.0
    #: Bars per year used to annualise 1-minute volatility (252 days x 1,380 Globex minutes).
    bars_per_year: Annotated[float, Field(gt=0)] = 252.0 * 1380.0


class OptionsParams(_Model):
    """Which options count, and which chain serves which root."""

    min_days_to_expiry: Annotated[float, Field(ge=0, le=30)] = 1.0
    max_days_to_expiry: Annotated[float, Field(gt=0, le=3650)] = 90.0
    atm_tolerance: Annotated[float, Field(gt=0, le=0.5)] = 0.05
    zero_gamma_range: Annotated[float, Field(gt=0, le=0.5)] = 0.15
    max_age_days: Annotated[float, Field(gt=0, le=30)] = 5.0
    #: Root of the chain's underlying → contract multiplier (dollars per point per option).
    multipliers: dict[str, float] = {"SPX": 100.0, "NDX": 100.0, "ES": 50.0, "MES": 5.0, "NQ": 20.0, "MNQ": 2.0}
    #: Futures root → instrument id of an index chain to use when its own contract has none.
    underlyings: dict[str, str] = {"ES": "SPX.CBOE", "MES": "SPX.CBOE", "NQ": "NDX.CBOE", "MNQ": "NDX.CBOE"}


class NewsParams(_Model):
    """Source weights, relevance aliases and extra lexicon entries of the offline sentiment model."""

    source_weights: dict[str, Annotated[float, Field(ge=0, le=10)]] = {
        "reuters": 1.0,
        "bloomberg": 1.0,
        "dow jones": 1.0,
        "wsj": 0.9,
        "cnbc": 0.7,
        "marketwatch": 0.6,
        "benzinga": 0.5,
        "twitter": 0.2,
    }
    default_source_weight: Annotated[float, Field(ge=0, le=10)] = 0.5
    #: Root → symbols and words that make a story relevant to it (case-insensitive).
    aliases: dict[str, list[str]] = {
        "ES": ["ES", "MES", "SPX", "SPY", "S&P 500", "S&P500", "SP500"],
        "MES": ["ES", "MES", "SPX", "SPY", "S&P 500", "S&P500", "SP500"],
        "NQ": ["NQ", "MNQ", "NDX", "QQQ", "NASDAQ"],
        "MNQ": ["NQ", "MNQ", "NDX", "QQQ", "NASDAQ"],
    }
    #: Symbols that mark a story as market-wide (relevant to every root); a story with no symbols is too.
    market_wide: list[str] = ["*", "US", "MARKET", "MACRO", "FED", "ECONOMY"]
    #: Extra words for the VADER lexicon (valence -4..4), applied offline at start.
    lexicon: dict[str, Annotated[float, Field(ge=-4, le=4)]] = {
        "hawkish": -1.5,
        "dovish": 1.2,
        "selloff": -2.5,
        "sell-off": -2.5,
        "plunge": -2.8,
        "plunges": -2.8,
        "tumble": -2.3,
        "tumbles": -2.3,
        "slump": -2.2,
        "rally": 2.0,
        "rallies": 2.0,
        "surge": 1.9,
        "surges": 1.9,
        "soar": 2.2,
        "soars": 2.2,
        "beat": 1.2,
        "beats": 1.2,
        "miss": -1.3,
        "misses": -1.3,
        "downgrade": -1.8,
        "upgrade": 1.6,
        "recession": -2.5,
        "default": -2.2,
        "layoffs": -1.9,
        "inflation": -0.8,
        "hike": -0.9,
        "cut": -0.4,
        "stimulus": 1.3,
        "shutdown": -1.8,
    }
    #: Minutes after which a story no longer counts towards the sentiment average (it is NaN after).
    stale_after_minutes: Annotated[float, Field(gt=0, le=10_080)] = 720.0


class MacroParams(_Model):
    """How strongly each kind of release moves the market, and over what time."""

    impact_by_category: dict[str, Annotated[float, Field(ge=0, le=20)]] = {
        "FOMC": 2.5,
        "CPI": 2.0,
        "NFP": 2.0,
        "PCE": 1.4,
        "GDP": 1.3,
        "RETAIL": 1.2,
        "PPI": 1.1,
        "ISM": 1.0,
    }
    impact_by_importance: dict[int, Annotated[float, Field(ge=0, le=20)]] = {1: 0.3, 2: 0.8, 3: 1.5}
    impact_half_width_minutes: Annotated[float, Field(gt=0, le=1440)] = 90.0
    impact_horizon_minutes: Annotated[float, Field(gt=0, le=2880)] = 360.0


class FeatureParams(_Model):
    """All tunable parameters of the feature families."""

    orderflow: OrderFlowParams = OrderFlowParams()
    crossmarket: CrossMarketParams = CrossMarketParams()
    options: OptionsParams = OptionsParams()
    news: NewsParams = NewsParams()
    macro: MacroParams = MacroParams()
