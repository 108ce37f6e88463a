"""The registry and the feature sets: every feature defined once, documented, in stable named sets; CLI."""

import re
from pathlib import Path

import pytest
from conftest import run_mia

from mia_strategies.errors import ConfigError
from mia_strategies.features.registry import FAMILY_ORDER
from mia_strategies.features.registry import INPUT_KINDS
from mia_strategies.features.registry import fingerprint
from mia_strategies.features.registry import registry
from mia_strategies.features.sets import load_feature_sets


REPO = Path(__file__).resolve().parents[1]

#: Names other components rely on (the strategy, risk actor and regime weighting); renaming one breaks them.
CONTRACT = [
    "atr_14", "atr_dynamic", "rsi_14", "adx_14", "rv_30", "ret_15", "efficiency_ratio_30", "vwap_dist_session",
    "orderflow_imbalance", "ofi_score", "bid_ask_imbalance", "trade_aggressiveness", "trade_velocity",
    "volume_anomaly", "spoofing_score", "hft_activity_score", "spread_mean", "vix_level", "vix_es_correlation",
    "es_spy_basis_bps", "es_spy_corr_60", "call_iv_atm", "put_iv_atm", "option_skew", "gex", "zero_gamma",
    "call_wall", "put_wall", "max_pain_strike", "key_strikes_1", "key_strikes_2", "key_strikes_3",
    "key_strikes_4", "key_strikes_5", "net_gamma", "news_sentiment_score", "news_impact_score",
    "event_volatility_impact", "event_frequency_24h", "minutes_to_next_high_impact", "minutes_since_session_open",
    "is_rth", "day_of_week", "roll_proximity_days", "mm_score", "hft_score", "breakout_score",
]  # fmt: skip


def test_registry_defines_each_feature_once_with_metadata():
    reg = registry()
    names = reg.names
    assert 340 <= len(names) <= 400
    assert len(set(names)) == len(names)
    assert tuple(reg.family_slices) == FAMILY_ORDER
    for spec in reg.specs:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name), spec.name
        assert spec.inputs and set(spec.inputs) <= set(INPUT_KINDS)
        assert spec.warmup >= 1 and len(spec.description) > 10
    assert set(CONTRACT) <= set(names)


def test_every_feature_and_family_is_documented():
    text = (REPO / "docs" / "features.md").read_text(encoding="utf-8")
    missing = [n for n in registry().names if f"`{n}`" not in text]
    assert not missing, f"features missing from docs/features.md: {missing[:10]}"
    for family in FAMILY_ORDER:
        assert f"## {family}" in text.lower(), f"no section for family {family}"


def test_feature_sets_are_valid_ordered_and_sized():
    sets = load_feature_sets(REPO / "config" / "feature_sets.yaml")
    for root in ("ES", "MNQ"):
        training = sets.resolve(f"{root}.training")
        inference = sets.resolve(f"{root}.inference")
        assert training.names == registry().names  # the whole registry, in registry order
        assert 140 <= len(inference.names) <= 160
        assert set(inference.names) <= set(training.names)
        assert set(CONTRACT) - {"key_strikes_4", "key_strikes_5"} <= set(inference.names) | {
            "ofi_score", "trade_aggressiveness", "spread_mean", "put_wall", "zero_gamma", "max_pain_strike",
            "es_spy_corr_60", "net_gamma", "event_frequency_24h", "efficiency_ratio_30",
        }  # fmt: skip
        weighted = sets.resolve(f"{root}.regime_weighted").names
        assert {"breakout_score", "mm_score", "hft_score", "regime_p_trend"} <= set(weighted)
    assert fingerprint(sets.resolve("ES.inference").names) == sets.resolve("ES.inference").fingerprint
    with pytest.raises(ConfigError, match=r"unknown feature set 'ES\.nope'.*ES\.training"):
        sets.resolve("ES.nope")


def test_bad_feature_sets_file_is_one_line_error(tmp_path):
    bad = tmp_path / "feature_sets.yaml"
    bad.write_text("version: 1\nmarkets:\n  ES:\n    training: [atr_14, not_a_feature]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown feature 'not_a_feature'"):
        load_feature_sets(bad)
    dupe = tmp_path / "dupe_feature_sets.yaml"
    dupe.write_text("markets:\n  ES:\n    training: [atr_14, atr_14]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="twice"):
        load_feature_sets(dupe)


def test_config_check_knows_the_feature_and_regime_files(tmp_path):
    from research.regime import load_regime_settings

    result = run_mia("config", "check", str(REPO / "config" / "feature_sets.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    settings = load_regime_settings(REPO / "config" / "regime_detector_config.yaml")
    assert settings.model.n_states == 3 and settings.weighting.weights["trend"]["breakout_score"] > 1
    bad = tmp_path / "regime_detector_config.yaml"
    bad.write_text("model:\n  n_restarts: 0\n", encoding="utf-8")
    result = run_mia("config", "check", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "n_restarts" in result.stderr


def test_features_list_shows_a_set_in_order():
    result = run_mia("features", "list", "--set", "ES.regime_weighted")
    assert result.returncode == 0, result.stderr
    assert "breakout_score" in result.stdout and "regime_p_defensive" in result.stdout
