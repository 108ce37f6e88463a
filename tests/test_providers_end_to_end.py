"""End to end on a demo catalog: `mia train` for all five algorithms, `mia ensemble build`, `mia features
select`, and the providers' actions in a nautilus backtest equal the policies' actions in the environment."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from conftest import run_mia
from nautilus_trader.config import BacktestDataConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from typer.testing import CliRunner

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.cli import app
from mia_strategies.config import BacktestConfig
from mia_strategies.errors import ConfigError
from mia_strategies.features.sets import load_feature_sets
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.signal import RlEnsembleParams
from mia_strategies.providers.signal import RlEnsembleProvider
from mia_strategies.providers.signal import RlPolicyParams
from mia_strategies.providers.signal import RlPolicyProvider
from mia_strategies.providers.signal import version_path
from mia_strategies.risk.config import RouterConfig
from mia_strategies.risk.journal import TRADE_SNAPSHOTS
from mia_strategies.risk.journal import read_journal
from mia_strategies.signals import SignalContext
from mia_strategies.signals import build_providers
from mia_strategies.signals import prepare_providers
from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig
from research.env import TradingEnv
from research.env import run_policy
from research.rl.config import load_env_config
from research.rl.evaluate import network_policy
from research.rl.train import costs_for


ALGOS = ("sac", "ppo", "ddpg", "qrdqn", "ppo_lagrangian")
FEATURE_CLIENT = "MIA-FEATURES"


# -- a strategy that asks a provider once per bar and holds its target ---------------------------------


class ProviderParityConfig(MiaStrategyConfig, frozen=True):
    """Which registered provider to run (``kind`` rl_policy or rl_ensemble)."""

    registry: str = "models"
    kind: str = "rl_policy"
    algo: str = "sac"


class ProviderParity(MiaStrategy):
    """Decides on every bar once that bar's feature vector is in, and trades to the provider's target."""

    def __init__(self, config: ProviderParityConfig) -> None:
        super().__init__(config)
        registry = Path(config.registry)
        if config.kind == "rl_ensemble":
            self.provider = RlEnsembleProvider("ens", RlEnsembleParams(registry=registry))
        else:
            self.provider = RlPolicyProvider("rl", RlPolicyParams(registry=registry, algo=config.algo))
        self.names: dict[str, tuple[str, ...]] = {}
        self.vectors: dict[str, FeatureVector] = {}
        self.regimes: dict[str, RegimeState] = {}
        self.bars: dict[str, tuple[str, Bar]] = {}
        self.closes: dict[str, list[float]] = {}
        self.decisions: list[tuple[int, int]] = []

    def on_mia_start(self) -> None:
        from nautilus_trader.model.data import DataType

        self.subscribe_data(DataType(FeatureVector), client_id=None)
        self.subscribe_data(DataType(RegimeState), client_id=None)

    def on_data(self, data) -> None:
        if isinstance(data, FeatureVector):
            key = data.instrument_id.value
            self.vectors[key] = data
            self._maybe_decide(key)
        elif isinstance(data, RegimeState):
            self.regimes[data.instrument_id.value] = data

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        key = bar.bar_type.instrument_id.value
        self.closes.setdefault(key, []).append(bar.close.as_double())
        self.bars[key] = (root, bar)
        self._maybe_decide(key)

    def _maybe_decide(self, key: str) -> None:
        pending = self.bars.get(key)
        vector = self.vectors.get(key)
        if pending is None or vector is None or vector.ts_event != pending[1].ts_event:
            return  # the bar and its feature vector arrive in either order: decide when both are in
        root, bar = self.bars.pop(key)
        names = self.names.get(vector.feature_set)
        if names is None:
            names = self.names[vector.feature_set] = load_feature_sets().resolve(vector.feature_set).names
        context = SignalContext(
            root=root,
            instrument_id=key,
            ts_ns=bar.ts_event,
            close=np.asarray(self.closes[key][-5:]),
            high=np.asarray(self.closes[key][-5:]),
            low=np.asarray(self.closes[key][-5:]),
            atr=1.0,
            regime="",
            regime_probabilities={},
            features=dict(zip(names, vector.values.tolist(), strict=True)),
        )
        decision = self.provider.decide(context)
        self.decisions.append((bar.ts_event, decision.target))
        self._trade_to(bar.bar_type.instrument_id, decision.target if self.can_enter(bar.ts_event) else 0)

    def _trade_to(self, instrument_id: InstrumentId, target: int) -> None:
        net = 0.0
        for position in self.cache.positions_open(instrument_id=instrument_id, strategy_id=self.id):
            net += position.signed_qty
        delta = int(target - net)
        if delta == 0 or self.cache.orders_inflight_count(instrument_id=instrument_id) > 0:
            return
        instrument = self.instrument(instrument_id)
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        self.submit_order(self.order_factory.market(instrument_id, side, instrument.make_qty(abs(delta))))


PARITY_IMPL = ("test_providers_end_to_end:ProviderParity", "test_providers_end_to_end:ProviderParityConfig")


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, markets):
    """A demo catalog with its offline feature build, a tiny-training config folder, a registry."""
    from catalog.demo import generate_demo_catalog

    root = tmp_path_factory.mktemp("e2e")
    catalog = root / "catalog"
    generate_demo_catalog(catalog, markets, trading_days=3, intensity=0.08, seed=17)
    config = root / "config"
    shutil.copytree(REPO / "config", config)
    algo = yaml.safe_load((config / "algo_config.yaml").read_text())
    algo["registry"] = str(root / "models")
    algo["algorithms"] = {a: {**algo["algorithms"][a], "total_timesteps": 300} for a in ALGOS}
    (config / "algo_config.yaml").write_text(yaml.safe_dump(algo))
    tiny_off = {"net_arch": [16, 16], "learning_starts": 100, "batch_size": 32, "buffer_size": 1000}
    tiny_on = {"net_arch": [16, 16], "n_steps": 128, "batch_size": 32, "n_epochs": 2}
    params = {
        "sac": {"default": tiny_off},
        "ddpg": {"default": tiny_off},
        "qrdqn": {"default": {**tiny_off, "target_update_interval": 100}},
        "ppo": {"default": tiny_on},
        "ppo_lagrangian": {"default": tiny_on},
    }
    (config / "model_params.yaml").write_text(yaml.safe_dump(params))
    env = {"MIA_CONFIG_DIR": str(config)}
    built = run_mia(
        "features",
        "build",
        "--catalog",
        str(catalog),
        "--instruments",
        "ES",
        "--out",
        str(root / "features.parquet"),
        env=env,
    )
    assert built.returncode == 0, built.stderr
    return {"root": root, "catalog": catalog, "config": config, "env": env, "models": root / "models"}


@pytest.fixture(scope="module")
def trained(workspace):
    """`mia train ALGO` for the five algorithms (in-process CLI, tiny configs)."""
    runner = CliRunner()
    outputs = {}
    for algo in ALGOS:
        result = runner.invoke(
            app,
            ["train", algo, "--market", "ES", "--catalog", str(workspace["catalog"])],
            env=workspace["env"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        outputs[algo] = result.output
    return outputs


# -- the CLI --------------------------------------------------------------------------------------------


def test_mia_train_works_for_all_five_algorithms_on_the_demo_catalog(workspace, trained):
    for algo in ALGOS:
        assert f"registered ES/{algo}/v0001" in trained[algo].replace("\n", "")
        folder = workspace["models"] / "ES" / algo / "v0001"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["feature_set"]["name"] == "ES.inference"
        assert len(manifest["feature_set"]["names"]) == len(
            load_feature_sets(workspace["config"] / "feature_sets.yaml").resolve("ES.inference").names
        )
        assert manifest["data"]["train"]["end"] < manifest["data"]["eval"]["start"]
        assert manifest["data"]["catalog"] == str(workspace["catalog"].resolve())
        metrics = pd.read_csv(folder / f"train_{algo}_performance.csv")
        assert {"loss", "reward", "cvar_loss", "quantile_50"} <= set(metrics.columns) and len(metrics) >= 1
    assert (
        json.loads((workspace["models"] / "ES" / "qrdqn" / "v0001" / "manifest.json").read_text())["action_space"]
        == "discrete"
    )
    listing = CliRunner().invoke(app, ["models", "ls"], env=workspace["env"])
    assert listing.exit_code == 0 and "ES/ppo_lagrangian/v0001" in listing.output


def test_mia_train_errors_are_one_line(workspace):
    from mia_strategies.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown algorithm 'a2c'"):
        CliRunner().invoke(
            app, ["train", "a2c", "--catalog", str(workspace["catalog"])], env=workspace["env"], catch_exceptions=False
        )
    # NQ is a known root but the catalog holds no NQ features: one line on stderr, exit code 2
    result = run_mia("train", "ppo", "--catalog", str(workspace["catalog"]), "--market", "NQ", env=workspace["env"])
    assert result.returncode == 2 and "NQ" in result.stderr and result.stderr.strip().count("\n") == 0


@pytest.fixture(scope="module")
def ensemble_built(workspace, trained):
    """`mia ensemble build` over the trained SAC, PPO and DDPG: the CLI output."""
    built = CliRunner().invoke(
        app, ["ensemble", "build", "--market", "ES", "--catalog", str(workspace["catalog"])], env=workspace["env"]
    )
    assert built.exit_code == 0, built.output
    return built.output


def test_mia_ensemble_build_registers_members_and_logs_weights(workspace, ensemble_built):
    runner = CliRunner()
    assert "ensemble_weights" in ensemble_built
    assert "registered ES/ensemble/v0001" in ensemble_built.replace("\n", "")
    manifest = json.loads((workspace["models"] / "ES" / "ensemble" / "v0001" / "manifest.json").read_text())
    assert [m["algo"] for m in manifest["members"]] == ["sac", "ppo", "ddpg"]
    assert manifest["prior_weights"] == [0.4, 0.3, 0.3] and set(manifest["posterior_weights"]) == {"sac", "ppo", "ddpg"}
    out = workspace["root"] / "ens_eval"
    evaluated = runner.invoke(
        app,
        ["ensemble", "eval", "--market", "ES", "--catalog", str(workspace["catalog"]), "--out", str(out)],
        env=workspace["env"],
    )
    assert evaluated.exit_code == 0, evaluated.output
    weights = pd.read_csv(out / "ensemble_weights.csv")
    assert {"weight_sac", "weight_ppo", "weight_ddpg"} <= set(weights.columns) and len(weights) > 100


def test_mia_features_select_writes_the_inference_set(workspace, trained):
    sets_path = workspace["config"] / "feature_sets.yaml"
    before = yaml.safe_load(sets_path.read_text())
    out = workspace["root"] / "select"
    result = CliRunner().invoke(
        app,
        [
            "features",
            "select",
            "--markets",
            "ES",
            "--catalog",
            str(workspace["catalog"]),
            "--windows",
            "2",
            "--top",
            "150",
            "--out",
            str(out),
        ],
        env=workspace["env"],
    )
    assert result.exit_code == 0, result.output
    after = yaml.safe_load(sets_path.read_text())
    importance = pd.read_csv(out / "feature_importance.csv")
    chosen = importance[importance["selected"]].sort_values("rank")["feature"].tolist()
    assert after["markets"]["ES"]["inference"] == chosen and len(chosen) == 150
    assert set(chosen) <= set(before["markets"]["ES"]["training"])
    assert after["markets"]["MNQ"] == before["markets"]["MNQ"]
    assert set(importance["method"]) == {"shap"} and "mean_jaccard" in result.output
    assert (workspace["models"] / "ES" / "feature_importance_ES.csv").is_file()  # the fallback cache


# -- parity: provider in a nautilus backtest == policy in the environment -----------------------------


def _backtest_decisions(workspace, kind: str, algo: str = "sac", registry: Path | None = None) -> list[tuple[int, int]]:
    catalog = workspace["catalog"]
    config = BacktestConfig(instruments=["ES"])
    out = workspace["root"] / f"bt_{kind}_{algo}_{len(list(workspace['root'].glob('bt_*')))}"
    plan = plan_backtest(config, workspace["config"], catalog=catalog, out=out)
    features = BacktestDataConfig(
        catalog_path=str(catalog),
        data_cls=FeatureVector,
        client_id=FEATURE_CLIENT,
        start_time=plan.start_ns,
        end_time=plan.end_ns,
    )
    plan = dataclasses.replace(
        plan,
        data=[features, *plan.data],
        strategy_impl=PARITY_IMPL,
        strategy_extra={"registry": str(registry or workspace["models"]), "kind": kind, "algo": algo},
    )
    outcome = run_backtest(plan)
    return outcome.strategy.decisions


def _environment_targets(workspace, markets, policy_folder: Path) -> dict[int, int]:
    from mia_strategies.providers.policy import LoadedPolicy
    from research.rl.data import load_market_data

    policy = LoadedPolicy.load(policy_folder)
    data = load_market_data(workspace["catalog"], "ES", markets, feature_names=policy.spec.feature_names)
    env_config = load_env_config(workspace["config"] / "trading_env_config.yaml")
    env = TradingEnv(data, policy.spec, costs_for("ES", markets, env_config), env_config, sequential=True)
    run = run_policy(env, network_policy(policy.network))
    return {r.ts_ns: r.target for r in run.records}


@pytest.fixture(scope="module")
def active_registry(workspace, markets):
    """Policies that trade a lot (random weights) in the registry format, plus their ensemble."""
    from mia_strategies.providers.config import TradeProbabilityConfig
    from mia_strategies.providers.network import DenseLayer
    from mia_strategies.providers.observation import ObservationSpec
    from research.rl.data import load_market_data
    from research.rl.ensemble import build_ensemble
    from research.rl.registry import ModelRegistry

    names = load_feature_sets(workspace["config"] / "feature_sets.yaml").resolve("ES.inference").names
    data = load_market_data(workspace["catalog"], "ES", markets, feature_names=names)
    registry = ModelRegistry(workspace["root"] / "active_models")
    rng = np.random.default_rng(5)
    for algo, kind in (("sac", "squashed"), ("ppo", "gaussian"), ("ddpg", "deterministic")):
        spec = ObservationSpec.fit(data.features, data.feature_names, data.regime_labels, max_position=1)
        hidden = DenseLayer(rng.normal(size=(spec.size, 8)).astype(np.float32), np.zeros(8, np.float32), "tanh")
        head = DenseLayer(rng.normal(size=(8, 1)).astype(np.float32) * 2, np.zeros(1, np.float32), "identity")
        network = PolicyNetwork(kind, [hidden, head], 1)
        manifest = {"observation": spec.to_dict(), "data": {"train": {"end": "2025-12-01T00:00:00+00:00"}}}
        registry.register("ES", algo, manifest, lambda folder, net=network: net.save(folder / "policy.npz"))
    build_ensemble(registry, "ES", TradeProbabilityConfig(), data.take(slice(0, 400)))
    return registry.root


def test_policy_provider_in_a_backtest_acts_as_the_policy_in_the_environment(
    workspace, trained, active_registry, markets
):
    for registry, algo in ((workspace["models"], "sac"), (active_registry, "sac"), (active_registry, "ppo")):
        decisions = _backtest_decisions(workspace, "rl_policy", algo, registry)
        expected = _environment_targets(workspace, markets, version_path(registry, "ES", algo, None))
        common = [(ts, target) for ts, target in decisions if ts in expected]
        assert len(common) >= 0.95 * len(expected), (len(common), len(expected))
        mismatches = [(ts, got, expected[ts]) for ts, got in common if got != expected[ts]]
        assert not mismatches, mismatches[:5]
        if registry == active_registry:  # parity is not "always flat": these policies trade
            assert sum(1 for _, t in common if t != 0) >= 0.2 * len(common)


def test_ensemble_provider_drives_a_backtest_with_the_environment_actions(workspace, active_registry, markets):
    from mia_strategies.providers.policy import EnsembleModel
    from research.rl.data import load_market_data
    from research.rl.ensemble import run_ensemble

    decisions = _backtest_decisions(workspace, "rl_ensemble", registry=active_registry)
    model = EnsembleModel.load(version_path(active_registry, "ES", "ensemble", None))
    names = tuple(dict.fromkeys(n for m in model.members for n in m.spec.feature_names))
    data = load_market_data(workspace["catalog"], "ES", markets, feature_names=names)
    env_config = load_env_config(workspace["config"] / "trading_env_config.yaml")
    _, run, weights = run_ensemble(model, data, costs_for("ES", markets, env_config), env_config)
    expected = {r.ts_ns: r.target for r in run.records}
    common = [(ts, target) for ts, target in decisions if ts in expected]
    assert len(common) >= 0.95 * len(expected)
    assert [t for _, t in common] == [expected[ts] for ts, _ in common]
    assert sum(1 for _, t in common if t != 0) >= 0.05 * len(common)
    assert len(weights) >= len(run.records) and weights.nunique().max() > 1  # one row per bar; the posterior moved


def test_exported_policy_file_is_what_the_provider_runs(workspace, trained):
    folder = version_path(workspace["models"], "ES", "ppo", None)
    network = PolicyNetwork.load(folder / "policy.npz")
    provider = RlPolicyProvider("ppo", RlPolicyParams(registry=workspace["models"], algo="ppo"))
    assert provider.runner("ES").policy.network.kind == network.kind == "gaussian"


# -- the trained ensemble as the MIA router's provider in `mia backtest` -------------------------------


def _ensemble_router(registry: Path) -> dict:
    """Every mode asks only the ensemble (defensive too: the demo's bar-rule regimes are often unsure)."""
    mode = {"providers": ["ens"], "rth_only": False, "cooldown_bars": 0}
    return {
        "probability_threshold": 0.6,
        "providers": {"ens": {"kind": "rl_ensemble", "registry": str(registry)}},
        "modes": {"trend": mode, "range": mode, "defensive": {**mode, "size_scale": 1.0}},
    }


def test_trained_ensemble_drives_mia_backtest_as_the_router_provider(workspace, ensemble_built, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(workspace["config"], config)
    # the inference set the members were trained on (another test rewrites the workspace's with SHAP)
    shutil.copy(REPO / "config" / "feature_sets.yaml", config / "feature_sets.yaml")
    probability = yaml.safe_load((config / "trade_probability_config.yaml").read_text())
    probability["entry_threshold"] = 0.6  # two of three tiny members agreeing is enough to trade
    (config / "trade_probability_config.yaml").write_text(yaml.safe_dump(probability))
    (config / "router_config.yaml").write_text(yaml.safe_dump(_ensemble_router(workspace["models"])))
    checked = run_mia("config", "check", str(config / "router_config.yaml"), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr

    out = tmp_path / "run"
    args = ("backtest", "--catalog", str(workspace["catalog"]), "--instruments", "ES", "--out", str(out))
    result = run_mia(*args, cwd=tmp_path, env={"MIA_CONFIG_DIR": str(config)})
    assert result.returncode == 0, result.stderr[-3000:]
    entries = [s for s in read_journal(out / TRADE_SNAPSHOTS) if s["kind"] == "entry"]
    assert entries, "the ensemble never reached the entry threshold"
    trained_on = json.loads((version_path(workspace["models"], "ES", "sac", None) / "manifest.json").read_text())
    for entry in entries:
        signal = entry["decision"]["signal"]
        assert signal["provider"] == "ens" and signal["probability"] > 0.6
        assert signal["direction"] in (-1, 1)
        # the feature actor published every feature the members were trained on
        assert set(trained_on["feature_set"]["names"]) <= set(entry["decision"]["features"])
    assert json.loads((out / "summary.json").read_text())["trades"] >= 1
    # the ensemble's health went out on mia.metrics (recorded for the dashboard and the alert rules)
    metrics = [json.loads(line) for line in (out / "model_metrics.jsonl").read_text().splitlines()]
    ensemble = [m for m in metrics if m.get("source") == "ens"]
    assert ensemble and all(abs(sum(m["ensemble_weights"].values()) - 1.0) < 1e-6 for m in ensemble)
    assert set(ensemble[0]["ensemble_weights"]) == {"sac", "ppo", "ddpg"}

    # a missing model is a one-line error before the run, from the CLI as from the API
    bad = tmp_path / "bad-config"
    shutil.copytree(config, bad)
    (bad / "router_config.yaml").write_text(yaml.safe_dump(_ensemble_router(tmp_path / "no_models")))
    args = ("backtest", "--catalog", str(workspace["catalog"]), "--instruments", "ES", "--out", str(tmp_path / "r2"))
    failed = run_mia(*args, cwd=tmp_path, env={"MIA_CONFIG_DIR": str(bad)})
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and "no ensemble model for ES" in failed.stderr
    router = RouterConfig.model_validate(_ensemble_router(tmp_path / "no_models"))
    with pytest.raises(ConfigError, match=r"no ensemble model for ES .*`mia ensemble build --market ES`$"):
        prepare_providers(build_providers(router), ["ES"])
