"""Command groups of the ``mia`` CLI that live beside their subsystem.

Each module here defines ``register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None``
and adds its commands to the app or to an existing group (``groups["ingest"]`` for ``mia ingest X``);
``mia_strategies.cli`` calls every module listed in ``COMMAND_MODULES`` that is present. Keeping a
subsystem's commands in its own module lets the IQFeed, Sierra Chart, feature and research work
grow without editing one shared file.
"""

import importlib
from collections.abc import Mapping
from typing import Protocol

import typer


#: Modules (under ``mia_strategies.commands``) whose ``register`` adds commands to ``mia``.
COMMAND_MODULES = (
    "iqfeed",
    "paper",
    "sierrachart",
    "live",
    "features",
    "regime",
    "risk",
    "research",
    "ops",
)


class _Registers(Protocol):
    def register(self, app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None: ...


def register_all(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the commands of every command module that exists."""
    for name in COMMAND_MODULES:
        try:
            module: _Registers = importlib.import_module(f"mia_strategies.commands.{name}")  # type: ignore[assignment]
        except ModuleNotFoundError as err:
            if err.name == f"mia_strategies.commands.{name}":
                continue  # that subsystem is not built yet
            raise
        module.register(app, groups)
