"""Inputs shared by every instrument: reference series, option chains, news and the macro calendar.

They change only when their own data arrives; bar reads never modify them in a way a later read
could see differently, so the order in which instruments' bars are processed does not matter.
"""

import re

from mia_strategies.features.core import BarInput
from mia_strategies.features.crossmarket import DailySeries
from mia_strategies.features.crossmarket import EtfSeries
from mia_strategies.features.crossmarket import RootDaily
from mia_strategies.features.macro import MacroCalendar
from mia_strategies.features.news import NewsHub
from mia_strategies.features.options import ChainAnalytics
from mia_strategies.features.options import analyse_chain
from mia_strategies.features.params import FeatureParams


_FUTURES_SYMBOL = re.compile(r"^([A-Z]{1,6}?)[FGHJKMNQUVXZ]\d{2}$")


def chain_root(instrument_id: str) -> str:
    """Root of a chain's underlying: ``ESH20.GLBX`` → ``ES``, ``SPX.CBOE`` → ``SPX``."""
    symbol = instrument_id.split(".")[0].upper()
    match = _FUTURES_SYMBOL.match(symbol)
    return match.group(1) if match else symbol


class SharedInputs:
    """The shared state of one feature hub."""

    def __init__(self, params: FeatureParams) -> None:
        self.params = params
        cm = params.crossmarket
        self._vix_types = {cm.vix_bar_type, cm.vix3m_bar_type, cm.vix9d_bar_type}
        self._etf_types = set(cm.etf_bar_types.values())
        self._vix: dict[str, DailySeries] = {}
        self.etf: dict[str, EtfSeries] = {}
        self.chains: dict[str, ChainAnalytics] = {}
        self.news = NewsHub(params.news)
        self.macro = MacroCalendar(params.macro)
        self._daily: dict[str, RootDaily] = {}
        self.warnings: list[str] = []

    @property
    def reference_bar_types(self) -> set[str]:
        """Bar types the hub consumes as reference series."""
        return self._vix_types | self._etf_types

    def vix(self, bar_type: str) -> DailySeries:
        """The daily series of ``bar_type`` (empty until its first bar)."""
        series = self._vix.get(bar_type)
        if series is None:
            series = DailySeries()
            self._vix[bar_type] = series
        return series

    def root_daily(self, root: str) -> RootDaily:
        """Daily closes of every contract of ``root``."""
        daily = self._daily.get(root)
        if daily is None:
            daily = RootDaily()
            self._daily[root] = daily
        return daily

    def on_reference_bar(self, bar_type: str, bar: BarInput) -> bool:
        """Feed a reference bar; False when the bar type is not a reference series."""
        if bar_type in self._vix_types:
            if bar.is_valid():
                self.vix(bar_type).on_bar(bar)
            else:
                self.warnings.append(f"{bar_type}: invalid bar at {bar.ts_event} ignored")
            return True
        if bar_type in self._etf_types:
            if bar.is_valid():
                series = self.etf.get(bar_type)
                if series is None:
                    series = EtfSeries()
                    self.etf[bar_type] = series
                series.on_bar(bar)
            else:
                self.warnings.append(f"{bar_type}: invalid bar at {bar.ts_event} ignored")
            return True
        return False

    def on_chain(self, snapshot: object) -> None:
        """Analyse an ``OptionChainSnapshot`` and make it the current chain of its underlying."""
        instrument_id = str(snapshot.instrument_id)  # type: ignore[attr-defined]
        multiplier = self.params.options.multipliers.get(chain_root(instrument_id), 100.0)
        analytics = analyse_chain(
            ts=int(snapshot.ts_event),  # type: ignore[attr-defined]
            underlying=float(snapshot.underlying_price),  # type: ignore[attr-defined]
            expiries_ns=snapshot.expiries_ns,  # type: ignore[attr-defined]
            strikes=snapshot.strikes,  # type: ignore[attr-defined]
            rights=snapshot.rights,  # type: ignore[attr-defined]
            ivs=snapshot.implied_vols,  # type: ignore[attr-defined]
            deltas=snapshot.deltas,  # type: ignore[attr-defined]
            gammas=snapshot.gammas,  # type: ignore[attr-defined]
            open_interest=snapshot.open_interest,  # type: ignore[attr-defined]
            volumes=snapshot.volumes,  # type: ignore[attr-defined]
            multiplier=multiplier,
            params=self.params.options,
        )
        previous = self.chains.get(instrument_id)
        if previous is not None and previous.ts > analytics.ts:
            self.warnings.append(f"{instrument_id}: option chain older than the one in use ignored")
            return
        self.chains[instrument_id] = analytics
        self.warnings.extend(f"{instrument_id} chain at {analytics.ts}: {w}" for w in analytics.warnings)
