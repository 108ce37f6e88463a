"""Online learning (method 10): a policy keeps learning from recent bars in paper and live trading.

The ``OnlineLearner`` sits beside a policy's runner. On the event loop it only appends the bar it
was shown to a bounded buffer (``record``) and checks, without waiting, whether an update finished
(``poll``). Every ``update_every_bars`` bars it hands a copy of the model and the last
``experience_bars`` bars to a background worker (a separate process by default; a thread for
tests), which

1. scores the live policy on the most recent ``validation_bars`` bars (held out, later than the
   training bars),
2. trains a candidate for ``timesteps`` steps on the earlier bars,
3. caps the update: when the policy parameters moved by more than ``max_step`` (relative L2 norm)
   the change is scaled back to exactly ``max_step``,
4. scores the candidate on the held-out bars and accepts it only if it did at least as well as the
   live policy minus ``rollback_tolerance``.

An accepted candidate replaces the live policy on the next ``poll``; the replaced one is kept, and
both are scored on the next ``live_check_bars`` live bars (each paid its own target times the
close-to-close move). If the new policy did worse, it is rolled back. Every step is recorded in
``events``.
"""

import io
import math
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import Executor
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from mia_strategies import sessions
from mia_strategies.config import MarketsConfig
from mia_strategies.providers.ensemble import member_reward
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.policy import LoadedPolicy
from mia_strategies.providers.policy import PolicyRunner
from research.env import MarketData
from research.rl.config import ModelParamsConfig
from research.rl.config import OnlineSettings
from research.rl.config import TradingEnvConfig


@dataclass(frozen=True)
class UpdateJob:
    """What the worker needs: the model, its spec, the experience and the guards."""

    algo: str
    model_zip: bytes
    spec: ObservationSpec
    experience: MarketData
    env_config: TradingEnvConfig
    markets: MarketsConfig
    settings: OnlineSettings
    learning_rate: float
    seed: int


@dataclass(frozen=True)
class UpdateResult:
    """The worker's verdict on one update."""

    accepted: bool
    live_reward: float
    candidate_reward: float
    step: float
    capped: bool
    network: PolicyNetwork | None
    model_zip: bytes | None
    worker_pid: int
    seconds: float


def _flat_params(state: dict[str, Any]) -> np.ndarray:
    return np.concatenate([v.detach().cpu().numpy().ravel() for v in state.values() if v.dtype.is_floating_point])


def cap_update(before: dict[str, Any], after: dict[str, Any], max_step: float) -> tuple[dict[str, Any], float, bool]:
    """Scale ``after - before`` so its L2 norm is at most ``max_step`` x ``||before||``.

    Returns the (possibly scaled) parameters, the relative step actually taken and whether it was capped.
    """
    old = _flat_params(before)
    new = _flat_params(after)
    base = float(np.linalg.norm(old)) or 1.0
    step = float(np.linalg.norm(new - old)) / base
    if step <= max_step:
        return after, step, False
    scale = max_step / step
    capped = {}
    for key, value in after.items():
        if value.dtype.is_floating_point:
            capped[key] = before[key] + (value - before[key]) * scale
        else:
            capped[key] = value
    return capped, max_step, True


def online_update(job: UpdateJob) -> UpdateResult:
    """Train, cap, validate one candidate (runs in the background worker)."""
    import torch as th
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from research.env import TradingEnv
    from research.rl.algos import ALGO_CLASSES
    from research.rl.algos import set_learning_rate
    from research.rl.evaluate import evaluate_network
    from research.rl.export import export_policy
    from research.rl.train import costs_for

    started = time.perf_counter()
    th.set_num_threads(1)
    data = job.experience
    split = len(data) - job.settings.validation_bars
    train, validation = data.take(slice(0, split)), data.take(slice(split, len(data)))
    costs = costs_for(data.root, job.markets, job.env_config)
    model = ALGO_CLASSES[job.algo].load(io.BytesIO(job.model_zip), device="cpu")
    live = export_policy(model)
    live_summary, _ = evaluate_network(live, job.spec, validation, costs, job.env_config)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    env = DummyVecEnv([lambda: Monitor(TradingEnv(train, job.spec, costs, job.env_config))])
    model.set_env(env)
    model.set_random_seed(job.seed)
    set_learning_rate(model, job.learning_rate)
    model.learn(total_timesteps=job.settings.timesteps, reset_num_timesteps=False)
    capped_state, step, capped = cap_update(before, model.policy.state_dict(), job.settings.max_step)
    model.policy.load_state_dict(capped_state)
    candidate = export_policy(model)
    candidate_summary, _ = evaluate_network(candidate, job.spec, validation, costs, job.env_config)
    accepted = candidate_summary.total_reward >= live_summary.total_reward - job.settings.rollback_tolerance
    buffer = io.BytesIO()
    if accepted:
        model.save(buffer)
    return UpdateResult(
        accepted=accepted,
        live_reward=live_summary.total_reward,
        candidate_reward=candidate_summary.total_reward,
        step=step,
        capped=capped,
        network=candidate if accepted else None,
        model_zip=buffer.getvalue() if accepted else None,
        worker_pid=os.getpid(),
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Bar:
    ts_ns: int
    contract: str
    close: float
    bid: float
    ask: float
    features: np.ndarray
    regimes: np.ndarray


@dataclass
class _LiveCheck:
    """Scores of the new and the replaced policy on live bars after a swap."""

    previous: LoadedPolicy
    previous_zip: bytes
    previous_runner: PolicyRunner
    new_reward: float = 0.0
    old_reward: float = 0.0
    bars: int = 0
    last: tuple[int, int, float, str, object] | None = None  # (new target, old target, close, contract, day)


@dataclass
class OnlineEvent:
    """One thing the learner did, for logs and tests."""

    ts_ns: int
    kind: str  # submitted, accepted, rejected, swapped, rolled_back, kept
    detail: dict[str, Any] = field(default_factory=dict)


class OnlineLearner:
    """Online updates of one policy on one root, trained off the event loop (see the module docstring).

    Parameters
    ----------
    runner : PolicyRunner
        The live runner; its ``policy`` is replaced on accepted updates and rollbacks.
    model_zip : bytes
        The stable-baselines3 model the runner's policy was exported from.
    algo : str
        Its algorithm.
    env_config, markets, params, settings
        Environment, market specs, hyperparameters (the learning rate) and the online guards.
    executor : str, default "process"
        ``process`` (a spawned worker process) or ``thread``.
    seed : int, default 0
        Seed of every update.
    """

    def __init__(
        self,
        runner: PolicyRunner,
        model_zip: bytes,
        algo: str,
        env_config: TradingEnvConfig,
        markets: MarketsConfig,
        params: ModelParamsConfig,
        settings: OnlineSettings,
        executor: str = "process",
        seed: int = 0,
    ) -> None:
        self.runner = runner
        self.model_zip = model_zip
        self.algo = algo
        self.env_config = env_config
        self.markets = markets
        self.learning_rate = params.params(algo).learning_rate
        self.settings = settings
        self.seed = seed
        self.events: list[OnlineEvent] = []
        self._bars: deque[_Bar] = deque(maxlen=settings.experience_bars)
        self._since_update = 0
        self._future: Future[UpdateResult] | None = None
        self._check: _LiveCheck | None = None
        self._executor_kind = executor
        self._executor: Executor | None = None
        tick = float(markets.root(runner.policy.market).tick_size) if runner.policy.market in markets.roots else 0.25
        self._half_tick = tick / 2.0

    # -- on the event loop (cheap) ---------------------------------------------------------------

    def record(
        self,
        ts_ns: int,
        contract: str,
        close: float,
        features: Any,
        regimes: Any,
        bid: float | None = None,
        ask: float | None = None,
    ) -> None:
        """Remember one bar (features by name or as a named row) and count toward the next update."""
        policy = self.runner.policy
        vector = policy.feature_vector(features)
        regime = policy.regime_vector(regimes)
        self._bars.append(
            _Bar(
                ts_ns,
                contract,
                close,
                close - self._half_tick if bid is None else bid,
                close + self._half_tick if ask is None else ask,
                np.asarray(vector, dtype=np.float64),
                regime,
            ),
        )
        self._since_update += 1
        self._live_check(ts_ns, contract, close, features, regimes)
        if self._since_update >= self.settings.update_every_bars and self._future is None and self.ready:
            self._submit(ts_ns)

    @property
    def ready(self) -> bool:
        """Enough experience for an update (training bars beyond the held-out ones)."""
        return len(self._bars) > self.settings.validation_bars + 2

    @property
    def busy(self) -> bool:
        """An update is running in the worker."""
        return self._future is not None and not self._future.done()

    def poll(self, ts_ns: int = 0) -> UpdateResult | None:
        """Take a finished update if there is one (never waits); swap the policy when it was accepted."""
        future = self._future
        if future is None or not future.done():
            return None
        self._future = None
        result = future.result()
        kind = "accepted" if result.accepted else "rejected"
        self.events.append(
            OnlineEvent(
                ts_ns,
                kind,
                {
                    "live_reward": result.live_reward,
                    "candidate_reward": result.candidate_reward,
                    "step": result.step,
                    "capped": result.capped,
                    "seconds": result.seconds,
                },
            ),
        )
        if result.accepted and result.network is not None and result.model_zip is not None:
            self.adopt(result.network, result.model_zip, ts_ns)
        return result

    def adopt(self, network: PolicyNetwork, model_zip: bytes, ts_ns: int = 0) -> None:
        """Make an accepted update the live policy; keep the replaced one for the live check."""
        previous = self.runner.policy
        old_runner = PolicyRunner(previous)
        old_runner.tracker.position = self.runner.tracker.position
        self.runner.policy = LoadedPolicy(network, previous.spec, {**previous.manifest, "online": True})
        self._check = _LiveCheck(previous, self.model_zip, old_runner)
        self.model_zip = model_zip
        self.events.append(OnlineEvent(ts_ns, "swapped", {}))

    def wait(self, timeout: float) -> UpdateResult | None:
        """Block until the running update finishes (tests and shutdown only, never on the event loop)."""
        if self._future is None:
            return None
        self._future.result(timeout=timeout)
        return self.poll()

    def close(self) -> None:
        """Stop the worker (a running update is abandoned)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- internals ---------------------------------------------------------------------------------

    def _submit(self, ts_ns: int) -> None:
        self._since_update = 0
        job = UpdateJob(
            algo=self.algo,
            model_zip=self.model_zip,
            spec=self.runner.policy.spec,
            experience=self._experience(),
            env_config=self.env_config,
            markets=self.markets,
            settings=self.settings,
            learning_rate=self.learning_rate,
            seed=self.seed,
        )
        if self._executor is None:
            if self._executor_kind == "thread":
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mia-online")
            else:
                self._executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._future = self._executor.submit(online_update, job)
        self.events.append(OnlineEvent(ts_ns, "submitted", {"bars": len(job.experience)}))

    def _experience(self) -> MarketData:
        bars = list(self._bars)
        policy = self.runner.policy
        return MarketData(
            root=policy.market,
            ts_ns=np.array([b.ts_ns for b in bars], dtype=np.int64),
            contract=np.array([b.contract for b in bars]),
            close=np.array([b.close for b in bars]),
            bid=np.array([b.bid for b in bars]),
            ask=np.array([b.ask for b in bars]),
            features=np.stack([b.features for b in bars]),
            feature_names=policy.spec.feature_names,
            regime_probs=np.stack([b.regimes for b in bars]) if policy.spec.regime_labels else np.zeros((len(bars), 0)),
            regime_labels=policy.spec.regime_labels,
        )

    def _live_check(self, ts_ns: int, contract: str, close: float, features: Any, regimes: Any) -> None:
        """Score the new policy against the one it replaced on live bars; roll back if it did worse."""
        check = self._check
        if check is None:
            return
        day = sessions.trading_day(ts_ns)
        max_position = self.runner.policy.spec.max_position
        if check.last is not None:
            new_t, old_t, last_close, last_contract, last_day = check.last
            if contract == last_contract and day == last_day and math.isfinite(close):
                change = close - last_close
                check.new_reward += member_reward(new_t, change, max_position)
                check.old_reward += member_reward(old_t, change, max_position)
                check.bars += 1
        new_target = self.runner.step(ts_ns, features, regimes).target
        old_target = check.previous_runner.step(ts_ns, features, regimes).target
        check.last = (new_target, old_target, close, contract, day)
        if check.bars < self.settings.live_check_bars:
            return
        detail = {"new_reward": check.new_reward, "old_reward": check.old_reward, "bars": check.bars}
        if check.new_reward < check.old_reward - self.settings.rollback_tolerance:
            self.runner.policy = check.previous
            self.model_zip = check.previous_zip
            self.events.append(OnlineEvent(ts_ns, "rolled_back", detail))
        else:
            self.events.append(OnlineEvent(ts_ns, "kept", detail))
        self._check = None
