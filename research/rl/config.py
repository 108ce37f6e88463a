"""Pydantic models of the research configuration files (pure pydantic: cheap to import from the CLI).

* ``config/trading_env_config.yaml`` → ``TradingEnvConfig``: the gymnasium trading environment.
* ``config/algo_config.yaml`` → ``AlgoConfig``: which algorithms, how long, evaluation, walk-forward,
  PPO-Lagrangian's CVaR constraint, fine-tuning, online learning, Ray.
* ``config/model_params.yaml`` → ``ModelParamsConfig``: network and optimizer hyperparameters per
  algorithm, with per-regime overrides used when fine-tuning on one regime.

All are registered for ``mia config check`` by ``mia_strategies.commands.research``.
"""

from decimal import Decimal
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from mia_strategies.config import config_dir
from mia_strategies.config import format_validation_error
from mia_strategies.config import read_yaml
from mia_strategies.errors import ConfigError
from mia_strategies.providers.config import ALGORITHMS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Algorithm = Literal["sac", "ppo", "ddpg", "qrdqn", "ppo_lagrangian"]
ActionSpace = Literal["continuous", "discrete"]

# -- trading_env_config.yaml ----------------------------------------------------------------------


class ObservationSettings(_Model):
    """How features become a policy input (see ``mia_strategies.providers.observation``)."""

    clip: Annotated[float, Field(ge=1, le=100)] = 5.0
    regime_labels: list[str] = ["trend", "range", "defensive"]


class RewardSettings(_Model):
    """The reward: realised P&L net of costs, adjusted by the strategy's adaptive reward (method 5).

    ``unit`` ``points`` divides the USD P&L by the contract multiplier (index points per contract,
    comparable across ES and MNQ), ``usd`` keeps dollars, ``equity`` divides by the equity before
    the step; ``scale`` divides the result once more. ``method`` ``pnl`` skips the adaptive factors.
    """

    method: Literal["adaptive", "pnl"] = "adaptive"
    unit: Literal["points", "usd", "equity"] = "points"
    scale: Annotated[float, Field(gt=0, le=1e9)] = 1.0


class TradingEnvConfig(_Model):
    """The trading environment: markets, position limits, costs, sessions, episodes, reward."""

    markets: list[str] = ["ES", "MNQ"]
    feature_set: Literal["inference", "training"] = "inference"
    bar_minutes: Annotated[int, Field(ge=1, le=240)] = 1
    max_position_size: dict[str, Annotated[int, Field(ge=1, le=1000)]] = {"ES": 1, "MNQ": 2}
    starting_balance: Annotated[Decimal, Field(gt=0, le=Decimal("1e12"))] = Decimal(100_000)
    slippage_ticks: Annotated[float, Field(ge=0, le=100)] = 0.1
    max_margin_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    flat_minutes_before_close: Annotated[int, Field(ge=0, le=120)] = 5
    episode: Literal["session", "bars"] = "session"
    episode_bars: Annotated[int, Field(ge=2, le=1_000_000)] = 390
    reward_threshold: float | None = None
    observation: ObservationSettings = ObservationSettings()
    reward: RewardSettings = RewardSettings()

    @field_validator("markets")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one root such as ES or MNQ")
        return [v.upper() for v in value]

    def max_position(self, root: str) -> int:
        """Contracts at a full position for ``root`` (1 when the root is not listed)."""
        return self.max_position_size.get(root.upper(), 1)


# -- model_params.yaml ----------------------------------------------------------------------------


class _Params(_Model):
    net_arch: list[Annotated[int, Field(ge=1, le=4096)]] = [64, 64]
    activation: Literal["relu", "tanh"] | None = None
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 3e-4
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99


class SacParams(_Params):
    """SAC (stable-baselines3) hyperparameters; ``activation`` None keeps SB3's default (ReLU)."""

    buffer_size: Annotated[int, Field(ge=100, le=100_000_000)] = 100_000
    learning_starts: Annotated[int, Field(ge=0, le=10_000_000)] = 1_000
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    tau: Annotated[float, Field(gt=0, le=1)] = 0.005
    train_freq: Annotated[int, Field(ge=1, le=100_000)] = 1
    gradient_steps: Annotated[int, Field(ge=1, le=10_000)] = 1
    ent_coef: str | float = "auto"


class DdpgParams(_Params):
    """DDPG hyperparameters; exploration is Gaussian action noise of ``action_noise_sigma``."""

    buffer_size: Annotated[int, Field(ge=100, le=100_000_000)] = 100_000
    learning_starts: Annotated[int, Field(ge=0, le=10_000_000)] = 1_000
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    tau: Annotated[float, Field(gt=0, le=1)] = 0.005
    train_freq: Annotated[int, Field(ge=1, le=100_000)] = 1
    gradient_steps: Annotated[int, Field(ge=1, le=10_000)] = 1
    action_noise_sigma: Annotated[float, Field(ge=0, le=10)] = 0.2


class PpoParams(_Params):
    """PPO (and PPO-Lagrangian) hyperparameters; ``activation`` None keeps SB3's default (tanh)."""

    n_steps: Annotated[int, Field(ge=2, le=1_000_000)] = 2048
    batch_size: Annotated[int, Field(ge=2, le=1_000_000)] = 64
    n_epochs: Annotated[int, Field(ge=1, le=1000)] = 10
    gae_lambda: Annotated[float, Field(ge=0, le=1)] = 0.95
    clip_range: Annotated[float, Field(gt=0, le=1)] = 0.2
    ent_coef: Annotated[float, Field(ge=0, le=10)] = 0.0
    vf_coef: Annotated[float, Field(ge=0, le=10)] = 0.5
    max_grad_norm: Annotated[float, Field(gt=0, le=100)] = 0.5


class QrdqnParams(_Params):
    """QR-DQN (sb3-contrib) hyperparameters: 51 return quantiles by default."""

    n_quantiles: Annotated[int, Field(ge=2, le=1000)] = 51
    buffer_size: Annotated[int, Field(ge=100, le=100_000_000)] = 100_000
    learning_starts: Annotated[int, Field(ge=0, le=10_000_000)] = 1_000
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 64
    train_freq: Annotated[int, Field(ge=1, le=100_000)] = 4
    gradient_steps: Annotated[int, Field(ge=1, le=10_000)] = 1
    target_update_interval: Annotated[int, Field(ge=1, le=10_000_000)] = 1_000
    exploration_fraction: Annotated[float, Field(gt=0, le=1)] = 0.3
    exploration_final_eps: Annotated[float, Field(ge=0, le=1)] = 0.02


P = TypeVar("P", bound=_Params)


class ParamsEntry(_Model, Generic[P]):
    """One algorithm's hyperparameters and the per-regime overrides merged over them."""

    default: P
    regimes: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _overrides_valid(self) -> "ParamsEntry[P]":
        for regime in self.regimes:
            try:
                self.for_regime(regime)
            except ValidationError as err:
                first = err.errors()[0]
                key = ".".join(str(p) for p in first.get("loc", ()))
                raise ValueError(f"regime {regime!r}: {key}: {first.get('msg', 'invalid')}") from None
        return self

    def for_regime(self, regime: str | None) -> P:
        """The default hyperparameters with ``regime``'s overrides applied (None: the default)."""
        if regime is None or regime not in self.regimes:
            return self.default
        merged = {**self.default.model_dump(), **self.regimes[regime]}
        return type(self.default).model_validate(merged)


class ModelParamsConfig(_Model):
    """Hyperparameters of every algorithm (``config/model_params.yaml``)."""

    sac: ParamsEntry[SacParams] = ParamsEntry[SacParams](default=SacParams())
    ppo: ParamsEntry[PpoParams] = ParamsEntry[PpoParams](default=PpoParams())
    ddpg: ParamsEntry[DdpgParams] = ParamsEntry[DdpgParams](default=DdpgParams())
    qrdqn: ParamsEntry[QrdqnParams] = ParamsEntry[QrdqnParams](default=QrdqnParams())
    ppo_lagrangian: ParamsEntry[PpoParams] = ParamsEntry[PpoParams](default=PpoParams())

    def params(self, algo: str, regime: str | None = None) -> _Params:
        """Hyperparameters of ``algo`` (for ``regime`` when given)."""
        entry: ParamsEntry[Any] = getattr(self, algo)
        result: _Params = entry.for_regime(regime)
        return result


# -- algo_config.yaml -----------------------------------------------------------------------------


class AlgoSettings(_Model):
    """Training length and action space of one algorithm."""

    total_timesteps: Annotated[int, Field(ge=1, le=1_000_000_000)] = 50_000
    action_space: ActionSpace = "continuous"


class LagrangianSettings(_Model):
    """PPO-Lagrangian's constraint ``CVaR_alpha(episode loss) <= cvar_limit`` and its dual ascent.

    After every rollout ``lambda <- clip(lambda + lambda_lr * (CVaR - cvar_limit), 0, lambda_max)``
    where CVaR is measured on the last ``window_episodes`` episode losses (reward units).
    """

    cvar_alpha: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    cvar_limit: Annotated[float, Field(ge=-1e9, le=1e9)] = 20.0
    lambda_init: Annotated[float, Field(ge=0, le=1e6)] = 0.0
    lambda_lr: Annotated[float, Field(gt=0, le=1e6)] = 0.05
    lambda_max: Annotated[float, Field(gt=0, le=1e6)] = 100.0
    window_episodes: Annotated[int, Field(ge=2, le=1_000_000)] = 100


class EvaluationSettings(_Model):
    """The evaluation window: a later, disjoint share of the range when no dates are given."""

    eval_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.25
    eval_every_steps: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0


class WalkForwardSettings(_Model):
    """Rolling windows in trading days: train on ``train_days``, test on the next ``test_days``."""

    train_days: Annotated[int, Field(ge=1, le=10_000)] = 3
    test_days: Annotated[int, Field(ge=1, le=10_000)] = 1
    step_days: Annotated[int, Field(ge=1, le=10_000)] = 1
    max_windows: Annotated[int, Field(ge=1, le=10_000)] | None = None


class FineTuneSettings(_Model):
    """Fine-tuning a registered policy on one regime's recent bars (method 8)."""

    total_timesteps: Annotated[int, Field(ge=1, le=1_000_000_000)] = 5_000
    recent_days: Annotated[int, Field(ge=1, le=10_000)] = 20
    min_bars: Annotated[int, Field(ge=2, le=10_000_000)] = 120


class OnlineSettings(_Model):
    """Online learning in paper/live (method 10): cadence, data and guards.

    Every ``update_every_bars`` bars a background worker trains a copy of the policy for
    ``timesteps`` steps on the last ``experience_bars`` bars (the most recent ``validation_bars``
    held out). The parameter change is capped at ``max_step`` (relative L2 norm), and the candidate
    replaces the live policy only when its held-out reward is at least the live policy's minus
    ``rollback_tolerance``; after ``live_check_bars`` live bars a candidate that did worse than the
    policy it replaced is rolled back.
    """

    enabled: bool = False
    update_every_bars: Annotated[int, Field(ge=1, le=10_000_000)] = 390
    experience_bars: Annotated[int, Field(ge=10, le=10_000_000)] = 2_000
    validation_bars: Annotated[int, Field(ge=2, le=10_000_000)] = 390
    timesteps: Annotated[int, Field(ge=1, le=100_000_000)] = 2_000
    max_step: Annotated[float, Field(gt=0, le=10)] = 0.05
    rollback_tolerance: Annotated[float, Field(ge=0, le=1e9)] = 0.0
    live_check_bars: Annotated[int, Field(ge=1, le=10_000_000)] = 390

    @model_validator(mode="after")
    def _validation_inside(self) -> "OnlineSettings":
        if self.validation_bars >= self.experience_bars:
            raise ValueError("validation_bars must be smaller than experience_bars")
        return self


class RaySettings(_Model):
    """Where parallel sweeps and walk-forward windows run: local Ray by default, a cluster by address."""

    address: str | None = None
    num_cpus: Annotated[int, Field(ge=1, le=100_000)] | None = None


def _default_algorithms() -> dict[str, AlgoSettings]:
    return {
        "sac": AlgoSettings(total_timesteps=30_000, action_space="continuous"),
        "ppo": AlgoSettings(total_timesteps=60_000, action_space="continuous"),
        "ddpg": AlgoSettings(total_timesteps=30_000, action_space="continuous"),
        "qrdqn": AlgoSettings(total_timesteps=60_000, action_space="discrete"),
        "ppo_lagrangian": AlgoSettings(total_timesteps=60_000, action_space="continuous"),
    }


class AlgoConfig(_Model):
    """Training settings (``config/algo_config.yaml``)."""

    registry: Path = Path("models")
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    torch_threads: Annotated[int, Field(ge=1, le=256)] = 1
    algorithms: dict[str, AlgoSettings] = _default_algorithms()
    ppo_lagrangian: LagrangianSettings = LagrangianSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    walk_forward: WalkForwardSettings = WalkForwardSettings()
    fine_tune: FineTuneSettings = FineTuneSettings()
    online: OnlineSettings = OnlineSettings()
    ray: RaySettings = RaySettings()

    @field_validator("algorithms")
    @classmethod
    def _known_and_compatible(cls, value: dict[str, AlgoSettings]) -> dict[str, AlgoSettings]:
        for name, settings in value.items():
            if name not in ALGORITHMS:
                raise ValueError(f"unknown algorithm {name!r}: use {', '.join(ALGORITHMS)}")
            if name in ("sac", "ddpg") and settings.action_space != "continuous":
                raise ValueError(f"{name} needs action_space continuous")
            if name == "qrdqn" and settings.action_space != "discrete":
                raise ValueError("qrdqn needs action_space discrete")
        return value

    def settings(self, algo: str) -> AlgoSettings:
        """Settings of ``algo``; the built-in defaults when the file does not list it."""
        return self.algorithms.get(algo) or _default_algorithms()[algo]


# -- loading --------------------------------------------------------------------------------------

CONFIG_FILES: dict[str, tuple[str, type[BaseModel]]] = {
    "trading_env": ("trading_env_config.yaml", TradingEnvConfig),
    "algo": ("algo_config.yaml", AlgoConfig),
    "model_params": ("model_params.yaml", ModelParamsConfig),
}


def load_model_file(path: Path, model: type[BaseModel]) -> Any:
    """Validate one YAML file against ``model``; errors are one line naming file, key and range."""
    if not path.exists():
        raise ConfigError(f"{path}: file not found (pass an existing file or copy one from config/)")
    raw = read_yaml(path)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(path, model, err)) from None


def _load(kind: str, path: Path | None) -> Any:
    name, model = CONFIG_FILES[kind]
    default = config_dir() / name
    path = path or default
    if not path.exists() and path == default:
        return model()
    return load_model_file(path, model)


def load_env_config(path: Path | None = None) -> TradingEnvConfig:
    """``trading_env_config.yaml`` from ``path`` or the config folder (defaults when absent)."""
    result: TradingEnvConfig = _load("trading_env", path)
    return result


def load_algo_config(path: Path | None = None) -> AlgoConfig:
    """``algo_config.yaml`` from ``path`` or the config folder (defaults when absent)."""
    result: AlgoConfig = _load("algo", path)
    return result


def load_model_params(path: Path | None = None) -> ModelParamsConfig:
    """``model_params.yaml`` from ``path`` or the config folder (defaults when absent)."""
    result: ModelParamsConfig = _load("model_params", path)
    return result
