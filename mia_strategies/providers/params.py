"""Router-config entries of the RL provider kinds (``rl_policy``, ``rl_ensemble``).

Kept apart from the provider code and free of MIA imports so ``mia_strategies.risk.config`` can put
them in ``RouterConfig``'s provider union without an import cycle (the providers import the router
config through ``mia_strategies.signals``). A relative ``registry`` is read from the working folder,
like ``registry`` in ``config/algo_config.yaml`` that ``mia train`` writes to.
"""

from pathlib import Path
from typing import Annotated
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RlPolicyParams(_Model):
    """A registered RL policy as a provider (an entry of ``router_config.yaml``'s ``providers``)."""

    kind: Literal["rl_policy"] = "rl_policy"
    registry: Path = Path("models")
    algo: Literal["sac", "ppo", "ddpg", "qrdqn", "ppo_lagrangian"] = "sac"
    version: Annotated[int, Field(ge=1)] | None = None
    regime_versions: dict[str, Annotated[int, Field(ge=1)]] = {}
    #: Paper/live only: keep learning from recent bars in a background worker (``online`` settings of
    #: ``config/algo_config.yaml``); never in a backtest, whose results must not depend on timing.
    online: bool = False


class RlEnsembleParams(_Model):
    """A registered Bayesian ensemble as a provider."""

    kind: Literal["rl_ensemble"] = "rl_ensemble"
    registry: Path = Path("models")
    version: Annotated[int, Field(ge=1)] | None = None
