"""structlog set-up: readable lines on a terminal, JSON lines otherwise, optionally a file.

The daemon logs to stdout (journald and Docker's log driver collect and rotate it); the
other commands log to stderr, where their own output on stdout is not mixed with logs.
Everything goes through the stdlib ``logging`` module, so libraries' warnings come out in
the same format, and the optional log file gets JSON lines whatever the console shows.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "console", "json"]
LOGGER_NAME = "hedgebot"
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_BACKUPS = 5
HANDLER_PREFIX = "hedgebot:"


class _CurrentStreamHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` / ``sys.stderr`` is at the time of each record.

    Test runners and typer's CliRunner swap those streams; a handler that kept the one it
    was created with would write to a closed file.
    """

    def __init__(self, use_stderr: bool) -> None:
        self._use_stderr = use_stderr
        super().__init__(self._current())

    def _current(self) -> TextIO:
        return sys.stderr if self._use_stderr else sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(self._current())
        super().emit(record)


_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def _formatter(renderer: structlog.typing.Processor) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def remove_handlers() -> None:
    """Take off (and close) the handlers an earlier configure_logging put on the root."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if (handler.get_name() or "").startswith(HANDLER_PREFIX):
            root.removeHandler(handler)
            handler.close()


def configure_logging(
    log_format: LogFormat = "auto",
    level: int = logging.INFO,
    *,
    to_stderr: bool = False,
    log_file: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
) -> None:
    """Route structlog and stdlib logging to stdout (or stderr) and, if given, a file.

    ``auto`` renders for a person on a terminal and JSON lines otherwise (systemd,
    Docker, pipes). The file, when set, always holds JSON lines and rotates at
    ``max_bytes`` keeping ``backups`` old files.
    """
    stream = sys.stderr if to_stderr else sys.stdout
    tty = stream.isatty()
    use_json = log_format == "json" or (log_format == "auto" and not tty)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=tty)
    )
    console: logging.Handler = _CurrentStreamHandler(to_stderr)
    console.setFormatter(_formatter(renderer))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        rotating.setFormatter(_formatter(structlog.processors.JSONRenderer()))
        handlers.append(rotating)

    remove_handlers()
    root = logging.getLogger()
    for handler in handlers:
        handler.set_name(HANDLER_PREFIX + handler.__class__.__name__)
        root.addHandler(handler)
    # Libraries speak at WARNING and above; hedgebot's own events at ``level``.
    root.setLevel(logging.WARNING)
    logging.getLogger(LOGGER_NAME).setLevel(level)

    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Every structlog logger is the one stdlib logger "hedgebot", whose level is ours.
        logger_factory=lambda *_args: logging.getLogger(LOGGER_NAME),
        cache_logger_on_first_use=False,
    )
