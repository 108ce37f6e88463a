"""Pydantic models of ``config/risk.yaml`` and ``config/router_config.yaml``.

The risk file holds every limit the risk actor enforces and every number the exit geometry and the
position sizer use; the router file holds the MIA strategy's entry rules per regime. Both are
validated before a run starts (``mia config check config/risk.yaml``): a negative limit, a stop that
would sit inside the spread, or a leverage cap below 1 is a one-line error naming the key.
"""

import math
from pathlib import Path
from typing import Annotated
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from mia_strategies.config import config_dir
from mia_strategies.config import load_config
from mia_strategies.config import register_config_kind
from mia_strategies.providers.params import RlEnsembleParams
from mia_strategies.providers.params import RlPolicyParams


#: The regimes the router and the risk limits know, in the order ``RegimeState.labels`` uses.
REGIMES: tuple[str, ...] = ("trend", "range", "defensive")
Regime = Literal["trend", "range", "defensive"]
#: Kill switches a breach can name; ``sticky`` lists those that outlive the trading day.
KILL_SWITCHES: tuple[str, ...] = ("max_daily_loss", "max_drawdown", "max_contracts", "max_orders_per_minute")
KillSwitch = Literal["max_daily_loss", "max_drawdown", "max_contracts", "max_orders_per_minute"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _all_regimes(value: dict[str, float], what: str) -> dict[str, float]:
    missing = [r for r in REGIMES if r not in value]
    if missing:
        raise ValueError(f"{what} must give a value for every regime ({', '.join(REGIMES)}); missing {missing}")
    return value


# -- risk.yaml -------------------------------------------------------------------------------------


class SizingSettings(_Model):
    """Fractional Kelly on the signal, scaled down by volatility and one-sided order flow."""

    kelly_fraction: Annotated[float, Field(gt=0, le=1)] = 0.1
    #: Hard cap on the share of equity a single entry may lose at its stop, whatever Kelly says.
    max_risk_fraction: Annotated[float, Field(gt=0, le=0.25)] = 0.02
    #: ``atr_dynamic`` (z-score of ATR(14) against its recent values) above this scales the size by
    #: ``atr_threshold / atr_dynamic``.
    atr_threshold: Annotated[float, Field(gt=0, le=20)] = 1.5
    #: ``|orderflow_imbalance|`` beyond this tapers the size linearly to zero at 1.
    orderflow_imbalance_limit: Annotated[float, Field(gt=0, lt=1)] = 0.9
    #: Scale applied for a sizing feature the feature set carries but that is NaN now.
    missing_feature_scale: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: Share of the free balance initial margin may use.
    margin_buffer: Annotated[float, Field(gt=0, le=1)] = 0.8


class ExitSettings(_Model):
    """Exit geometry: stop, trailing stop, partial targets (reward-to-risk multiples)."""

    atr_period: Annotated[int, Field(ge=2, le=500)] = 14
    stop_atr: Annotated[float, Field(gt=0, le=20)] = 2.0
    #: Regimes whose entries trail their stop, and the distance in ATRs.
    trail_atr: dict[Regime, Annotated[float, Field(gt=0, le=20)]] = {"trend": 1.5}
    #: A trailing stop moves only when it tightens by at least this many ATRs (fewer modifications).
    trail_step_atr: Annotated[float, Field(ge=0, le=20)] = 0.25
    targets_r: list[Annotated[float, Field(gt=0, le=50)]] = [2.0, 4.0]
    target_fractions: list[Annotated[float, Field(gt=0, le=1)]] = [0.5, 0.5]
    #: The stop must be at least this many ticks beyond the far side of the spread.
    min_stop_ticks: Annotated[int, Field(ge=1, le=1000)] = 4
    #: Use option-positioning levels (call wall, put wall, key strikes) as targets when closer.
    option_levels: bool = True
    #: A level is a target only if it is at least this many R away (reward must cover the risk).
    min_level_r: Annotated[float, Field(gt=0, le=50)] = 1.0

    @field_validator("min_stop_ticks", mode="before")
    @classmethod
    def _stop_outside_spread(cls, value: object) -> object:
        if isinstance(value, int | float) and value < 1:
            raise ValueError("a stop closer than 1 tick sits inside the spread; use at least 1")
        return value

    @model_validator(mode="after")
    def _targets_consistent(self) -> "ExitSettings":
        if not self.targets_r:
            raise ValueError("targets_r needs at least one reward-to-risk multiple such as [2, 4]")
        if list(self.targets_r) != sorted(set(self.targets_r)):
            raise ValueError("targets_r must be strictly increasing")
        if len(self.target_fractions) != len(self.targets_r):
            raise ValueError("target_fractions needs one share per entry of targets_r")
        if not math.isclose(sum(self.target_fractions), 1.0, abs_tol=1e-9):
            raise ValueError("target_fractions must add up to 1")
        return self


class BlockSettings(_Model):
    """Microstructure and news conditions that block entries and close positions."""

    spoofing_score_max: Annotated[float, Field(gt=0, le=1e6)] = 0.8
    volume_anomaly_max: Annotated[float, Field(gt=0, le=1e6)] = 3.0
    #: Signed news sentiment (-1..1) below this is bearish: no new longs, longs are closed.
    bearish_news_below: Annotated[float, Field(ge=-1, le=0)] = -0.5
    #: What a NaN anomaly feature means when the feature set carries it: block (safe) or ignore.
    anomaly_missing: Literal["block", "ignore"] = "block"


class CvarSettings(_Model):
    """CVaR of recent closed-trade returns (fractions of equity); a breach blocks and flattens."""

    alpha: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    limit: Annotated[float, Field(gt=0, le=1)] = 0.1
    window_trades: Annotated[int, Field(ge=5, le=100_000)] = 50
    min_trades: Annotated[int, Field(ge=1, le=100_000)] = 20
    flatten: bool = True

    @model_validator(mode="after")
    def _min_within_window(self) -> "CvarSettings":
        if self.min_trades > self.window_trades:
            raise ValueError("min_trades must not exceed window_trades")
        return self


class MacroSettings(_Model):
    """Be flat around high-impact scheduled releases (FOMC, CPI, NFP)."""

    flat_minutes_before: Annotated[int, Field(ge=0, le=24 * 60)] = 10
    resume_minutes_after: Annotated[int, Field(ge=0, le=24 * 60)] = 5
    min_importance: Annotated[int, Field(ge=1, le=3)] = 3
    flatten: bool = True


class KillSwitchSettings(_Model):
    """Limits whose breach halts trading through nautilus's risk engine."""

    max_daily_loss: Annotated[float, Field(gt=0, le=1e12)] = 5_000.0
    max_drawdown: Annotated[float, Field(gt=0, lt=1)] = 0.15
    max_contracts: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = {"ES": 2, "MES": 10, "NQ": 2, "MNQ": 10}
    max_contracts_total: Annotated[int, Field(ge=1, le=100_000)] = 12
    max_orders_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 60
    flatten_on_halt: bool = True
    #: Halts that stay in force after the trading day ends, until ``mia risk reset``.
    sticky: list[KillSwitch] = ["max_drawdown"]

    def contracts_limit(self, root: str) -> int:
        """Per-instrument contract limit of ``root``; roots not listed get the total limit."""
        return self.max_contracts.get(root, self.max_contracts_total)


class FeatureNameSettings(_Model):
    """Which ``FeatureVector`` names feed the risk rules (see ``config/feature_sets.yaml``).

    Option levels are in the option chain's units; the ``*_distance`` features (log distance of the
    level mapped to the instrument from the bar close) map them onto the futures price.
    """

    atr: str = "atr_14"
    atr_dynamic: str = "atr_dynamic"
    orderflow_imbalance: str = "orderflow_imbalance"
    spoofing_score: str = "spoofing_score"
    volume_anomaly: str = "volume_anomaly"
    #: A signed sentiment (-1..1): the bearish-news block and the adaptive reward read it.
    news_sentiment: str = "news_sentiment_score"
    call_wall: str = "call_wall"
    call_wall_distance: str = "call_wall_distance"
    put_wall: str = "put_wall"
    put_wall_distance: str = "put_wall_distance"
    key_strikes_prefix: str = "key_strikes_"
    minutes_to_event: str = "minutes_to_next_high_impact"
    vix: str = "vix_level"
    #: Features older than this (seconds, against the bar) count as missing.
    stale_after_s: Annotated[int, Field(ge=1, le=7 * 86_400)] = 300


class RiskConfig(_Model):
    """The risk file: sizing, leverage caps by regime, exits, blocks, CVaR, macro, kill switches."""

    sizing: SizingSettings = SizingSettings()
    #: Maximum notional / equity by regime (5x in trend, 1x defensive); below 1 is refused.
    leverage: dict[Regime, Annotated[float, Field(ge=1, le=50)]] = {"trend": 5.0, "range": 4.0, "defensive": 1.0}
    exits: ExitSettings = ExitSettings()
    blocks: BlockSettings = BlockSettings()
    cvar: CvarSettings = CvarSettings()
    macro: MacroSettings = MacroSettings()
    kill_switches: KillSwitchSettings = KillSwitchSettings()
    features: FeatureNameSettings = FeatureNameSettings()
    #: Where paper and live runs persist halts (a backtest keeps its own in the run folder).
    state_file: Path = Path("state/risk_state.json")

    @field_validator("leverage", mode="before")
    @classmethod
    def _leverage_at_least_one(cls, value: object) -> object:
        if isinstance(value, dict):
            for regime, cap in value.items():
                if isinstance(cap, int | float) and cap < 1:
                    raise ValueError(f"leverage cap of {regime} is {cap}: a cap below 1 is not a leverage cap")
        return value

    @field_validator("leverage")
    @classmethod
    def _leverage_every_regime(cls, value: dict[str, float]) -> dict[str, float]:
        return _all_regimes(value, "leverage")


# -- router_config.yaml ----------------------------------------------------------------------------


class MomentumParams(_Model):
    """Trend signal: the move over ``lookback_bars`` in units of ATR x sqrt(bars)."""

    kind: Literal["momentum"] = "momentum"
    lookback_bars: Annotated[int, Field(ge=2, le=2000)] = 20
    #: Score at which the probability reaches about 0.88 (tanh(1)); smaller is more eager.
    scale: Annotated[float, Field(gt=0, le=100)] = 1.5
    max_probability: Annotated[float, Field(gt=0.5, le=1)] = 0.9
    horizon_bars: Annotated[int, Field(ge=1, le=2000)] = 10


class MeanReversionParams(_Model):
    """Range signal: fade a close ``entry_z`` standard deviations from its rolling mean."""

    kind: Literal["mean_reversion"] = "mean_reversion"
    lookback_bars: Annotated[int, Field(ge=3, le=2000)] = 30
    entry_z: Annotated[float, Field(ge=0, le=20)] = 1.0
    scale: Annotated[float, Field(gt=0, le=100)] = 1.0
    max_probability: Annotated[float, Field(gt=0.5, le=1)] = 0.9
    horizon_bars: Annotated[int, Field(ge=1, le=2000)] = 10


#: Every provider kind a router entry may name: the rules above and the registered RL models
#: (``mia_strategies/providers/params.py``; their code loads only when a router uses them).
ProviderParams = Annotated[
    MomentumParams | MeanReversionParams | RlPolicyParams | RlEnsembleParams,
    Field(discriminator="kind"),
]


class ModeSettings(_Model):
    """Entry rules of one regime's mode."""

    enabled: bool = True
    providers: list[str] = []
    #: Overrides the router's threshold for this mode.
    probability_threshold: Annotated[float, Field(gt=0.5, lt=1)] | None = None
    exit_on_regime_change: bool = True
    #: Decision bars the routing regime must differ from the entry's before that exit fires: one bar
    #: of a flapping regime is noise, and every exit pays the spread and commissions.
    regime_exit_confirm_bars: Annotated[int, Field(ge=1, le=1000)] = 3
    #: Share of the risk-sized contracts this mode trades (defensive modes trade smaller).
    size_scale: Annotated[float, Field(gt=0, le=1)] = 1.0
    rth_only: bool = False
    cooldown_bars: Annotated[int, Field(ge=0, le=10_000)] = 3


class RouterConfig(_Model):
    """The router file: signal providers and the entry rules of the trend, range and defensive modes."""

    probability_threshold: Annotated[float, Field(gt=0.5, lt=1)] = 0.65
    #: A regime whose probability is below this routes to the defensive mode.
    min_regime_confidence: Annotated[float, Field(ge=0, le=1)] = 0.5
    providers: dict[str, ProviderParams] = {
        "momentum": MomentumParams(),
        "mean_reversion": MeanReversionParams(),
    }
    modes: dict[Regime, ModeSettings] = {
        "trend": ModeSettings(providers=["momentum"]),
        "range": ModeSettings(providers=["mean_reversion"]),
        "defensive": ModeSettings(enabled=False, size_scale=0.5, rth_only=True),
    }

    @model_validator(mode="after")
    def _modes_complete(self) -> "RouterConfig":
        missing = [r for r in REGIMES if r not in self.modes]
        if missing:
            raise ValueError(f"modes must define every regime ({', '.join(REGIMES)}); missing {missing}")
        for regime, mode in self.modes.items():
            unknown = [p for p in mode.providers if p not in self.providers]
            if unknown:
                raise ValueError(
                    f"modes.{regime}.providers names unknown providers {unknown}; define them under providers"
                )
            if mode.enabled and not mode.providers:
                raise ValueError(f"modes.{regime} is enabled but lists no providers")
        return self

    def threshold(self, regime: str) -> float:
        """The entry threshold of ``regime``'s mode."""
        mode = self.modes[regime]  # type: ignore[index]
        return mode.probability_threshold if mode.probability_threshold is not None else self.probability_threshold


# -- loading ---------------------------------------------------------------------------------------


def register_kinds() -> None:
    """Make ``risk`` and ``router_config`` known to ``load_config`` and ``mia config check``."""
    register_config_kind("risk", RiskConfig)
    register_config_kind("router_config", RouterConfig)


def load_risk(path: Path | None = None) -> RiskConfig:
    """Load ``risk.yaml`` from ``path`` or the config folder; defaults when the folder has none."""
    register_kinds()
    default = config_dir() / "risk.yaml"
    path = path or default
    if not path.exists() and path == default:
        return RiskConfig()
    result: RiskConfig = load_config(path, "risk")
    return result


def load_router(path: Path | None = None) -> RouterConfig:
    """Load ``router_config.yaml`` from ``path`` or the config folder; defaults when absent."""
    register_kinds()
    default = config_dir() / "router_config.yaml"
    path = path or default
    if not path.exists() and path == default:
        return RouterConfig()
    result: RouterConfig = load_config(path, "router_config")
    return result
