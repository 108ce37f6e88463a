"""The families in computation order: their specs (for the registry) and a state per instrument."""

from typing import Protocol

from mia_strategies.features import composite
from mia_strategies.features import crossmarket
from mia_strategies.features import dynamic
from mia_strategies.features import macro
from mia_strategies.features import news
from mia_strategies.features import options
from mia_strategies.features import orderflow
from mia_strategies.features import session
from mia_strategies.features import technical
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.params import FeatureParams
from mia_strategies.features.registry import FAMILY_ORDER
from mia_strategies.features.registry import FeatureSpec
from mia_strategies.features.rolling import FloatArray


#: Families whose values a family reads at the same bar (they are computed first).
FAMILY_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "dynamic": ("technical",),
    "crossmarket": ("technical",),
    "composite": ("technical", "dynamic", "orderflow"),
}

_MODULES = {
    "session": session,
    "technical": technical,
    "dynamic": dynamic,
    "orderflow": orderflow,
    "crossmarket": crossmarket,
    "options": options,
    "news": news,
    "macro": macro,
    "composite": composite,
}


class FamilyState(Protocol):
    """What every family state does at a bar close: write its slice of the feature vector."""

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None: ...


def family_spec_lists() -> list[tuple[str, list[FeatureSpec]]]:
    """Each family's specs, in computation order."""
    return [(name, list(_MODULES[name].SPECS.specs)) for name in FAMILY_ORDER]  # type: ignore[attr-defined]


def new_family_state(family: str, info: InstrumentInfo, params: FeatureParams, index: dict[str, int]) -> FamilyState:
    """A fresh state of ``family`` for one instrument; ``index`` maps names to full-vector positions."""
    if family == "session":
        return session.SessionState(info)
    if family == "technical":
        return technical.TechnicalState()
    if family == "dynamic":
        return dynamic.DynamicState(index)
    if family == "orderflow":
        return orderflow.OrderFlowState(info, params.orderflow)
    if family == "crossmarket":
        return crossmarket.CrossMarketState(info, params.crossmarket, index)
    if family == "options":
        return options.OptionsState(info, params.options)
    if family == "news":
        return news.NewsState(info)
    if family == "macro":
        return macro.MacroState()
    if family == "composite":
        return composite.CompositeState(index)
    raise KeyError(f"unknown feature family {family!r}")
