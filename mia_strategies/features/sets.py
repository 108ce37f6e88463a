"""``config/feature_sets.yaml``: per market, ordered feature sets, plus the families' parameters.

A set is referred to as ``<ROOT>.<set>`` (``ES.training``, ``ES.inference``); its ordered names
give the meaning of each value of a ``FeatureVector`` with that ``feature_set``. Every name must be
in the registry, except in the ``regime_weighted`` set, which also holds the regime actor's state
probabilities (``regime_p_trend``, ``regime_p_range``, ``regime_p_defensive``).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import field_validator
from pydantic import model_validator

from mia_strategies.errors import ConfigError
from mia_strategies.features.params import FeatureParams
from mia_strategies.features.registry import fingerprint
from mia_strategies.features.registry import registry


#: Sets that may hold names computed by the regime actor rather than the registry.
DERIVED_SETS = ("regime_weighted",)
REGIME_LABELS = ("trend", "range", "defensive")
REGIME_PROBABILITY_NAMES = tuple(f"regime_p_{label}" for label in REGIME_LABELS)


class FeatureSetsFile(BaseModel):
    """The feature-sets file: version, parameters, and per root the named, ordered sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    parameters: FeatureParams = FeatureParams()
    markets: dict[str, dict[str, list[str]]]

    @field_validator("markets")
    @classmethod
    def _names_known(cls, value: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        known = set(registry().names)
        for root, sets in value.items():
            if not root.isalpha() or not root.isupper():
                raise ValueError(f"market {root!r} must be an upper-case root such as ES")
            for set_name, names in sets.items():
                if not names:
                    raise ValueError(f"{root}.{set_name} is empty")
                seen: set[str] = set()
                for name in names:
                    if name in seen:
                        raise ValueError(f"{root}.{set_name} lists {name!r} twice")
                    seen.add(name)
                    derived_ok = set_name in DERIVED_SETS and name in REGIME_PROBABILITY_NAMES
                    if name not in known and not derived_ok:
                        raise ValueError(f"{root}.{set_name}: unknown feature {name!r} (see docs/features.md)")
        return value

    @model_validator(mode="after")
    def _has_sets(self) -> "FeatureSetsFile":
        if not self.markets:
            raise ValueError("define at least one market with a training and an inference set")
        return self


@dataclass(frozen=True)
class FeatureSetDef:
    """One resolved set: its name, root, ordered feature names and their registry positions."""

    name: str
    root: str
    names: tuple[str, ...]
    indices: npt.NDArray[np.intp]

    @property
    def fingerprint(self) -> str:
        """Hash of the ordered names (stored with models trained on this set)."""
        return fingerprint(self.names)

    def position(self, name: str) -> int:
        """Position of ``name`` in this set's vectors."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{self.name} has no feature {name!r}") from None


@dataclass(frozen=True)
class FeatureSets:
    """The loaded file and every set resolved against the registry."""

    file: FeatureSetsFile
    path: Path | None

    @property
    def params(self) -> FeatureParams:
        """Family parameters."""
        return self.file.parameters

    def names(self) -> list[str]:
        """Every ``ROOT.set`` name defined."""
        return [f"{root}.{name}" for root, sets in self.file.markets.items() for name in sets]

    def resolve(self, qualified: str) -> FeatureSetDef:
        """The set ``ROOT.name``; one-line ConfigError naming the defined sets otherwise."""
        root, _, set_name = qualified.partition(".")
        sets = self.file.markets.get(root.upper())
        if not set_name or sets is None or set_name not in sets:
            where = f" in {self.path}" if self.path else ""
            raise ConfigError(f"unknown feature set {qualified!r}{where}: defined sets are {', '.join(self.names())}")
        names = tuple(sets[set_name])
        index = registry().index()
        positions = np.array([index.get(n, -1) for n in names], dtype=np.intp)
        return FeatureSetDef(f"{root.upper()}.{set_name}", root.upper(), names, positions)


def load_feature_sets(path: Path | str | None = None) -> FeatureSets:
    """Load ``feature_sets.yaml`` from ``path`` or the config folder (one-line ConfigError when invalid)."""
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_config
    from mia_strategies.config import register_config_kind

    register_config_kind("feature_sets", FeatureSetsFile)
    resolved = Path(path) if path is not None else config_dir() / "feature_sets.yaml"
    model: FeatureSetsFile = load_config(resolved, "feature_sets")
    return FeatureSets(model, resolved)
