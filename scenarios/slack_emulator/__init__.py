"""A stateful Slack emulator for tests and benches (no network beyond 127.0.0.1).

    from scenarios.slack_emulator import SlackEmulator, SlackClientSim, sign

Modules: server (SlackEmulator: HTTP, recording, inspection), webapi (method handlers),
blocks (Block Kit validation), state (messages, files, users), socket_mode (websocket hub),
signing (request signatures), client_sim (Slack -> app requests).
"""

from .blocks import validate_blocks
from .client_sim import BotReply, SlackClientSim
from .server import APP_TOKEN, BOT_TOKEN, SlackEmulator
from .signing import sign, signature
from .state import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    Call,
    Ephemeral,
    Message,
    ResponseUrlPost,
    UploadedFile,
)

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "TEAM_ID",
    "BotReply",
    "Call",
    "Ephemeral",
    "Message",
    "ResponseUrlPost",
    "SlackClientSim",
    "SlackEmulator",
    "UploadedFile",
    "sign",
    "signature",
    "validate_blocks",
]
