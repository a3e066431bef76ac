"""The ``hedgebot`` command line: one module per command group, rendering in
:mod:`bot.cli.render`, what they share in :mod:`bot.cli.common`. The daemon itself is
built by the service layer (:mod:`bot.service.wiring`)."""

from __future__ import annotations

import typer

from bot.cli import audit, backtest, controls, db, run, status

app = typer.Typer(
    name="hedgebot",
    help="Keeps spot holdings hedged with perpetual futures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help labels every flag "<bool>".
    rich_markup_mode=None,
)
# In the order `hedgebot --help` lists them.
app.command("check-config")(run.check_config)
app.command()(run.run)
app.command()(run.plan)
app.command()(status.status)
app.command("set-target")(controls.set_target)
app.command()(status.report)
app.command()(__import__("bot.cli.dashboard", fromlist=["dashboard"]).dashboard)
app.command()(controls.pause)
app.command()(controls.resume)
app.command()(backtest.backtest)
app.add_typer(db.db_app, name="db")
app.add_typer(audit.audit_app, name="audit")

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
