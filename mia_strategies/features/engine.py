"""The feature engine: per-instrument family states plus the shared inputs, driven event by event.

``FeatureHub`` is what both the feature actor (online, inside nautilus) and the offline build
(``research.features``, replaying the catalog) call, with the same plain-float arguments in the same
order, so the two produce identical vectors. It never raises on bad data: an invalid bar (NaN, inf,
non-positive, out-of-range or inconsistent prices, or not after the previous bar) is skipped and
reported through ``drain_warnings``; the instrument's state is left as it was. Should a family still
fail on a bar, the bar gets no vector and the failure is reported (``stats.failed_bars``) instead of
stopping the session.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalog.types import MacroEvent
from catalog.types import NewsHeadline
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import ConfigError
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import BarHistory
from mia_strategies.features.core import BarInput
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.core import valid_price
from mia_strategies.features.core import valid_size
from mia_strategies.features.families import FamilyState
from mia_strategies.features.families import new_family_state
from mia_strategies.features.orderflow import OrderFlowState
from mia_strategies.features.registry import FAMILY_ORDER
from mia_strategies.features.registry import Registry
from mia_strategies.features.registry import registry
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.sets import FeatureSetDef
from mia_strategies.features.sets import FeatureSets
from mia_strategies.features.shared import SharedInputs


def instrument_info(
    instrument_id: str, markets: MarketsConfig | None, tick_size: float | None = None
) -> InstrumentInfo:
    """Identity, tick and roll times of a contract (``ESZ25.GLBX``); a non-futures id keeps its symbol as root."""
    from mia_strategies.instruments import expiry_ns
    from mia_strategies.instruments import parse_contract_symbol
    from mia_strategies.instruments import previous_contract
    from mia_strategies.instruments import roll_ns

    symbol = instrument_id.split(".")[0]
    if markets is not None:
        try:
            ref = parse_contract_symbol(symbol, markets)
        except ConfigError:
            ref = None
        if ref is not None:
            spec = markets.root(ref.root)
            days = markets.roll.days_before_expiry
            return InstrumentInfo(
                instrument_id=instrument_id,
                root=ref.root,
                tick_size=float(spec.tick_size) if tick_size is None else tick_size,
                roll_ns=roll_ns(ref, spec, days),
                expiry_ns=expiry_ns(ref, spec),
                previous_roll_ns=roll_ns(previous_contract(ref, spec), spec, days),
                multiplier=float(spec.multiplier),
            )
    return InstrumentInfo(instrument_id=instrument_id, root=symbol.upper(), tick_size=tick_size or 0.25)


@dataclass
class HubStats:
    """Counters for logs and benchmarks."""

    depth: int = 0
    bars: int = 0
    rejected_bars: int = 0
    failed_bars: int = 0
    reference_bars: int = 0
    chains: int = 0
    headlines: int = 0
    macro_events: int = 0


class InstrumentFeatures:
    """Every active family's state for one instrument, and its bar history."""

    def __init__(self, info: InstrumentInfo, feature_set: FeatureSetDef, shared: SharedInputs, reg: Registry) -> None:
        self.info = info
        self.feature_set = feature_set
        self._shared = shared
        self._reg = reg
        self._index = reg.index()
        self._hist = BarHistory()
        self._full: FloatArray = np.full(len(reg.specs), np.nan)
        warmup = np.array([s.warmup for s in reg.specs], dtype=np.int64)
        #: Positions by decreasing warm-up: while ``count`` bars are held, those whose warm-up exceeds
        #: ``count`` form a prefix of this order (one slice per bar instead of a mask over the registry).
        self._by_warmup = np.argsort(-warmup, kind="stable")
        self._warmups_desc = warmup[self._by_warmup]
        self._max_warmup = int(warmup.max()) if len(warmup) else 0
        registry_names = [n for n in feature_set.names if n in self._index]
        families = reg.families_for(registry_names)
        params = shared.params
        self._states: list[tuple[FamilyState, slice]] = []
        self.orderflow: OrderFlowState | None = None
        for family in FAMILY_ORDER:
            if family not in families:
                continue
            lo, hi = reg.family_slices[family]
            state = new_family_state(family, info, params, self._index)
            self._states.append((state, slice(lo, hi)))
            if isinstance(state, OrderFlowState):
                state.warnings = shared.warnings
                self.orderflow = state
        self._set_positions = np.array([self._index.get(n, -1) for n in feature_set.names], dtype=np.intp)
        self._derived = self._set_positions < 0
        self._has_derived = bool(self._derived.any())
        shared.root_daily(info.root).register(info)

    @property
    def bars(self) -> int:
        """Bars accepted so far."""
        return self._hist.count

    @property
    def last_ts(self) -> int:
        """``ts_event`` of the last accepted bar (0 before the first)."""
        return self._hist.last_ts

    def on_bar(self, bar: BarInput) -> FloatArray:
        """Update with a validated bar; return the set's values (NaN for absent inputs and warm-up)."""
        hist = self._hist
        hist.update(bar)
        full = self._full
        full.fill(np.nan)
        ctx = BarContext(bar, hist, self.info, self._shared, full, self._index)
        for state, where in self._states:
            state.on_bar(ctx, full[where])
        count = hist.count
        if count < self._max_warmup:
            warming = int(np.searchsorted(-self._warmups_desc, -count, side="left"))
            full[self._by_warmup[:warming]] = np.nan
        values = full[self._set_positions]
        if self._has_derived:
            values[self._derived] = np.nan
        return values

    def full_vector(self) -> FloatArray:
        """The last bar's values of the whole registry (a copy)."""
        return self._full.copy()


class FeatureHub:
    """Feature state of every instrument plus the shared inputs: one per actor or offline build."""

    def __init__(
        self,
        feature_sets: FeatureSets,
        set_by_root: dict[str, str],
        markets: MarketsConfig | None,
        macro_events: Iterable[MacroEvent] = (),
    ) -> None:
        self._sets = feature_sets
        self._set_by_root = {k.upper(): v for k, v in set_by_root.items()}
        self._markets = markets
        self._reg = registry()
        self.shared = SharedInputs(feature_sets.params)
        self.instruments: dict[str, InstrumentFeatures] = {}
        self.stats = HubStats()
        for event in macro_events:
            self.on_macro(event)

    def set_for(self, root: str) -> FeatureSetDef:
        """The feature set configured for ``root`` (default ``<ROOT>.inference``)."""
        return self._sets.resolve(self._set_by_root.get(root.upper(), f"{root.upper()}.inference"))

    def register(self, instrument_id: str, tick_size: float | None = None) -> InstrumentFeatures:
        """Create (or return) the state of an instrument; its root's news store starts listening now."""
        existing = self.instruments.get(instrument_id)
        if existing is not None:
            return existing
        info = instrument_info(instrument_id, self._markets, tick_size)
        state = InstrumentFeatures(info, self.set_for(info.root), self.shared, self._reg)
        self.instruments[instrument_id] = state
        self.shared.news.store(info.root)
        return state

    # -- ticks ----------------------------------------------------------------------------------

    def on_quote(self, instrument_id: str, ts: int, bid: float, ask: float, bid_size: float, ask_size: float) -> None:
        """A top-of-book quote of a registered instrument (others are ignored; bad ones skipped, reported)."""
        state = self.instruments.get(instrument_id)
        if state is not None and state.orderflow is not None:
            state.orderflow.on_quote(ts, bid, ask, bid_size, ask_size)

    def on_trade(self, instrument_id: str, ts: int, price: float, size: float, aggressor: int) -> None:
        """A trade of a registered instrument; ``aggressor`` 1 buyer, 2 seller, 0 unknown."""
        state = self.instruments.get(instrument_id)
        if state is not None and state.orderflow is not None:
            state.orderflow.on_trade(ts, price, size, aggressor)

    def tick_queue(self, instrument_id: str) -> list[Any] | None:
        """Where ``instrument_id``'s nautilus ``QuoteTick``/``TradeTick`` objects go, in arrival order.

        None when the instrument is unknown or its set has no order-flow feature. Appending is all a
        tick costs until the queue is applied (at the instrument's next bar, or ``flush_ticks``); the
        actor hands this list's ``append`` to the message bus, the offline build appends the catalog's
        ticks, so both convert the same objects the same way.
        """
        state = self.instruments.get(instrument_id)
        return None if state is None or state.orderflow is None else state.orderflow.pending

    def flush_ticks(self) -> None:
        """Apply every instrument's queued ticks now (the values do not depend on when this happens)."""
        for state in self.instruments.values():
            if state.orderflow is not None:
                state.orderflow.flush()

    def on_depth(
        self, instrument_id: str, ts: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
    ) -> None:
        """A depth snapshot (best level first) of a registered instrument; levels out of range are dropped, reported."""
        state = self.instruments.get(instrument_id)
        if state is None or state.orderflow is None:
            return
        self.stats.depth += 1
        good_bids = [(p, q) for p, q in bids if valid_price(p) and q > 0.0 and valid_size(q)]
        good_asks = [(p, q) for p, q in asks if valid_price(p) and q > 0.0 and valid_size(q)]
        dropped = len(bids) + len(asks) - len(good_bids) - len(good_asks)
        if dropped:
            self.shared.warnings.append(f"{instrument_id}: {dropped} invalid depth levels at {ts} ignored")
        state.orderflow.on_depth(ts, good_bids, good_asks)

    # -- bars -----------------------------------------------------------------------------------

    def on_bar(self, instrument_id: str, bar: BarInput) -> FloatArray | None:
        """A closed decision bar: the set's feature values, or None when the bar is invalid or unknown."""
        state = self.instruments.get(instrument_id)
        if state is None:
            return None
        if state.orderflow is not None:
            state.orderflow.flush()  # the bar's ticks first, so their warnings come before the bar's
        if not bar.is_valid():
            self.stats.rejected_bars += 1
            self.shared.warnings.append(
                f"{instrument_id}: invalid bar at {bar.ts_event} skipped (O {bar.open} H {bar.high} L {bar.low} "
                f"C {bar.close} V {bar.volume})",
            )
            return None
        if state.bars and bar.ts_event <= state.last_ts:
            self.stats.rejected_bars += 1
            self.shared.warnings.append(
                f"{instrument_id}: bar at {bar.ts_event} not after the previous one ({state.last_ts}) skipped"
            )
            return None
        try:
            values = state.on_bar(bar)
        except (ArithmeticError, ValueError, IndexError) as exc:  # a bug must not stop a session: skip, report
            self.stats.failed_bars += 1
            self.shared.warnings.append(
                f"{instrument_id}: feature computation failed at {bar.ts_event} ({exc.__class__.__name__}: {exc}); "
                "no vector for this bar"
            )
            return None
        self.stats.bars += 1
        return values

    def on_reference_bar(self, bar_type: str, bar: BarInput) -> bool:
        """A bar of a reference series (VIX, ETF proxy); False when the bar type is not one."""
        used = self.shared.on_reference_bar(bar_type, bar)
        if used:
            self.stats.reference_bars += 1
        return used

    # -- custom data ----------------------------------------------------------------------------

    def on_chain(self, snapshot: object) -> None:
        """An ``OptionChainSnapshot``."""
        self.stats.chains += 1
        self.shared.on_chain(snapshot)

    def on_news(self, headline: NewsHeadline) -> None:
        """A ``NewsHeadline``."""
        self.stats.headlines += 1
        self.shared.news.on_headline(int(headline.ts_event), headline.source, headline.headline, headline.symbols)

    def on_macro(self, event: MacroEvent) -> None:
        """A ``MacroEvent`` (``ts_event`` = release, ``ts_init`` = when it became known)."""
        self.stats.macro_events += 1
        self.shared.macro.add(int(event.ts_event), int(event.ts_init), event.name, int(event.importance))

    def drain_warnings(self) -> list[str]:
        """Warnings collected since the last call (bad data skipped, chains without usable strikes, ...)."""
        self.flush_ticks()
        out = self.shared.warnings[:]
        self.shared.warnings.clear()
        return out

    def warm_up(self) -> float:
        """Compile (or load from numba's cache) every kernel these instruments use; seconds taken.

        A throwaway hub with the same instruments and sets gets a few ticks and bars, so the
        compilation never lands on a live session's first bar (seconds on a fresh install, tens of
        milliseconds once cached). This hub's state is untouched.
        """
        import time

        started = time.perf_counter()
        scratch = FeatureHub(self._sets, self._set_by_root, self._markets)
        step = 60_000_000_000
        cross = self.shared.params.crossmarket
        for instrument_id, state in self.instruments.items():
            scratch.register(instrument_id, state.info.tick_size)
            price = 100.0
            etf = cross.etf_bar_types.get(state.info.root)
            for i in range(3):
                ts = step * (1_000_000 + i)
                for reference in (etf, cross.vix_bar_type):  # the cross-market kernels too
                    if reference is not None:
                        scratch.on_reference_bar(reference, BarInput(ts, ts, 20.0, 21.0, 19.0, 20.0 + i, 1e4))
                scratch.on_quote(instrument_id, ts - 2, price, price + state.info.tick_size, 5.0, 7.0)
                scratch.on_trade(instrument_id, ts - 1, price, 1.0, 1)
                scratch.on_bar(instrument_id, BarInput(ts, ts, price, price + 1.0, price - 1.0, price + 0.5, 10.0))
        scratch.drain_warnings()
        return time.perf_counter() - started
