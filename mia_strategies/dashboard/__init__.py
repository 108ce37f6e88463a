"""The web dashboard and the figure report of a run folder (backtest, paper or live).

``data`` reads a run folder (every file optional, each with a documented name and columns),
``figures`` builds the Plotly figures shared by the Dash app (``app``) and ``mia report``
(``report``). A running node keeps its folder current through the paper/live runner and
``mia_strategies.ops.control.OperatorControlActor`` (``live.json``, regimes, model metrics).
"""
