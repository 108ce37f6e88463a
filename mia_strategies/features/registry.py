"""The feature registry: every feature is defined once, here or in its family module, with its metadata.

A feature has a stable ``name`` (the column name in research frames and the key consumers use), the
``family`` that computes it, the ``inputs`` it needs, a ``warmup`` (bars of the instrument seen before
it can be defined; NaN until then) and a one-line ``description``. The formulas are in
``docs/features.md``. Families are classes with one incremental state per instrument: the feature
actor drives them tick by tick and bar by bar, and the offline build (``research.features``) replays
catalog data through the very same states, so online and offline values are equal by construction
and the parity test checks everything around them (data, bars, ordering, timestamps).

The full registry is the concatenation of the families in ``FAMILY_ORDER``; a feature set
(``config/feature_sets.yaml``) is an ordered selection of its names.
"""

import hashlib
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass


#: Kinds of input a feature can need. ``bars``: decision bars of the instrument; ``quotes``/``trades``/
#: ``depth``: its ticks and book; ``vix``/``etf``: reference series; ``options``/``news``/``macro``:
#: custom data; ``clock``: the bar's time only (sessions, calendar).
INPUT_KINDS = ("bars", "quotes", "trades", "depth", "vix", "etf", "options", "news", "macro", "clock")

#: Families in the order their values are computed at a bar close (later ones may read earlier ones).
FAMILY_ORDER = ("session", "technical", "dynamic", "orderflow", "crossmarket", "options", "news", "macro", "composite")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it is called, who computes it, what it needs, how long until it is defined."""

    name: str
    family: str
    inputs: tuple[str, ...]
    warmup: int
    description: str

    def __post_init__(self) -> None:
        bad = [k for k in self.inputs if k not in INPUT_KINDS]
        if bad:
            raise ValueError(f"feature {self.name}: unknown input kinds {bad} (known: {', '.join(INPUT_KINDS)})")
        if self.family not in FAMILY_ORDER:
            raise ValueError(f"feature {self.name}: unknown family {self.family!r}")
        if self.warmup < 0:
            raise ValueError(f"feature {self.name}: warmup must be >= 0, was {self.warmup}")


class SpecList:
    """Collects a family's specs in order; the index of a name is its position in the family's slice."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.specs: list[FeatureSpec] = []

    def add(self, name: str, inputs: Sequence[str], warmup: int, description: str) -> int:
        """Append a spec; return its index inside the family."""
        self.specs.append(FeatureSpec(name, self.family, tuple(inputs), warmup, description))
        return len(self.specs) - 1

    def index(self) -> dict[str, int]:
        """Name → index within the family."""
        return {s.name: i for i, s in enumerate(self.specs)}


@dataclass(frozen=True)
class Registry:
    """Every feature in computation order, with the slice each family writes."""

    specs: tuple[FeatureSpec, ...]
    family_slices: dict[str, tuple[int, int]]

    @property
    def names(self) -> tuple[str, ...]:
        """All feature names in registry order."""
        return tuple(s.name for s in self.specs)

    def index(self) -> dict[str, int]:
        """Name → position in the full registry vector."""
        return {s.name: i for i, s in enumerate(self.specs)}

    def spec(self, name: str) -> FeatureSpec:
        """The spec of ``name``; KeyError with the closest names when unknown."""
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(f"unknown feature {name!r}{_did_you_mean(name, self.names)}")

    def by_family(self, family: str) -> list[FeatureSpec]:
        """The specs of one family, in order."""
        lo, hi = self.family_slices[family]
        return list(self.specs[lo:hi])

    def families_for(self, names: Iterable[str]) -> set[str]:
        """Families whose values ``names`` need, including what those families read (composites)."""
        from mia_strategies.features.families import FAMILY_DEPENDENCIES

        wanted = {self.spec(n).family for n in names}
        changed = True
        while changed:
            changed = False
            for fam in list(wanted):
                for dep in FAMILY_DEPENDENCIES.get(fam, ()):
                    if dep not in wanted:
                        wanted.add(dep)
                        changed = True
        return wanted


def _did_you_mean(name: str, names: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def fingerprint(names: Sequence[str]) -> str:
    """A short, stable hash of an ordered list of feature names (ties models to feature sets)."""
    digest = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()
    return digest[:16]


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, built once from the families."""
    global _REGISTRY
    if _REGISTRY is None:
        from mia_strategies.features.families import family_spec_lists

        specs: list[FeatureSpec] = []
        slices: dict[str, tuple[int, int]] = {}
        for family, spec_list in family_spec_lists():
            lo = len(specs)
            specs.extend(spec_list)
            slices[family] = (lo, len(specs))
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RuntimeError(f"feature names defined twice: {dupes}")
        _REGISTRY = Registry(tuple(specs), slices)
    return _REGISTRY
