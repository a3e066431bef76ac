"""The ``hedgebot`` command line: one module per command group, rendering in
:mod:`bot.cli.render`, what they share in :mod:`bot.cli.common`. The daemon itself is
built by the service layer (:mod:`bot.service.wiring`).

A command's module is imported when that command runs (or when ``--help`` lists them
all), so ``hedgebot status`` loads the store and the table renderer, not the daemon, the
exchange code, the backtest or the logging setup of the other commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    # Typer's own copy of click (typer >= 0.2x; click itself before).
    from typer._click import Command, Context

# In the order `hedgebot --help` lists them: name -> (module, attribute), a function for a
# command, a Typer for a command group.
COMMANDS: dict[str, tuple[str, str]] = {
    "check-config": ("bot.cli.run", "check_config"),
    "run": ("bot.cli.run", "run"),
    "plan": ("bot.cli.run", "plan"),
    "status": ("bot.cli.status", "status"),
    "set-target": ("bot.cli.controls", "set_target"),
    "report": ("bot.cli.status", "report"),
    "dashboard": ("bot.cli.dashboard", "dashboard"),
    "pause": ("bot.cli.controls", "pause"),
    "resume": ("bot.cli.controls", "resume"),
    "backtest": ("bot.cli.backtest", "backtest"),
    "db": ("bot.cli.db", "db_app"),
    "audit": ("bot.cli.audit", "audit_app"),
}


def load_command(name: str) -> Command:
    """The click command ``name`` of :data:`COMMANDS`, its module imported now."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command: Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyCommands(MutableMapping[str, "Command"]):
    """The commands of the group by name; each built (its module imported) on first use."""

    def __init__(self, eager: MutableMapping[str, Command]) -> None:
        self._loaded = dict(eager)
        self._names = [*COMMANDS, *(n for n in eager if n not in COMMANDS)]

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class LazyGroup(TyperGroup):
    """Typer's group over :class:`LazyCommands`: listing names imports nothing."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    name="hedgebot",
    help="Keeps spot holdings hedged with perpetual futures.",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help labels every flag "<bool>".
    rich_markup_mode=None,
)


@app.callback()
def _commands() -> None:
    """Keeps spot holdings hedged with perpetual futures."""


__all__ = ["COMMANDS", "app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
