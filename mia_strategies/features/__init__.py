"""The feature pipeline: one registry of features, incremental family states, shared by online and offline.

- ``registry``: ``FeatureSpec`` (name, family, inputs, warm-up, description) and the full registry.
- ``sets``: ``config/feature_sets.yaml`` (per market ``training`` / ``inference`` sets, parameters).
- ``engine``: ``FeatureHub``, the event-driven engine the actor and the offline build both drive.
- family modules: ``session``, ``technical``, ``dynamic``, ``orderflow``, ``crossmarket``,
  ``options``, ``news``, ``macro``, ``composite`` (formulas in ``docs/features.md``).
"""

from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.registry import FeatureSpec
from mia_strategies.features.registry import registry
from mia_strategies.features.sets import FeatureSetDef
from mia_strategies.features.sets import FeatureSets
from mia_strategies.features.sets import load_feature_sets


__all__ = [
    "BarInput",
    "FeatureHub",
    "FeatureSetDef",
    "FeatureSets",
    "FeatureSpec",
    "load_feature_sets",
    "registry",
]
