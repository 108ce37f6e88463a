"""``config/mia_config.yaml``: operator settings (language, voice, market memory, dashboard).

Kept apart from ``alerts.yaml`` because these are about the person at the desk and the host, not
about routing. Secrets (the dashboard token) are read from the environment variable named here.
"""

from pathlib import Path
from typing import Annotated
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Language = Literal["en", "fr"]


class VoiceSettings(_Model):
    """Offline text-to-speech, the spoken-alert threshold, confirmations and optional speech input."""

    engine: Literal["auto", "pyttsx3", "espeak-ng"] = "auto"
    rate_wpm: Annotated[int, Field(ge=80, le=400)] = 165
    speak_min_priority: Literal["info", "warning", "error", "urgent"] = "warning"
    confirm_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    speech_to_text: Literal["none", "vosk"] = "none"
    stt_model: Path | None = None


class MemorySettings(_Model):
    """The market memory: where it lives, what an outcome is, how neighbours are found, how it commits."""

    path: Path = Path("data/market_memory.db")
    horizon_bars: Annotated[int, Field(ge=1, le=10_000)] = 5
    neighbours: Annotated[int, Field(ge=1, le=1000)] = 10
    min_patterns: Annotated[int, Field(ge=1, le=1_000_000)] = 50
    regime_weight: Annotated[float, Field(ge=0, le=100)] = 1.0
    commit_every: Annotated[int, Field(ge=1, le=100_000)] = 1
    checkpoint_every: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    max_patterns: Annotated[int, Field(ge=1000, le=100_000_000)] = 2_000_000


class DashboardSettings(_Model):
    """The local web dashboard: bind address, token variable for non-local binds, refresh period."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8050
    token_env: str = "MIA_DASHBOARD_TOKEN"
    refresh_s: Annotated[float, Field(ge=0.5, le=3600)] = 5.0
    recent_alerts: Annotated[int, Field(ge=1, le=10_000)] = 50


class MiaConfig(_Model):
    """The operator file ``config/mia_config.yaml``."""

    language: Language = "en"
    vocal_enabled: bool = False
    voice: VoiceSettings = VoiceSettings()
    memory: MemorySettings = MemorySettings()
    dashboard: DashboardSettings = DashboardSettings()


def load_mia_config(path: Path | None = None) -> MiaConfig:
    """Load ``mia_config.yaml`` (default: the config folder's); defaults when there is none."""
    from mia_strategies.config import config_dir
    from mia_strategies.ops.alerts import load_model

    if path is None:
        path = config_dir() / "mia_config.yaml"
        if not path.exists():
            return MiaConfig()
    return load_model(path, MiaConfig)
