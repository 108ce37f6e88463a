"""Pydantic models for every YAML file in ``config/`` and one loader that turns errors into one line.

Each file kind has a model; ``load_config`` picks the model from the file name (``markets.yaml``,
``backtest.yaml``, ``strategy.yaml``) or from an explicit kind. A bad value is reported as
``FILE: key.path: problem (accepted: RANGE; was VALUE)`` so the user knows what to change.
"""

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from mia_strategies.errors import ConfigError


MONTH_CODES = "FGHJKMNQUVXZ"

#: Folder holding the shipped YAML files; ``MIA_CONFIG_DIR`` overrides it.
DEFAULT_CONFIG_DIR = Path("config")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- markets.yaml ---------------------------------------------------------------------------------


class RootSpec(_Model):
    """One futures product (ES, MES, NQ, MNQ): the contract specs CME publishes."""

    description: str = ""
    exchange: str = "XCME"
    currency: Literal["USD", "EUR"] = "USD"
    multiplier: Annotated[int, Field(gt=0, le=1_000_000)]
    tick_size: Annotated[Decimal, Field(gt=0, le=1000)]
    price_precision: Annotated[int, Field(ge=0, le=9)] = 2
    months: str = "HMUZ"
    expiry_time: dt.time = dt.time(9, 30)
    expiry_timezone: str = "America/New_York"
    listing_quarters: Annotated[int, Field(ge=1, le=40)] = 5
    margin_init: Annotated[Decimal, Field(gt=0, le=1)]
    margin_maint: Annotated[Decimal, Field(gt=0, le=1)]
    commission_per_contract: Annotated[Decimal, Field(ge=0, le=100)]
    underlying: str = ""

    @field_validator("months")
    @classmethod
    def _months_are_codes(cls, value: str) -> str:
        if not value or any(c not in MONTH_CODES for c in value) or len(set(value)) != len(value):
            raise ValueError(f"must be distinct month codes from {MONTH_CODES}")
        return "".join(sorted(value, key=MONTH_CODES.index))

    @model_validator(mode="after")
    def _maint_below_init(self) -> "RootSpec":
        if self.margin_maint > self.margin_init:
            raise ValueError("margin_maint must not exceed margin_init")
        precision = max(0, -self.tick_size.normalize().as_tuple().exponent)  # type: ignore[operator]
        if precision > self.price_precision:
            raise ValueError(
                f"price_precision {self.price_precision} cannot represent tick_size {self.tick_size}",
            )
        return self


class RollSettings(_Model):
    """When the active contract changes: a fixed number of calendar days before expiry."""

    days_before_expiry: Annotated[int, Field(ge=0, le=80)] = 8


class MarketsConfig(_Model):
    """The markets file: venue, exchange time zone, roll rule and product specs."""

    venue: str = "GLBX"
    timezone: str = "America/Chicago"
    roll: RollSettings = RollSettings()
    roots: dict[str, RootSpec]

    @field_validator("roots")
    @classmethod
    def _roots_upper(cls, value: dict[str, RootSpec]) -> dict[str, RootSpec]:
        for name in value:
            if not name.isalpha() or not name.isupper() or len(name) > 6:
                raise ValueError(f"root {name!r} must be 1-6 upper-case letters (ES, MNQ)")
        return value

    def root(self, name: str) -> RootSpec:
        """Return the spec of ``name`` or raise a one-line error listing the known roots."""
        try:
            return self.roots[name]
        except KeyError:
            known = ", ".join(sorted(self.roots))
            raise ConfigError(
                f"unknown instrument {name!r}: known roots are {known} (edit config/markets.yaml to add one)",
            ) from None


# -- strategy.yaml --------------------------------------------------------------------------------


class AtrBreakoutParams(_Model):
    """Parameters of the baseline ATR channel breakout with bracket exits."""

    channel_bars: Annotated[int, Field(ge=2, le=1000)] = 20
    atr_period: Annotated[int, Field(ge=2, le=500)] = 14
    stop_atr: Annotated[float, Field(gt=0, le=20)] = 2.0
    target_atr: Annotated[float, Field(gt=0, le=50)] = 3.0
    min_breakout_ticks: Annotated[int, Field(ge=0, le=100)] = 1
    trade_size: dict[str, Annotated[int, Field(ge=1, le=1000)]] = {"ES": 1, "MES": 1, "NQ": 1, "MNQ": 2}
    rth_only: bool = False
    flat_minutes_before_close: Annotated[int, Field(ge=0, le=120)] = 5
    cooldown_bars: Annotated[int, Field(ge=0, le=1000)] = 5
    blocked_regimes: list[Literal["trend", "range", "defensive"]] = ["defensive"]


class MiaSettings(_Model):
    """Where the MIA strategy's parts come from; file names are relative to the config folder."""

    router_file: str = "router_config.yaml"
    risk_file: str = "risk.yaml"
    feature_sets_file: str = "feature_sets.yaml"
    #: The set the feature actor publishes for each market: ``<ROOT>.<feature_set>``.
    feature_set: Annotated[str, Field(min_length=1)] = "inference"
    regime_config_file: str = "regime_detector_config.yaml"
    macro_calendar_file: str | None = "macro_calendar.csv"
    #: Folder of ``mia regime fit`` models (``<ROOT>/<version>.json``, the latest is used); a market
    #: without one gets the causal bar-rule regimes and the run says so.
    regime_models: Path = Path("data/models/regime")
    #: Operations actors (alerts, operator commands and ``live.json``, market memory). A backtest
    #: records alerts to ``alerts.jsonl`` without sending them.
    alerts: bool = True
    operator_control: bool = True
    market_memory: bool = True
    #: Also build a market memory in a backtest (in the run folder; it doubles the CPU cost per bar).
    market_memory_in_backtest: bool = False


class StrategyFile(_Model):
    """The strategy file: which strategy and its parameters.

    ``mia`` is the MIA router strategy with the feature, regime and risk actors (``mia`` section and
    ``router_config.yaml`` / ``risk.yaml``); ``atr_breakout`` the baseline breakout (``params``).
    ``params`` holds the fields both share (``trade_size``, ``flat_minutes_before_close``).
    """

    strategy: Literal["mia", "atr_breakout"] = "mia"
    params: AtrBreakoutParams = AtrBreakoutParams()
    mia: MiaSettings = MiaSettings()


# -- backtest.yaml --------------------------------------------------------------------------------


class FillModelSettings(_Model):
    """Simulated queue position and slippage; seeded so runs are reproducible."""

    prob_fill_on_limit: Annotated[float, Field(ge=0, le=1)] = 0.5
    prob_slippage: Annotated[float, Field(ge=0, le=1)] = 0.1
    random_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42


class VenueSettings(_Model):
    """The simulated CME venue: account, leverage, fills and latency."""

    starting_balance: Annotated[Decimal, Field(gt=0, le=Decimal("1e12"))] = Decimal(100_000)
    currency: Literal["USD", "EUR"] = "USD"
    default_leverage: Annotated[Decimal, Field(ge=1, le=100)] = Decimal(1)
    fill_model: FillModelSettings = FillModelSettings()
    latency_ms: Annotated[float, Field(gt=0, le=10_000)] = 1.0


class BacktestConfig(_Model):
    """The backtest file: data, instruments, time range, venue and the files it builds on."""

    catalog: Path | None = None
    instruments: list[str] = ["ES", "MNQ"]
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    bar_minutes: Annotated[int, Field(ge=1, le=240)] = 1
    roll_policy: Literal["roll", "close"] = "roll"
    warmup_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)] = 120
    venue: VenueSettings = VenueSettings()
    markets_file: Path = Path("markets.yaml")
    strategy_file: Path = Path("strategy.yaml")
    log_level: Literal["ERROR", "WARNING", "INFO", "DEBUG"] = "ERROR"

    @field_validator("instruments")
    @classmethod
    def _instruments_present(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one root such as ES or MNQ")
        return [v.upper() for v in value]

    @model_validator(mode="after")
    def _range_ordered(self) -> "BacktestConfig":
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


CONFIG_KINDS: dict[str, type[BaseModel]] = {
    "markets": MarketsConfig,
    "backtest": BacktestConfig,
    "strategy": StrategyFile,
}


def register_config_kind(kind: str, model: type[BaseModel]) -> None:
    """Let a subsystem add its YAML file kind (``feature_sets``, ``risk``, ...) to ``mia config check``.

    The kind is also the file-name stem the loader recognises (``config/<kind>.yaml``).
    """
    existing = CONFIG_KINDS.get(kind)
    if existing is not None and existing is not model:
        raise ValueError(f"config kind {kind!r} is already registered to {existing.__name__}")
    CONFIG_KINDS[kind] = model  # type: ignore[assignment]


# -- loading --------------------------------------------------------------------------------------


#: The project's own ``config/`` folder, used when the working directory has none.
PROJECT_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def config_dir() -> Path:
    """The configuration folder: ``$MIA_CONFIG_DIR``, else ``./config``, else the project's ``config/``."""
    override = os.environ.get("MIA_CONFIG_DIR")
    if override:
        return Path(override)
    if DEFAULT_CONFIG_DIR.is_dir() or not PROJECT_CONFIG_DIR.is_dir():
        return DEFAULT_CONFIG_DIR
    return PROJECT_CONFIG_DIR


def _accepted_range(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """Describe the bounds of the field at ``loc`` (``0 < x <= 1``), walking nested models."""
    current: Any = model
    field = None
    skip_key = False
    for part in loc:
        if skip_key or isinstance(part, int):
            skip_key = False
            continue
        if current is None or not hasattr(current, "model_fields"):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        if getattr(annotation, "__origin__", None) in (dict, list) and args:
            skip_key = getattr(annotation, "__origin__", None) is dict
            annotation = args[-1]
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if field is None:
        return None
    lower = upper = ""
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Gt):
            lower = f"{meta.gt} < "
        elif isinstance(meta, annotated_types.Ge):
            lower = f"{meta.ge} <= "
        elif isinstance(meta, annotated_types.Lt):
            upper = f" < {meta.lt}"
        elif isinstance(meta, annotated_types.Le):
            upper = f" <= {meta.le}"
    if lower or upper:
        return f"{lower}value{upper}"
    annotation = field.annotation
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return None


def format_validation_error(path: Path | str, model: type[BaseModel], err: ValidationError) -> str:
    """Turn the first pydantic error into ``FILE: key: problem (accepted: ...; was ...)``."""
    first = err.errors()[0]
    loc = tuple(first.get("loc", ()))
    key = ".".join(str(p) for p in loc) or "(top level)"
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        msg = "unknown key (check the spelling against config/ and docs/configuration.md)"
    parts = [msg]
    accepted = _accepted_range(model, loc)
    if accepted:
        parts.append(f"accepted: {accepted}")
    if "input" in first and first.get("type") not in {"missing", "extra_forbidden"}:
        value = first["input"]
        if not isinstance(value, dict | list):
            parts.append(f"was {value!r}")
    extra = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{path}: {key}: " + "; ".join(parts) + extra


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; raise a one-line ConfigError for missing files or bad syntax."""
    if not path.exists():
        raise ConfigError(f"{path}: file not found (pass an existing file or copy one from config/)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem} (fix the YAML syntax)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.__class__.__name__})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys to values, was {type(raw).__name__}")
    return raw


def kind_of(path: Path) -> str:
    """Infer the config kind from the file name (``backtest.yaml`` → ``backtest``)."""
    stem = path.stem.lower()
    for kind in CONFIG_KINDS:
        if stem == kind or stem.startswith(kind + "_") or stem.endswith("_" + kind):
            return kind
    kinds = ", ".join(CONFIG_KINDS)
    raise ConfigError(f"{path}: cannot tell the config kind from its name; pass --kind ({kinds})")


def load_config(path: Path | str, kind: str | None = None) -> Any:
    """Load and validate one YAML file into its model."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found (pass an existing file or copy one from config/)")
    kind = kind or kind_of(path)
    if kind not in CONFIG_KINDS:
        raise ConfigError(f"unknown config kind {kind!r}: use one of {', '.join(CONFIG_KINDS)}")
    model = CONFIG_KINDS[kind]
    raw = read_yaml(path)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(path, model, err)) from None


def load_markets(path: Path | None = None) -> MarketsConfig:
    """Load ``markets.yaml`` from ``path`` or the config folder."""
    result: MarketsConfig = load_config(path or config_dir() / "markets.yaml", "markets")
    return result


def load_strategy(path: Path | None = None) -> StrategyFile:
    """Load ``strategy.yaml``; defaults when the config folder has none."""
    path = path or config_dir() / "strategy.yaml"
    if not path.exists() and path == config_dir() / "strategy.yaml":
        return StrategyFile()
    result: StrategyFile = load_config(path, "strategy")
    return result


def load_backtest(path: Path | None = None) -> tuple[BacktestConfig, Path]:
    """Load ``backtest.yaml``; return it with the folder its relative file references resolve from."""
    if path is None:
        path = config_dir() / "backtest.yaml"
        if not path.exists():
            return BacktestConfig(), config_dir()
    result: BacktestConfig = load_config(path, "backtest")
    return result, path.parent
