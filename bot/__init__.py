"""The Slack front end: the Bolt app, the run manager, the Slack sink and the poster.

What other packages may use is exported here (loaded on first use: importing ``bot`` costs
nothing until one of these is asked for); everything else is internal to ``bot``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.bot import BudoBot
    from bot.poster import SlackPoster, make_web_client
    from bot.serve import Serving, open_server
    from bot.sink import RunThread, SlackEventSink

_LAZY = {"BudoBot": "bot.bot", "SlackPoster": "bot.poster", "make_web_client": "bot.poster",
         "Serving": "bot.serve", "open_server": "bot.serve", "RunThread": "bot.sink",
         "SlackEventSink": "bot.sink"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")


__all__ = ["BudoBot", "RunThread", "Serving", "SlackEventSink", "SlackPoster",
           "make_web_client", "open_server"]
