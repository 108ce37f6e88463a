"""The regime detector: forward filtering only, deterministic fits and labels, the actor in a backtest, the CLI."""

import json
import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_mia
from hmmlearn.hmm import GaussianHMM
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.config import ImportableActorConfig
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mia_strategies.actors.regime import LABELS
from mia_strategies.actors.regime import ForwardFilter
from mia_strategies.actors.regime import RegimeModel
from mia_strategies.actors.regime import load_regime_model
from mia_strategies.actors.regime import weighted_observation
from mia_strategies.config import load_backtest
from mia_strategies.errors import ConfigError
from mia_strategies.errors import DataValidationError
from mia_strategies.features.sets import load_feature_sets
from research import regime as research_regime
from research.features import build_features
from research.features import feature_actor_config
from research.features import feature_backtest_run_config
from research.features import plan_features
from research.regime import LabellingSettings
from research.regime import RegimeSettings
from research.regime import fit_from_frame
from research.regime import fit_hmm
from research.regime import label_order
from research.regime import write_run


REPO = Path(__file__).resolve().parents[1]
SETS = load_feature_sets(REPO / "config" / "feature_sets.yaml")
FAST = RegimeSettings.model_validate({"model": {"n_restarts": 3, "n_iter": 40, "min_observations": 200}})


def _random_model(rng: np.random.Generator, d: int) -> RegimeModel:
    transmat = rng.dirichlet(np.ones(3) * 2, size=3) * 0.3 + np.eye(3) * 0.7
    transmat /= transmat.sum(axis=1, keepdims=True)
    covars = []
    for _ in range(3):
        a = rng.normal(size=(d, d))
        covars.append(a @ a.T + np.eye(d) * 0.5)
    return RegimeModel(
        version="test",
        market="ES",
        feature_set="ES.inference",
        set_fingerprint="x",
        features=tuple(f"f{i}" for i in range(d)),
        mean=rng.normal(size=d),
        scale=rng.uniform(0.5, 2.0, size=d),
        startprob=rng.dirichlet(np.ones(3)),
        transmat=transmat,
        means=rng.normal(size=(3, d)) * 2,
        covars=np.array(covars),
    )


def _independent_forward(model: RegimeModel, raws: np.ndarray) -> np.ndarray:
    """Log-space forward algorithm written from the textbook, scipy densities; NaN rows are predict-only."""
    log_a = np.log(model.transmat)
    out = np.empty((len(raws), 3))
    log_alpha = None
    for t, raw in enumerate(raws):
        log_prior = np.log(model.startprob) if log_alpha is None else logsumexp(log_alpha[:, None] + log_a, axis=0)
        if np.all(np.isfinite(raw)):
            x = (raw - model.mean) / model.scale
            log_b = np.array([multivariate_normal(model.means[k], model.covars[k]).logpdf(x) for k in range(3)])
            log_alpha = log_prior + log_b
        else:
            log_alpha = log_prior
        log_alpha = log_alpha - logsumexp(log_alpha)
        out[t] = np.exp(log_alpha)
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 5), n=st.integers(1, 60), missing=st.floats(0, 0.3))
def test_filtered_probabilities_match_an_independent_forward_algorithm(seed, d, n, missing):
    rng = np.random.default_rng(seed)
    model = _random_model(rng, d)
    raws = rng.normal(size=(n, d)) * 2 + model.mean
    raws[rng.random(n) < missing] = np.nan
    probs, _ = ForwardFilter(model).run(raws)
    np.testing.assert_allclose(probs, _independent_forward(model, raws), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_filtered_state_is_hmmlearns_posterior_of_the_prefix_never_of_the_whole_series():
    # The last row of predict_proba on x[:t+1] conditions on exactly the past: it must equal the filter
    rng = np.random.default_rng(7)
    model = _random_model(rng, 3)
    raws = rng.normal(size=(40, 3)) * 2 + model.mean
    hmm = GaussianHMM(n_components=3, covariance_type="full", init_params="", params="")
    hmm.startprob_, hmm.transmat_, hmm.means_, hmm.covars_ = model.startprob, model.transmat, model.means, model.covars
    x = (raws - model.mean) / model.scale
    probs, _ = ForwardFilter(model).run(raws)
    for t in range(len(x)):
        np.testing.assert_allclose(probs[t], hmm.predict_proba(x[: t + 1])[-1], rtol=1e-7, atol=1e-10)
    smoothed = hmm.predict_proba(x)
    assert not np.allclose(probs[:-1], smoothed[:-1], atol=1e-3)  # smoothing uses the future: it differs


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 50), extra=st.integers(1, 50))
def test_appending_future_bars_never_changes_past_states(seed, n, extra):
    rng = np.random.default_rng(seed)
    model = _random_model(rng, 2)
    past = rng.normal(size=(n, 2)) * 3
    future = rng.normal(size=(extra, 2)) * 10
    before, _ = ForwardFilter(model).run(past)
    after, _ = ForwardFilter(model).run(np.vstack([past, future]))
    np.testing.assert_array_equal(after[:n], before)


def test_labels_do_not_depend_on_the_fitted_state_order():
    features = ["ret_15", "rv_30", "efficiency_ratio_30", "adx_14"]
    means = np.array([[0.0, 1e-4, 0.1, 15.0], [1e-3, 2e-4, 0.4, 35.0], [-1e-3, 9e-4, 0.2, 25.0]])
    labelling = LabellingSettings()
    order = label_order(means, features, labelling)
    assert order == [1, 0, 2]  # trend: strongest trend among the calm two; defensive: highest rv_30
    for perm in ([2, 0, 1], [1, 2, 0], [0, 2, 1]):
        permuted = label_order(means[perm], features, labelling)
        assert [perm[i] for i in permuted] == order
    drift_only = label_order(means, features, LabellingSettings(trend_feature=None))
    assert drift_only == [1, 0, 2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, markets):
    """Three seeded demo days of ES (with a known regime schedule), the inference features, one fit."""
    from catalog.demo import generate_demo_catalog

    path = tmp_path_factory.mktemp("regime") / "demo"
    summary = generate_demo_catalog(path, markets, roots=("ES",), trading_days=3, intensity=0.15, seed=11)
    cfg, base = load_backtest(REPO / "config" / "backtest.yaml")
    plan = plan_features(cfg, base, SETS, catalog=path, instruments=["ES"], set_name="inference")
    frame = build_features(plan, SETS, markets).frame(plan, SETS)
    result, states = _fit(frame)
    return summary, path, frame, result, states


def _fit(frame: pd.DataFrame, settings: RegimeSettings = FAST):
    set_def = SETS.resolve("ES.inference")
    return fit_from_frame(
        frame, settings, market="ES", feature_set=set_def.name, set_fingerprint=set_def.fingerprint, meta={}
    )


def test_fit_is_deterministic_and_keeps_the_best_restart(demo):
    _, _, frame, first, _ = demo
    second, _ = _fit(frame)
    np.testing.assert_array_equal(first.model.transmat, second.model.transmat)
    np.testing.assert_array_equal(first.model.means, second.model.means)
    assert [r.seed for r in first.restarts] == [42, 43, 44]
    best = max(r.loglik for r in first.restarts if r.loglik == r.loglik)
    assert first.model.loglik_per_obs == pytest.approx(best / first.observations)
    assert first.model.labels == LABELS and "vix_level" in first.dropped  # no VIX in the demo data
    means = first.state_means
    assert means["defensive"]["rv_30"] == max(m["rv_30"] for m in means.values())


def test_defensive_state_tracks_the_demo_high_volatility_schedule(demo):
    summary, _, _, _, states = demo
    ts = pd.to_datetime(states["ts_event"], utc=True).astype("int64").to_numpy()
    truth = np.array(["" for _ in ts], dtype=object)
    for span in summary.regimes:
        truth[(ts > span.start_ns) & (ts <= span.end_ns)] = span.regime
    high = truth == "high_vol"
    defensive = states["p_defensive"].to_numpy()
    assert high.sum() > 100
    assert defensive[high].mean() > 2 * defensive[~high & (truth != "")].mean()


def test_non_convergence_is_recorded_or_refused(demo):
    demo_frame = demo[2]
    loose = RegimeSettings.model_validate({"model": {"n_restarts": 1, "n_iter": 1, "min_observations": 200}})
    result, _ = _fit(demo_frame, loose)
    assert result.model.converged is False
    strict = RegimeSettings.model_validate(
        {"model": {"n_restarts": 1, "n_iter": 1, "min_observations": 200, "require_convergence": True}}
    )
    with pytest.raises(DataValidationError, match="did not converge in 1 iterations"):
        _fit(demo_frame, strict)
    with pytest.raises(DataValidationError, match="at least 1000000"):
        _fit(demo_frame, RegimeSettings.model_validate({"model": {"min_observations": 1_000_000}}))
    x = np.ones((500, 2))
    with pytest.raises(DataValidationError, match="constant"):
        fit_hmm(
            x,
            ["ret_15", "rv_30"],
            RegimeSettings.model_validate(
                {
                    "observation": {"features": ["ret_15", "rv_30"], "optional_features": []},
                    "labelling": {"trend_feature": None},
                }
            ),
        )


def test_model_files_round_trip_and_bad_files_are_one_line_errors(tmp_path, demo):
    result, states = demo[3], demo[4]
    path = write_run(tmp_path / "run", tmp_path / "models", result, states)
    model = load_regime_model(path)
    np.testing.assert_array_equal(model.covars, result.model.covars)
    assert (tmp_path / "run" / "transition_matrix.csv").is_file()
    matrix = pd.read_csv(tmp_path / "run" / "transition_matrix.csv", index_col=0)
    assert list(matrix.columns) == list(LABELS)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    for content, message in (
        ("not json", "unreadable regime model"),
        (json.dumps({"format": "pickle"}), "not a MIA regime model"),
        (json.dumps({**model.to_json(), "transmat": [[1.0]]}), "invalid regime model"),
        (json.dumps({**model.to_json(), "covars": np.zeros_like(model.covars).tolist()}), "not positive definite"),
        (json.dumps({**model.to_json(), "mean": [math.nan] * len(model.features)}), "non-finite"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as err:
            load_regime_model(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        load_regime_model(tmp_path / "missing.json")


def test_weighted_observation_blends_regime_weights():
    names = ("breakout_score", "mm_score", "regime_p_trend", "regime_p_defensive")
    values = {"breakout_score": 2.0, "mm_score": 0.5}
    p = np.array([0.6, 0.3, 0.1])
    weights = {
        "trend": {"breakout_score": 1.5, "regime_p_trend": 1.0},
        "range": {"mm_score": 2.0},
        "defensive": {"breakout_score": 0.0},
    }
    out = weighted_observation(names, values, p, weights, LABELS, default_weight=1.0)
    assert out[0] == pytest.approx((0.6 * 1.5 + 0.3 * 1.0 + 0.1 * 0.0) * 2.0)
    assert out[1] == pytest.approx((0.6 + 0.3 * 2.0 + 0.1) * 0.5)
    assert out[2] == pytest.approx(1.0 * 0.6)
    assert out[3] == pytest.approx(1.0 * 0.1)
    assert math.isnan(weighted_observation(("atr_dynamic",), {}, p, weights)[0])


def _regime_backtest(catalog, model_path: Path, set_name: str, **config):
    from nautilus_trader.backtest.node import BacktestNode

    cfg, base = load_backtest(REPO / "config" / "backtest.yaml")
    plan = plan_features(
        cfg,
        base,
        SETS,
        catalog=catalog,
        instruments=["ES"],
        set_name=set_name,
        start="2025-12-08T14:00",
        end="2025-12-09T04:00",
    )
    regime = ImportableActorConfig(
        actor_path="mia_strategies.actors.regime:RegimeActor",
        config_path="mia_strategies.actors.regime:RegimeActorConfig",
        config={"model_path": str(model_path), "keep_states": True, **config},
    )
    run = feature_backtest_run_config(plan, [feature_actor_config(plan, keep_vectors=True), regime])
    node = BacktestNode(configs=[run])
    try:
        node.run()
        actors = {type(a).__name__: a for a in node.get_engine(run.id).trader.actors()}
        return actors["FeatureActor"], actors["RegimeActor"]
    finally:
        node.dispose()


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory, demo) -> Path:
    result, states = demo[3], demo[4]
    return write_run(tmp_path_factory.mktemp("run") / "run", tmp_path_factory.mktemp("models"), result, states)


def test_regime_actor_in_a_backtest_equals_the_offline_filter(demo, demo_model):
    features, regime = _regime_backtest(demo[1], demo_model, "inference", drift_window_bars=0)
    model = load_regime_model(demo_model)
    names = SETS.resolve("ES.inference").names
    vectors = [v for v in features.vectors if v.instrument_id.value == "ESZ25.GLBX"]
    raws = np.vstack([np.asarray(v.values)[[names.index(f) for f in model.features]] for v in vectors])
    offline, _ = ForwardFilter(model).run(raws)
    online = [s for s in regime.states if s.instrument_id.value == "ESZ25.GLBX"]
    assert len(online) == len(vectors) > 500
    np.testing.assert_array_equal(np.vstack([s.probabilities for s in online]), offline)
    for state, vector in zip(online, vectors, strict=True):
        assert state.ts_event == vector.ts_event and state.ts_init == vector.ts_init
        assert state.regime == LABELS[int(np.argmax(state.probabilities))]
        assert state.confidence == pytest.approx(state.probabilities.max())
        np.testing.assert_array_equal(state.transition_matrix.reshape(3, 3), model.transmat)
    assert online[0].bars_in_regime == 1 and max(s.bars_in_regime for s in online) > 10
    assert math.isnan(online[0].probabilities[0]) is False  # warm-up NaNs are predict-only steps, never NaN states


def test_model_from_another_feature_set_is_refused_without_stopping_the_run(demo, tmp_path):
    data = demo[3].model.to_json()
    data["features"] = [*data["features"][:-1], "rv_390"]  # not in ES.inference
    model = RegimeModel.from_json(data)
    path = tmp_path / "other.json"
    model.save(path)
    features, regime = _regime_backtest(demo[1], path, "inference")
    assert features.published > 500  # the session went on
    assert regime.published == 0 and regime.skipped == features.published


def test_refit_runs_in_a_worker_thread_and_swaps_the_model(demo, demo_model, monkeypatch, tmp_path):
    threads: list[str] = []
    original = research_regime.refit_model

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(research_regime, "refit_model", spy)
    fast = tmp_path / "regime_detector_config.yaml"
    fast.write_text(
        "model:\n  n_restarts: 1\n  n_iter: 20\n  min_observations: 200\nonline:\n  min_refit_observations: 300\n"
    )
    _, regime = _regime_backtest(
        demo[1], demo_model, "inference", refit_every_bars=400, drift_window_bars=0, regime_config=str(fast)
    )
    versions = [s.model_version for s in regime.states]
    base = load_regime_model(demo_model).version
    assert threads and all(name.startswith("mia-regime-refit") for name in threads)
    assert versions[0] == base and f"{base}-refit1" in versions
    assert versions.index(f"{base}-refit1") == 400  # fitted after the 400th bar, used from the next one


def test_mia_regime_fit_on_real_es_data_writes_a_versioned_model(tmp_path, markets):
    # Arrange: real ES bars and quotes (the shipped Lean slice), built into a Parquet file first
    from catalog.lean import ingest_lean_futures

    catalog = tmp_path / "catalog"
    ingest_lean_futures(REPO / "tests" / "data" / "lean_es", catalog, "ES", markets)
    config = tmp_path / "regime_detector_config.yaml"
    config.write_text(
        "model:\n  n_restarts: 2\n  n_iter: 30\n  covariance_type: diag\n  min_observations: 200\n"
        "feature_sets:\n  ES: ES.inference\n",
        encoding="utf-8",
    )
    features = tmp_path / "es.parquet"
    built = run_mia(
        "features",
        "build",
        "--catalog",
        str(catalog),
        "--instruments",
        "ES",
        "--set",
        "inference",
        "--out",
        str(features),
        "--no-catalog",
    )
    assert built.returncode == 0, built.stderr
    # Act
    result = run_mia(
        "regime", "fit", "--catalog", str(catalog), "--instruments", "ES", "--config", str(config),
        "--features", str(features), "--out", str(tmp_path / "run"), "--models", str(tmp_path / "models"),
    )  # fmt: skip
    # Assert
    assert result.returncode == 0, result.stderr
    assert "restarts fitted" in result.stdout and "defensive" in result.stdout
    [model_file] = list((tmp_path / "models" / "ES").glob("ES-*.json"))
    assert load_regime_model(model_file).feature_set == "ES.inference"
    for name in ("model.json", "transition_matrix.csv", "states.csv", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    again = run_mia(
        "regime", "fit", "--features", str(features), "--config", str(config), "--out", str(tmp_path / "run")
    )
    assert again.returncode == 2 and "not empty" in again.stderr and again.stderr.count("\n") == 1
