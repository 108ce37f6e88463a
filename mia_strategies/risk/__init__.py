"""Risk management for MIA: sizing, exit geometry, CVaR, kill switches, adaptive reward.

Pure functions and small state objects live here (``sizing``, ``exits``, ``cvar``, ``limits``,
``market``, ``reward``) so the risk actor (``mia_strategies.actors.risk``), the MIA strategy, the
research environment and the CLI compute the same numbers; ``config`` holds the models of
``config/risk.yaml`` and ``config/router_config.yaml``. See ``docs/risk.md``.
"""
