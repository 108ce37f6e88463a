"""The regime actor: a fitted 3-state Gaussian HMM filtered forward one step per feature vector.

Each ``FeatureVector`` of a watched instrument gives one observation (the model's features, picked
by name and standardised with the training mean and scale). The actor runs one step of the forward
algorithm, ``alpha_t ∝ (alpha_{t-1} A) ⊙ b(x_t)``: the filtered distribution over states given the
bars seen so far and nothing later. hmmlearn's ``predict``/``predict_proba`` smooth with future
data and are never called online. A missing observation (NaN in any model feature: warm-up, absent
VIX, a gap) is a predict-only step, ``alpha_t = alpha_{t-1} A``, logged and counted.

States are stored in label order (``trend``, ``range``, ``defensive``; see ``research.regime`` for
the deterministic labelling), so probabilities and transition matrix need no mapping. The actor
publishes a ``RegimeState`` per bar with the bar's timestamps and, when a weighting set is
configured, the regime-weighted observation as a ``FeatureVector`` of set ``<ROOT>.regime_weighted``
(method 3: per-regime weights, blended by the filtered probabilities).

Refits (on a schedule, or when the predictive log-likelihood of recent bars drops below the
training level: drift) run in a worker thread and never block the event loop; the new model is
swapped in at a bar boundary and the filter is rebuilt from the buffered observations (past only).
In a backtest (simulated clock) the swap waits for the fit at the next bar, so runs stay
reproducible; live, the old model keeps filtering until the new one is ready.
"""

import concurrent.futures
import json
import math
from collections import deque
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.errors import ConfigError


LABELS = ("trend", "range", "defensive")
FloatArray = npt.NDArray[np.float64]
_LOG_2PI = math.log(2.0 * math.pi)
MODEL_FORMAT = "mia-regime-hmm/1"


# -- the model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegimeModel:
    """A fitted Gaussian HMM in label order, with what is needed to check and standardise inputs."""

    version: str
    market: str
    feature_set: str
    set_fingerprint: str
    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    startprob: FloatArray
    transmat: FloatArray
    means: FloatArray
    covars: FloatArray
    labels: tuple[str, ...] = LABELS
    loglik_per_obs: float = math.nan
    converged: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, d = len(self.labels), len(self.features)
        checks = (
            (self.mean.shape == (d,), "mean"),
            (self.scale.shape == (d,) and bool(np.all(self.scale > 0)), "scale"),
            (self.startprob.shape == (n,), "startprob"),
            (self.transmat.shape == (n, n), "transmat"),
            (self.means.shape == (n, d), "means"),
            (self.covars.shape == (n, d, d), "covars"),
        )
        for ok, name in checks:
            if not ok:
                raise ValueError(f"regime model {self.version}: {name} has the wrong shape or values")
        for name in ("mean", "scale", "startprob", "transmat", "means", "covars"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"regime model {self.version}: {name} has non-finite values")
        if np.any(self.transmat < 0) or not np.allclose(self.transmat.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(f"regime model {self.version}: transition rows must be probabilities")
        if np.any(self.startprob < 0) or not math.isclose(float(self.startprob.sum()), 1.0, abs_tol=1e-6):
            raise ValueError(f"regime model {self.version}: start probabilities must sum to 1")
        for k, cov in enumerate(self.covars):
            # checked here, not at the first bar: a singular covariance would fail the filter mid-session
            if not np.allclose(cov, cov.T) or np.any(np.linalg.eigvalsh(cov) <= 0):
                raise ValueError(f"regime model {self.version}: covariance of state {k} is not positive definite")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (no pickle: a model file is data, never code)."""
        return {
            "format": MODEL_FORMAT,
            "version": self.version,
            "market": self.market,
            "feature_set": self.feature_set,
            "set_fingerprint": self.set_fingerprint,
            "features": list(self.features),
            "labels": list(self.labels),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "startprob": self.startprob.tolist(),
            "transmat": self.transmat.tolist(),
            "means": self.means.tolist(),
            "covars": self.covars.tolist(),
            "loglik_per_obs": self.loglik_per_obs,
            "converged": self.converged,
            "meta": self.meta,
        }

    @staticmethod
    def from_json(data: dict[str, Any], source: str = "model") -> "RegimeModel":
        """Rebuild a model; ConfigError naming the file and the problem when it is not a valid model."""
        if data.get("format") != MODEL_FORMAT:
            raise ConfigError(
                f"{source}: not a MIA regime model (format {data.get('format')!r}, expected {MODEL_FORMAT})"
            )
        try:
            return RegimeModel(
                version=str(data["version"]),
                market=str(data["market"]),
                feature_set=str(data["feature_set"]),
                set_fingerprint=str(data["set_fingerprint"]),
                features=tuple(data["features"]),
                labels=tuple(data["labels"]),
                mean=np.asarray(data["mean"], dtype=np.float64),
                scale=np.asarray(data["scale"], dtype=np.float64),
                startprob=np.asarray(data["startprob"], dtype=np.float64),
                transmat=np.asarray(data["transmat"], dtype=np.float64),
                means=np.asarray(data["means"], dtype=np.float64),
                covars=np.asarray(data["covars"], dtype=np.float64),
                loglik_per_obs=float(data.get("loglik_per_obs", math.nan)),
                converged=bool(data.get("converged", True)),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: invalid regime model ({exc}); refit it with `mia regime fit`") from None

    def save(self, path: Path) -> None:
        """Write the model as JSON (atomic rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)


def load_regime_model(path: Path | str) -> RegimeModel:
    """Read a model file; one-line ConfigError when missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: regime model not found (fit one with `mia regime fit`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable regime model ({exc.__class__.__name__})") from None
    return RegimeModel.from_json(data, str(path))


class GaussianEmissions:
    """Log-densities of the states' Gaussians for one standardised observation (Cholesky, precomputed)."""

    def __init__(self, means: FloatArray, covars: FloatArray) -> None:
        self._means = means
        self._chol_inv = []
        self._log_norm = []
        d = means.shape[1]
        for cov in covars:
            chol = np.linalg.cholesky(cov)
            self._chol_inv.append(np.linalg.inv(chol))
            self._log_norm.append(-0.5 * (d * _LOG_2PI) - float(np.sum(np.log(np.diag(chol)))))

    def log_density(self, x: FloatArray) -> FloatArray:
        """``log N(x | mean_k, cov_k)`` for every state ``k``."""
        out = np.empty(len(self._log_norm))
        for k, (inv, norm) in enumerate(zip(self._chol_inv, self._log_norm, strict=True)):
            z = inv @ (x - self._means[k])
            out[k] = norm - 0.5 * float(z @ z)
        return out


class ForwardFilter:
    """The forward algorithm, one observation at a time: filtered probabilities only."""

    def __init__(self, model: RegimeModel) -> None:
        self.model = model
        self._emissions = GaussianEmissions(model.means, model.covars)
        self._a = model.transmat
        self.alpha: FloatArray | None = None
        self.steps = 0
        self.missing = 0

    def reset(self) -> None:
        """Forget the past (the next step starts from the start probabilities)."""
        self.alpha = None
        self.steps = 0

    def step(self, raw: FloatArray) -> tuple[FloatArray, float]:
        """Filter one raw (unstandardised) observation; return the state probabilities and the
        predictive log-likelihood ``log p(x_t | x_1..t-1)`` (NaN for a missing observation)."""
        model = self.model
        prior = model.startprob if self.alpha is None else self.alpha @ self._a
        self.steps += 1
        if not np.all(np.isfinite(raw)):
            self.missing += 1
            self.alpha = prior / prior.sum()
            return self.alpha, math.nan
        x = (raw - model.mean) / model.scale
        log_b = self._emissions.log_density(x)
        top = float(log_b.max())
        weighted = prior * np.exp(log_b - top)
        total = float(weighted.sum())
        if not total > 0.0 or not math.isfinite(total):
            self.missing += 1  # numerically impossible observation: keep the prediction
            self.alpha = prior / prior.sum()
            return self.alpha, math.nan
        self.alpha = weighted / total
        return self.alpha, math.log(total) + top

    def run(self, raws: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Filter a sequence from the start; return (probabilities per step, predictive log-likelihoods)."""
        self.reset()
        probs = np.empty((len(raws), len(self.model.labels)))
        lls = np.empty(len(raws))
        for i, raw in enumerate(raws):
            p, ll = self.step(raw)
            probs[i] = p
            lls[i] = ll
        return probs, lls


# -- method 3: regime-weighted observation ------------------------------------------------------------


def weighted_observation(
    names: tuple[str, ...],
    values: dict[str, float],
    probabilities: FloatArray,
    weights: dict[str, dict[str, float]],
    labels: tuple[str, ...] = LABELS,
    default_weight: float = 1.0,
) -> FloatArray:
    """``w_f x_f`` with ``w_f = sum_r p_r W[r][f]``; ``regime_p_<label>`` features are the probabilities."""
    out = np.full(len(names), np.nan)
    by_label = dict(zip(labels, probabilities, strict=True))
    for i, name in enumerate(names):
        if name.startswith("regime_p_"):
            x = float(by_label.get(name.removeprefix("regime_p_"), math.nan))
        else:
            x = values.get(name, math.nan)
        w = sum(float(p) * weights.get(label, {}).get(name, default_weight) for label, p in by_label.items())
        out[i] = w * x
    return out


# -- the actor -----------------------------------------------------------------------------------------


class RegimeActorConfig(ActorConfig, frozen=True):
    """Configuration of the regime actor.

    Parameters
    ----------
    model_path : str
        The model file written by ``mia regime fit``.
    instrument_ids : list[str], default []
        Instruments to follow; empty follows every instrument whose vectors carry the model's features.
    regime_config : str, optional
        ``regime_detector_config.yaml`` (weights for the weighted observation, refit settings); the
        config folder's when None.
    feature_sets_file : str, optional
        ``feature_sets.yaml`` naming the weighted set (default: the config folder's).
    publish_weighted : bool, default True
        Publish the regime-weighted observation (``<ROOT>.regime_weighted``).
    refit_every_bars : int, optional
        Refit after this many bars (None: the config file's ``online.refit_every_bars``; 0 never).
    drift_window_bars : int, optional
        Bars of predictive log-likelihood watched for drift (None: config; 0 disables).
    keep_states : bool, default False
        Keep every published ``RegimeState`` in ``self.states`` (tests).
    """

    model_path: str
    instrument_ids: list[str] = msgspec.field(default_factory=list)
    regime_config: str | None = None
    feature_sets_file: str | None = None
    publish_weighted: bool = True
    refit_every_bars: int | None = None
    drift_window_bars: int | None = None
    keep_states: bool = False


@dataclass
class _Track:
    """The filter of one instrument and its recent observations."""

    filter: ForwardFilter
    regime: str = ""
    bars_in_regime: int = 0
    observations: deque[FloatArray] = field(default_factory=deque)
    loglik: deque[float] = field(default_factory=deque)


class RegimeActor(Actor):
    """Filters the HMM forward on every feature vector and publishes ``RegimeState``."""

    def __init__(self, config: RegimeActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._model: RegimeModel | None = None
        self._tracks: dict[str, _Track] = {}
        self._positions: dict[str, npt.NDArray[np.intp] | None] = {}
        self._weighted_sets: dict[str, tuple[str, ...] | None] = {}
        self._settings: Any = None
        self._feature_sets: Any = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._refit: concurrent.futures.Future[RegimeModel] | None = None
        self._bars_since_refit = 0
        self._refits = 0
        self._drift_cooldown = 0
        self.states: list[RegimeState] = []
        self.published = 0
        self.skipped = 0

    # -- LIFECYCLE ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Load the model and settings; subscribe to feature vectors."""
        from research.regime import load_regime_settings

        self._model = load_regime_model(self._cfg.model_path)
        self._settings = load_regime_settings(Path(self._cfg.regime_config) if self._cfg.regime_config else None)
        if self._cfg.publish_weighted:
            from mia_strategies.features.sets import load_feature_sets

            self._feature_sets = load_feature_sets(self._cfg.feature_sets_file)
        if not self._model.converged:
            self.log.warning(
                f"regime model {self._model.version} did not converge when fitted; filtering with it anyway"
            )
        self.subscribe_data(DataType(FeatureVector))
        self.log.info(f"regime model {self._model.version} on features {', '.join(self._model.features)}")

    def on_stop(self) -> None:
        """Stop the refit worker without waiting for it."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- DATA ---------------------------------------------------------------------------------------

    def on_data(self, data: Data) -> None:
        """One feature vector: one forward step for its instrument."""
        if not isinstance(data, FeatureVector) or self._model is None:
            return
        if data.feature_set.endswith(".regime_weighted"):
            return
        instrument_id = data.instrument_id.value
        if self._cfg.instrument_ids and instrument_id not in self._cfg.instrument_ids:
            return
        positions = self._positions_for(data.feature_set)
        if positions is None:
            self.skipped += 1
            return
        values = np.asarray(data.values, dtype=np.float64)
        if len(values) <= int(positions.max()):
            self.log.error(
                f"{data.feature_set} vector of {instrument_id} has {len(values)} values; set changed? skipped"
            )
            self.skipped += 1
            return
        self._maybe_swap_model()
        raw = values[positions]
        track = self._track(instrument_id)
        probabilities, loglik = track.filter.step(raw)
        self._remember(track, raw, loglik)
        self._publish(data, track, probabilities, values)
        self._maybe_refit(track)

    def _track(self, instrument_id: str) -> _Track:
        track = self._tracks.get(instrument_id)
        if track is None:
            assert self._model is not None
            track = _Track(ForwardFilter(self._model))
            self._tracks[instrument_id] = track
        return track

    def _positions_for(self, set_name: str) -> npt.NDArray[np.intp] | None:
        """Where the model's features sit in a set's vectors; None (logged once) when the set lacks some."""
        if set_name in self._positions:
            return self._positions[set_name]
        from mia_strategies.features.sets import load_feature_sets

        assert self._model is not None
        try:
            sets = self._feature_sets or load_feature_sets(self._cfg.feature_sets_file)
            names = sets.resolve(set_name).names
        except ConfigError as exc:
            self.log.error(f"regime: {exc}; its vectors are ignored")
            self._positions[set_name] = None
            return None
        missing = [f for f in self._model.features if f not in names]
        if missing:
            self.log.error(
                f"regime model {self._model.version} (fitted on {self._model.feature_set}) needs "
                f"{', '.join(missing)}, which {set_name} lacks: its vectors are ignored; publish a set with "
                f"these features or fit a model on {set_name}",
            )
            self._positions[set_name] = None
            return None
        positions = np.array([names.index(f) for f in self._model.features], dtype=np.intp)
        self._positions[set_name] = positions
        return positions

    def _remember(self, track: _Track, raw: FloatArray, loglik: float) -> None:
        online = self._settings.online
        track.observations.append(raw)
        while len(track.observations) > online.refit_window_bars:
            track.observations.popleft()
        window = self._drift_window()
        if window > 0 and loglik == loglik:
            track.loglik.append(loglik)
            while len(track.loglik) > window:
                track.loglik.popleft()

    def _publish(self, data: FeatureVector, track: _Track, probabilities: FloatArray, values: FloatArray) -> None:
        assert self._model is not None
        model = self._model
        best = int(np.argmax(probabilities))
        regime = model.labels[best]
        if regime == track.regime:
            track.bars_in_regime += 1
        else:
            track.regime = regime
            track.bars_in_regime = 1
        state = RegimeState(
            instrument_id=data.instrument_id,
            regime=regime,
            labels=",".join(model.labels),
            probabilities=probabilities.copy(),
            confidence=float(probabilities[best]),
            bars_in_regime=track.bars_in_regime,
            transition_matrix=model.transmat.reshape(-1).copy(),
            model_version=model.version,
            ts_event=data.ts_event,
            ts_init=data.ts_init,
        )
        metadata = {"instrument_id": data.instrument_id.value}
        self.publish_data(DataType(RegimeState, metadata=metadata), state)
        self.published += 1
        if self._cfg.keep_states:
            self.states.append(state)
        if self._cfg.publish_weighted:
            self._publish_weighted(data, probabilities, values)

    def _publish_weighted(self, data: FeatureVector, probabilities: FloatArray, values: FloatArray) -> None:
        root = data.feature_set.split(".", 1)[0]
        names = self._weighted_sets.get(root, ())
        if names == ():
            try:
                names = self._feature_sets.resolve(f"{root}.regime_weighted").names
            except ConfigError:
                self.log.warning(
                    f"no {root}.regime_weighted set in feature_sets.yaml: weighted observation not published"
                )
                names = None
            self._weighted_sets[root] = names
        if not names:
            return
        source = self._feature_sets.resolve(data.feature_set).names
        lookup = {n: float(values[i]) for i, n in enumerate(source) if n in names}
        weighting = self._settings.weighting
        assert self._model is not None
        vector = weighted_observation(
            names, lookup, probabilities, weighting.weights, self._model.labels, weighting.default_weight
        )
        out = FeatureVector(
            instrument_id=data.instrument_id,
            feature_set=f"{root}.regime_weighted",
            values=vector,
            ts_event=data.ts_event,
            ts_init=data.ts_init,
        )
        self.publish_data(DataType(FeatureVector, metadata={"instrument_id": data.instrument_id.value}), out)

    # -- REFIT --------------------------------------------------------------------------------------

    def _refit_every(self) -> int:
        value = self._cfg.refit_every_bars
        return self._settings.online.refit_every_bars if value is None else value

    def _drift_window(self) -> int:
        value = self._cfg.drift_window_bars
        return self._settings.online.drift_window_bars if value is None else value

    def _maybe_refit(self, track: _Track) -> None:
        self._bars_since_refit += 1
        if self._drift_cooldown > 0:
            self._drift_cooldown -= 1
        if self._refit is not None:
            return
        every = self._refit_every()
        scheduled = every > 0 and self._bars_since_refit >= every
        drift = self._drifted(track)
        if not (scheduled or drift):
            return
        online = self._settings.online
        if len(track.observations) < online.min_refit_observations:
            return
        observations = np.vstack(list(track.observations))
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mia-regime-refit")
        from research.regime import refit_model

        assert self._model is not None
        self._refits += 1
        version = f"{self._model.meta.get('base_version') or self._model.version}-refit{self._refits}"
        self.log.info(
            f"regime refit {self._refits} started ({'drift' if drift else 'schedule'}, {len(observations)} bars)"
        )
        self._refit = self._executor.submit(refit_model, self._model, observations, self._settings, version)
        self._bars_since_refit = 0
        if drift:
            self._drift_cooldown = max(self._drift_window(), 1)
            track.loglik.clear()

    def _drifted(self, track: _Track) -> bool:
        window = self._drift_window()
        model = self._model
        if window <= 0 or model is None or self._drift_cooldown > 0 or len(track.loglik) < window:
            return False
        if not math.isfinite(model.loglik_per_obs):
            return False
        recent = sum(track.loglik) / len(track.loglik)
        return recent < model.loglik_per_obs - self._settings.online.drift_threshold_nats

    def _maybe_swap_model(self) -> None:
        future = self._refit
        if future is None:
            return
        simulated = type(self.clock).__name__ == "TestClock"
        if not future.done() and not simulated:
            return  # live: keep filtering with the current model until the fit is ready
        self._refit = None
        try:
            model = future.result()
        except Exception as exc:  # a failed refit must never stop the session: keep the model
            kept = self._model.version if self._model else "?"
            self.log.error(f"regime refit failed ({exc.__class__.__name__}: {exc}); keeping {kept}")
            return
        self._model = model
        self._drift_cooldown = max(self._drift_window(), 1)  # judge the new model on its own bars only
        for track in self._tracks.values():
            track.loglik.clear()
            track.filter = ForwardFilter(model)
            if track.observations:
                probs, _ = track.filter.run(np.vstack(list(track.observations)))
                track.filter.alpha = probs[-1]
        self.log.info(f"regime model swapped to {model.version}")


def model_summary(model: RegimeModel) -> dict[str, Any]:
    """A compact description for logs and run folders."""
    data = asdict(model)
    for key in ("mean", "scale", "startprob", "transmat", "means", "covars"):
        data[key] = np.asarray(data[key]).round(6).tolist()
    return data
