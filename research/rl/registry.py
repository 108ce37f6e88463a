"""The model registry: versioned folders holding each trained model with everything needed to trust it.

Layout (``registry`` in ``config/algo_config.yaml``, ``models/`` by default)::

    models/<MARKET>/<algo>/v0001/
        manifest.json                   algo, market, version, seed, feature set (names + hash),
                                        observation spec, configs, train/eval data ranges, metrics,
                                        parent version and regime for fine-tuned models
        model.zip                       the stable-baselines3 model (to continue training)
        policy.npz                      the exported numpy policy (what the engine loads)
        train_<algo>_performance.csv    training metrics (loss, reward, cvar_loss, quantiles)
        eval.csv                        per-bar out-of-sample log
    models/<MARKET>/ensemble/v0001/
        manifest.json, member_rewards.npz

A version is claimed by creating its folder (atomic, so parallel workers never share a number),
written into a hidden staging folder and moved into place: a version with a manifest is complete.
Versions are never overwritten.
"""

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mia_strategies.errors import ConfigError
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.observation import ObservationSpec


MANIFEST = "manifest.json"
SCHEMA = 1


def feature_hash(names: tuple[str, ...] | list[str]) -> str:
    """Short stable hash of an ordered feature list (a model only runs on the exact same list)."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ModelVersion:
    """One complete registry entry."""

    path: Path
    manifest: dict[str, Any]

    @property
    def algo(self) -> str:
        """Algorithm name (``ensemble`` for an ensemble)."""
        return str(self.manifest["algo"])

    @property
    def market(self) -> str:
        """Root the model trades."""
        return str(self.manifest["market"])

    @property
    def version(self) -> int:
        """Version number within (market, algo)."""
        return int(self.manifest["version"])

    @property
    def label(self) -> str:
        """``ES/sac/v0003``."""
        return f"{self.market}/{self.algo}/v{self.version:04d}"

    def spec(self) -> ObservationSpec:
        """The observation spec the model was trained with."""
        return ObservationSpec.from_dict(self.manifest["observation"])

    def network(self) -> PolicyNetwork:
        """The exported numpy policy."""
        return PolicyNetwork.load(self.path / "policy.npz")


class ModelRegistry:
    """Versioned models on disk (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _folder(self, market: str, algo: str) -> Path:
        return self.root / market.upper() / algo

    def versions(self, market: str, algo: str) -> list[ModelVersion]:
        """Complete versions of (market, algo), oldest first."""
        folder = self._folder(market, algo)
        if not folder.is_dir():
            return []
        out: list[ModelVersion] = []
        for child in sorted(folder.iterdir()):
            manifest = child / MANIFEST
            if child.name.startswith("v") and manifest.is_file():
                out.append(ModelVersion(child, json.loads(manifest.read_text(encoding="utf-8"))))
        return sorted(out, key=lambda v: v.version)

    def get(self, market: str, algo: str, version: int | None = None) -> ModelVersion:
        """One version (the latest when ``version`` is None); one-line error when absent."""
        versions = self.versions(market, algo)
        if not versions:
            raise ConfigError(
                f"no {algo} model for {market.upper()} in the registry {self.root}: "
                f"run `mia train {algo} --market {market.upper()}`",
            )
        if version is None:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        known = ", ".join(str(v.version) for v in versions)
        raise ConfigError(f"{market.upper()}/{algo} has no version {version} in {self.root} (versions: {known})")

    def all(self) -> list[ModelVersion]:
        """Every complete version of every market and algorithm."""
        if not self.root.is_dir():
            return []
        out: list[ModelVersion] = []
        for market in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for algo in sorted(p for p in market.iterdir() if p.is_dir()):
                out.extend(self.versions(market.name, algo.name))
        return out

    def _claim(self, market: str, algo: str) -> tuple[int, Path]:
        folder = self._folder(market, algo)
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[1:]) for p in folder.iterdir() if p.name.startswith("v") and p.name[1:].isdigit()]
        number = max(numbers, default=0) + 1
        while True:
            target = folder / f"v{number:04d}"
            try:
                target.mkdir()
            except FileExistsError:
                number += 1
                continue
            return number, target

    def register(
        self,
        market: str,
        algo: str,
        manifest: dict[str, Any],
        write_files: Callable[[Path], None],
    ) -> ModelVersion:
        """Write a new version: ``write_files(folder)`` fills it, then the manifest completes it."""
        number, target = self._claim(market, algo)
        staging = target.with_name(f".{target.name}.partial")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        try:
            write_files(staging)
            full = {
                "schema": SCHEMA,
                "market": market.upper(),
                "algo": algo,
                "version": number,
                "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **manifest,
                "files": sorted(p.name for p in staging.iterdir()),
            }
            (staging / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True, default=str), encoding="utf-8")
            os.replace(staging, target)  # the claimed folder is empty: replaced atomically
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            target.rmdir()
            raise
        return ModelVersion(target, full)
