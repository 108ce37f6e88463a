"""SHAP selection: informative features rank first, the inference set is rewritten in place, cache fallback."""

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError
from mia_strategies.features.sets import FeatureSetsFile
from research import shap_select
from research.rl.synthetic import synthetic_market
from research.shap_select import forward_return_target
from research.shap_select import replace_inference_set
from research.shap_select import select_features


@pytest.fixture(scope="module")
def market(markets):
    return synthetic_market("ES", markets, days=4, bar_minutes=5, edge=1.0, noise=0.3, n_noise_features=12, seed=5)


def test_the_predictive_feature_ranks_first_and_stability_is_reported(market, tmp_path):
    result = select_features(market, top=4, windows=3, seed=1, cache_dir=tmp_path)
    assert result.method == "shap" and result.windows == 3
    assert result.selected[0] == "signal" and len(result.selected) == 4
    frame = result.importance
    assert list(frame.columns) == [
        "market",
        "feature",
        "importance",
        "rank",
        "selected",
        "selection_frequency",
        "method",
    ]
    assert frame.loc[frame["feature"] == "signal", "selection_frequency"].item() == 1.0
    assert frame["selected"].sum() == 4 and frame["rank"].tolist() == list(range(1, 14))
    assert 0.0 <= result.min_jaccard <= result.mean_jaccard <= 1.0
    assert (tmp_path / "feature_importance_ES.csv").is_file()


def test_forward_return_target_never_crosses_a_session(market):
    target = forward_return_target(market)
    days = market.trading_days()
    last_of_day = np.flatnonzero(days[1:] != days[:-1])
    assert np.isnan(target[last_of_day]).all() and np.isnan(target[-1])
    assert target[0] == pytest.approx((market.close[1] - market.close[0]) / 0.25)


def test_a_failing_shap_falls_back_to_the_cached_importance(market, tmp_path, monkeypatch):
    first = select_features(market, top=4, windows=2, seed=1, cache_dir=tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("TreeExplainer cannot explain this model")

    monkeypatch.setattr(shap_select, "shap_importance", broken)
    fallback = select_features(market, top=4, windows=2, seed=1, cache_dir=tmp_path)
    assert fallback.method == "cache" and fallback.selected == first.selected
    with pytest.raises(MiaError, match="no cached importance"):
        select_features(market, top=4, windows=2, seed=1, cache_dir=tmp_path / "empty")


def test_inference_set_is_rewritten_in_place_keeping_comments_and_other_sets(tmp_path):
    path = tmp_path / "feature_sets.yaml"
    shutil.copy(REPO / "config" / "feature_sets.yaml", path)
    before = yaml.safe_load(path.read_text())
    training = before["markets"]["ES"]["training"]
    chosen = list(reversed(training[-150:]))
    replace_inference_set(path, "ES", chosen)
    text = path.read_text()
    after = FeatureSetsFile.model_validate(yaml.safe_load(text))
    assert after.markets["ES"]["inference"] == chosen
    assert after.markets["ES"]["training"] == training
    assert after.markets["MNQ"] == before["markets"]["MNQ"]
    original_comments = [
        line
        for line in (REPO / "config" / "feature_sets.yaml").read_text().splitlines()
        if line.lstrip().startswith("#")
    ]
    kept = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert set(original_comments) - set(kept) <= {
        c for c in original_comments if "inference" in c and c.startswith("      ")
    }
    with pytest.raises(ConfigError, match="invalid"):
        replace_inference_set(path, "ES", ["not_a_feature"])
    assert FeatureSetsFile.model_validate(yaml.safe_load(path.read_text())).markets["ES"]["inference"] == chosen


def test_importance_csv_round_trips(market, tmp_path):
    result = select_features(market, top=3, windows=2, seed=2, cache_dir=tmp_path)
    result.importance.to_csv(tmp_path / "feature_importance.csv", index=False)
    back = pd.read_csv(tmp_path / "feature_importance.csv")
    assert back["feature"].tolist()[:3] == result.selected
