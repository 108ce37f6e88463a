"""``mia regime fit``: a 3-state Gaussian HMM on feature observations, labelled deterministically.

The observation is a few features from the registry (by default: 15-bar return, 30-bar realized
volatility, 30-bar efficiency ratio, ADX(14), and the VIX level when the data has it), computed by the
offline feature build over a catalog range (or read from a research Parquet file), restricted to
each contract's active window, standardised. ``hmmlearn.GaussianHMM`` is fitted from several seeds
(``seed``, ``seed + 1``, ...); the restart with the best log-likelihood is kept. Its states are
then ordered deterministically:

- ``defensive``: the state with the highest mean of the volatility feature;
- ``trend``: of the other two, the one with the larger mean trend strength (the trend feature; the
  absolute mean drift when none is configured);
- ``range``: the remaining one.

The model is saved as JSON (``<models>/<MARKET>/<version>.json``, no pickle) and copied with the
transition matrix, the filtered states of the training data (forward algorithm only, as online) and
a summary to the run folder. Settings live in ``config/regime_detector_config.yaml``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import warnings
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

from mia_strategies.errors import DataValidationError


if TYPE_CHECKING:  # the settings models stay importable without pandas and nautilus (CLI start-up)
    import pandas as pd

    from mia_strategies.actors.regime import RegimeModel


FloatArray = npt.NDArray[np.float64]
#: State labels in the order every model stores its states (kept equal to the actor's).
LABELS = ("trend", "range", "defensive")


# -- settings (config/regime_detector_config.yaml) ----------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HmmSettings(_Model):
    """The HMM and its fitting: seeds, restarts, iterations."""

    n_states: Literal[3] = 3
    covariance_type: Literal["full", "diag"] = "full"
    n_restarts: Annotated[int, Field(ge=1, le=100)] = 8
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    n_iter: Annotated[int, Field(ge=1, le=10_000)] = 200
    tol: Annotated[float, Field(gt=0, le=1)] = 1e-4
    min_covar: Annotated[float, Field(gt=0, le=1)] = 1e-3
    min_observations: Annotated[int, Field(ge=10, le=10_000_000)] = 300
    require_convergence: bool = False


class ObservationSettings(_Model):
    """Which features form the observation; optional ones are used only when present often enough."""

    features: list[str] = ["ret_15", "rv_30", "efficiency_ratio_30", "adx_14"]
    optional_features: list[str] = ["vix_level"]
    optional_min_coverage: Annotated[float, Field(gt=0, le=1)] = 0.9

    @model_validator(mode="after")
    def _known(self) -> ObservationSettings:
        from mia_strategies.features.registry import registry

        known = set(registry().names)
        for name in [*self.features, *self.optional_features]:
            if name not in known:
                raise ValueError(f"unknown feature {name!r} (see docs/features.md)")
        if not self.features:
            raise ValueError("list at least one observation feature")
        return self


class LabellingSettings(_Model):
    """Features that decide which state is defensive, trend and range."""

    volatility_feature: str = "rv_30"
    trend_feature: str | None = "efficiency_ratio_30"
    drift_feature: str = "ret_15"


class OnlineSettings(_Model):
    """How the regime actor refits: schedule, drift detection, window."""

    refit_every_bars: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    refit_window_bars: Annotated[int, Field(ge=10, le=10_000_000)] = 5000
    min_refit_observations: Annotated[int, Field(ge=10, le=10_000_000)] = 500
    drift_window_bars: Annotated[int, Field(ge=0, le=100_000)] = 240
    drift_threshold_nats: Annotated[float, Field(gt=0, le=1000)] = 3.0


class WeightingSettings(_Model):
    """Method 3: per-regime weights of the features of ``<ROOT>.regime_weighted`` (and of the probabilities)."""

    default_weight: float = 1.0
    weights: dict[str, dict[str, float]] = {}

    @model_validator(mode="after")
    def _labels(self) -> WeightingSettings:
        unknown = sorted(set(self.weights) - set(LABELS))
        if unknown:
            raise ValueError(f"weights for unknown regimes {unknown} (regimes are {', '.join(LABELS)})")
        return self


class RegimeSettings(_Model):
    """The regime detector file."""

    version: int = 1
    feature_sets: dict[str, str] = {"ES": "ES.training", "MNQ": "MNQ.training"}
    model: HmmSettings = HmmSettings()
    observation: ObservationSettings = ObservationSettings()
    labelling: LabellingSettings = LabellingSettings()
    online: OnlineSettings = OnlineSettings()
    weighting: WeightingSettings = WeightingSettings()

    @model_validator(mode="after")
    def _labelling_in_observation(self) -> RegimeSettings:
        used = set(self.observation.features) | set(self.observation.optional_features)
        lab = self.labelling
        for name in (lab.volatility_feature, lab.drift_feature, lab.trend_feature):
            if name is not None and name not in used:
                raise ValueError(f"labelling feature {name!r} must be one of the observation features")
        if lab.volatility_feature not in self.observation.features:
            raise ValueError("labelling.volatility_feature must be a required observation feature")
        return self


def load_regime_settings(path: Path | None = None) -> RegimeSettings:
    """Load ``regime_detector_config.yaml`` (config folder by default; defaults when it has none)."""
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_config
    from mia_strategies.config import register_config_kind

    register_config_kind("regime_detector", RegimeSettings)
    if path is None:
        path = config_dir() / "regime_detector_config.yaml"
        if not path.exists():
            return RegimeSettings()
    result: RegimeSettings = load_config(path, "regime_detector")
    return result


# -- fitting --------------------------------------------------------------------------------------------


@dataclass
class Restart:
    """One restart's outcome."""

    seed: int
    loglik: float
    converged: bool
    iterations: int
    error: str = ""


@dataclass
class FitResult:
    """The kept model, every restart, and what the data looked like."""

    model: RegimeModel
    restarts: list[Restart]
    features: list[str]
    dropped: list[str]
    observations: int
    state_means: dict[str, dict[str, float]] = field(default_factory=dict)


def observation_matrix(
    frame: pd.DataFrame, settings: RegimeSettings
) -> tuple[FloatArray, list[str], list[str], pd.Index]:
    """Rows of the active contract with every observation feature present; optional features kept if covered."""
    obs = settings.observation
    active = frame[frame["active"]] if "active" in frame.columns else frame
    missing = [f for f in obs.features if f not in active.columns]
    if missing:
        raise DataValidationError(f"feature data lacks {', '.join(missing)}: build them into the set the regime reads")
    features = list(obs.features)
    dropped: list[str] = []
    for name in obs.optional_features:
        coverage = float(active[name].notna().mean()) if name in active.columns and len(active) else 0.0
        if coverage >= obs.optional_min_coverage:
            features.append(name)
        else:
            dropped.append(name)
    values = active[features].to_numpy(dtype=np.float64)
    keep = np.all(np.isfinite(values), axis=1)
    return values[keep], features, dropped, active.index[keep]


def _sequence_lengths(frame: pd.DataFrame, index: pd.Index) -> list[int]:
    """Lengths of runs of consecutive rows of one instrument (separate HMM sequences)."""
    if "instrument_id" not in frame.columns or len(index) == 0:
        return [len(index)]
    ids = frame.loc[index, "instrument_id"].to_numpy()
    lengths: list[int] = []
    run = 1
    for a, b in itertools.pairwise(ids):
        if a == b:
            run += 1
        else:
            lengths.append(run)
            run = 1
    lengths.append(run)
    return lengths


def _converged(monitor: Any) -> bool:
    """EM stopped because the log-likelihood gain fell below ``tol`` (hmmlearn also says so at ``n_iter``)."""
    history = list(monitor.history)
    return len(history) >= 2 and history[-1] - history[-2] < monitor.tol


def _fit_restarts(x: FloatArray, lengths: list[int], hmm: HmmSettings) -> tuple[Any, list[Restart]]:
    from hmmlearn.hmm import GaussianHMM

    best = None
    best_ll = -math.inf
    restarts: list[Restart] = []
    for r in range(hmm.n_restarts):
        seed = hmm.seed + r
        model = GaussianHMM(
            n_components=hmm.n_states,
            covariance_type=hmm.covariance_type,
            n_iter=hmm.n_iter,
            tol=hmm.tol,
            min_covar=hmm.min_covar,
            random_state=seed,
            init_params="stmc",
            params="stmc",
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(x, lengths)
                ll = float(model.score(x, lengths))
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            restarts.append(Restart(seed, math.nan, False, 0, f"{exc.__class__.__name__}: {exc}"))
            continue
        if not math.isfinite(ll) or not np.all(np.isfinite(model.transmat_)):
            restarts.append(Restart(seed, math.nan, False, 0, "non-finite parameters"))
            continue
        restarts.append(Restart(seed, ll, _converged(model.monitor_), int(model.monitor_.iter)))
        if ll > best_ll:
            best, best_ll = model, ll
    return best, restarts


def label_order(state_means: FloatArray, features: list[str], labelling: LabellingSettings) -> list[int]:
    """Fitted state indices in label order (trend, range, defensive); ties go to the lower index."""
    vol = features.index(labelling.volatility_feature)
    states = list(range(state_means.shape[0]))
    defensive = max(states, key=lambda k: (state_means[k, vol], -k))
    rest = [k for k in states if k != defensive]
    if labelling.trend_feature is not None and labelling.trend_feature in features:
        j = features.index(labelling.trend_feature)
        trend = max(rest, key=lambda k: (state_means[k, j], -k))
    else:
        j = features.index(labelling.drift_feature)
        trend = max(rest, key=lambda k: (abs(state_means[k, j]), -k))
    range_ = next(k for k in rest if k != trend)
    return [trend, range_, defensive]


def _full_covars(model: Any) -> FloatArray:
    covars = np.asarray(model.covars_, dtype=np.float64)
    if covars.ndim == 2:  # diag
        covars = np.stack([np.diag(c) for c in covars])
    return covars


def fit_hmm(
    x_raw: FloatArray,
    features: list[str],
    settings: RegimeSettings,
    *,
    lengths: list[int] | None = None,
    market: str = "",
    feature_set: str = "",
    set_fingerprint: str = "",
    version: str | None = None,
    meta: dict[str, Any] | None = None,
) -> FitResult:
    """Fit the restarts on raw observations, keep the best, label it; DataValidationError when impossible."""
    hmm = settings.model
    if len(x_raw) < hmm.min_observations:
        raise DataValidationError(
            f"{len(x_raw)} complete observations, the fit needs at least {hmm.min_observations}: use a longer range "
            "or lower model.min_observations",
        )
    mean = x_raw.mean(axis=0)
    scale = x_raw.std(axis=0)
    flat = [f for f, s in zip(features, scale, strict=True) if not s > 0]
    if flat:
        raise DataValidationError(f"observation features {', '.join(flat)} are constant over the range: drop them")
    x = (x_raw - mean) / scale
    lengths = lengths or [len(x)]
    best, restarts = _fit_restarts(x, lengths, hmm)
    if best is None:
        reasons = "; ".join(sorted({r.error for r in restarts}))
        raise DataValidationError(f"every HMM restart failed ({reasons}); check the features or raise model.min_covar")
    kept = max((r for r in restarts if r.loglik == r.loglik), key=lambda r: r.loglik)
    if not kept.converged and hmm.require_convergence:
        raise DataValidationError(
            f"the best HMM (seed {kept.seed}) did not converge in {hmm.n_iter} iterations; raise model.n_iter or "
            "set model.require_convergence: false",
        )
    from mia_strategies.actors.regime import RegimeModel

    order = label_order(best.means_ * scale + mean, features, settings.labelling)
    startprob = np.asarray(best.startprob_)[order]
    transmat = np.asarray(best.transmat_)[np.ix_(order, order)]
    transmat = transmat / transmat.sum(axis=1, keepdims=True)
    means = np.asarray(best.means_)[order]
    covars = _full_covars(best)[order]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(np.concatenate([transmat.ravel(), means.ravel()]).tobytes()).hexdigest()[:8]
    version = version or f"{market or 'model'}-{stamp}-{digest}"
    model = RegimeModel(
        version=version,
        market=market,
        feature_set=feature_set,
        set_fingerprint=set_fingerprint,
        features=tuple(features),
        mean=mean,
        scale=scale,
        startprob=startprob / startprob.sum(),
        transmat=transmat,
        means=means,
        covars=covars,
        loglik_per_obs=kept.loglik / len(x),
        converged=kept.converged,
        meta={**(meta or {}), "seed": kept.seed, "n_restarts": hmm.n_restarts, "observations": len(x)},
    )
    state_means = {
        label: {f: float(v) for f, v in zip(features, means[k] * scale + mean, strict=True)}
        for k, label in enumerate(LABELS)
    }
    return FitResult(model, restarts, features, [], len(x), state_means)


def refit_model(current: RegimeModel, observations: FloatArray, settings: RegimeSettings, version: str) -> RegimeModel:
    """A new model on recent raw observations (the regime actor's worker thread calls this)."""
    keep = np.all(np.isfinite(observations), axis=1)
    result = fit_hmm(
        observations[keep],
        list(current.features),
        settings,
        market=current.market,
        feature_set=current.feature_set,
        set_fingerprint=current.set_fingerprint,
        version=version,
        meta={"base_version": current.meta.get("base_version") or current.version, "refit": True},
    )
    return result.model


# -- the command's work ----------------------------------------------------------------------------------


def fit_from_frame(
    frame: pd.DataFrame,
    settings: RegimeSettings,
    *,
    market: str,
    feature_set: str,
    set_fingerprint: str,
    meta: dict[str, Any],
) -> tuple[FitResult, pd.DataFrame]:
    """Fit on a research frame; return the result and the filtered states of the rows used."""
    x_raw, features, dropped, index = observation_matrix(frame, settings)
    result = fit_hmm(
        x_raw,
        features,
        settings,
        lengths=_sequence_lengths(frame, index),
        market=market,
        feature_set=feature_set,
        set_fingerprint=set_fingerprint,
        meta=meta,
    )
    result.dropped = dropped
    states = filtered_states(result.model, frame.loc[index], x_raw)
    return result, states


def filtered_states(model: RegimeModel, rows: pd.DataFrame, x_raw: FloatArray) -> pd.DataFrame:
    """Forward-filtered probabilities of each row (restarting per instrument), as the actor computes them."""
    import pandas as pd

    from mia_strategies.actors.regime import ForwardFilter

    out = []
    instrument = rows["instrument_id"].to_numpy() if "instrument_id" in rows.columns else np.array([""] * len(rows))
    start = 0
    filt = ForwardFilter(model)
    while start < len(rows):
        end = start
        while end < len(rows) and instrument[end] == instrument[start]:
            end += 1
        probs, _ = filt.run(x_raw[start:end])
        out.append(probs)
        start = end
    probs = np.vstack(out) if out else np.zeros((0, len(LABELS)))
    states = pd.DataFrame(probs, columns=[f"p_{label}" for label in model.labels])
    states.insert(0, "ts_event", rows["ts_event"].to_numpy() if "ts_event" in rows.columns else np.arange(len(rows)))
    states.insert(1, "instrument_id", instrument)
    states["regime"] = [model.labels[i] for i in np.argmax(probs, axis=1)] if len(probs) else []
    return states


def write_run(out_dir: Path, models_dir: Path, result: FitResult, states: pd.DataFrame) -> Path:
    """Write the model (versioned) and the run folder: model, transition matrix, states, summary."""
    import pandas as pd

    model = result.model
    model_path = models_dir / (model.market or "model") / f"{model.version}.json"
    model.save(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "model.json")
    matrix = pd.DataFrame(model.transmat, index=list(model.labels), columns=list(model.labels))
    matrix.index.name = "from\\to"
    matrix.to_csv(out_dir / "transition_matrix.csv", float_format="%.6f")
    states.to_csv(out_dir / "states.csv", index=False, float_format="%.6f")
    share = states["regime"].value_counts(normalize=True).reindex(list(model.labels), fill_value=0.0)
    summary = {
        "version": model.version,
        "model_file": str(model_path),
        "market": model.market,
        "feature_set": model.feature_set,
        "features": list(model.features),
        "dropped_optional_features": result.dropped,
        "observations": result.observations,
        "loglik_per_obs": model.loglik_per_obs,
        "converged": model.converged,
        "restarts": [r.__dict__ for r in result.restarts],
        "kept_seed": model.meta.get("seed"),
        "state_means": result.state_means,
        "time_share": {k: float(v) for k, v in share.items()},
        "labelling": (
            "defensive = highest mean volatility feature; trend = higher mean trend strength of the rest; "
            "range = the other"
        ),
        **{k: v for k, v in model.meta.items() if k not in ("seed",)},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return model_path
