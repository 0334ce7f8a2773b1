"""Logging for long-running budo processes (`budo serve`): text or one JSON object per line.

``BUDO_LOG_FORMAT=json`` gives ``{"ts", "level", "logger", "message", "run_id"?, "error"?}``
per line, for log pipelines (Loki, Cloud Logging, …). ``run_id`` comes from a context variable
the run task sets, so every line logged while a run is being driven carries it — including
lines from libraries called inside that task.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import TextIO

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("budo_run_id",
                                                                        default=None)
FORMATS = ("text", "json")


class _RunIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        run_id = run_id_var.get()
        record.run_id = run_id
        record.run_suffix = f" [run {run_id}]" if run_id else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None)
        if run_id:
            entry["run_id"] = run_id
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class OneLineErrors(logging.Filter):
    """For chatty libraries that log a full traceback, or an error message spanning lines, on
    every retry (slack_sdk's Socket Mode client does, every ~5 s while it cannot connect):
    keep one line with the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} [{type(record.exc_info[1]).__name__}]"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = " ".join(message.split()), None
        return True


class _DropBoltTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and then warns, on every start,
    that the client we give it (tokenless, with an authorize function) wins. That is our
    design, not a problem: drop that one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well")


def configure(fmt: str = "text", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Install one handler on the root logger in ``fmt`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RunIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s%(run_suffix)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_DropBoltTokenWarning())
    # slack_sdk logs every retry at INFO ("A retry handler found …"); failures that matter
    # reach us as SlackError and are logged once, by us.
    logging.getLogger("slack_sdk").setLevel(max(level, logging.WARNING))
