"""The workspace state the emulator keeps: messages, threads, ephemerals, files, users, groups.

Plain data, no I/O: the HTTP layer (webapi.py) mutates it, tests read it through SlackEmulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

TEAM_ID = "T0TEST"
TEAM_DOMAIN = "budo-test"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0BUDO"
BOT_NAME = "budo"


class Call(NamedTuple):
    """One Web API call as the emulator saw it (also recorded when it failed)."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


@dataclass
class Message:
    """A channel message as Slack stores it; `versions` keeps every earlier state."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    thread_ts: str | None = None
    reply_broadcast: bool = False
    attachments: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    edited_ts: str | None = None
    deleted: bool = False
    posted_at: float = field(default_factory=time.monotonic)
    versions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, workspace: Workspace | None = None) -> dict[str, Any]:
        """The message object Slack returns (chat.postMessage `message`, history items)."""
        out: dict[str, Any] = {"type": "message", "text": self.text, "user": self.user,
                               "ts": self.ts, "team": TEAM_ID}
        if self.bot_id:
            out.update(bot_id=self.bot_id, app_id=APP_ID, bot_profile={
                "id": self.bot_id, "app_id": APP_ID, "name": BOT_NAME, "team_id": TEAM_ID,
                "deleted": False, "icons": {}})
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.metadata:
            out["metadata"] = self.metadata
        if self.files:
            out["files"] = self.files
            out["upload"] = True
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.is_reply:
            out["parent_user_id"] = workspace.parent_user(self) if workspace else self.user
            if self.reply_broadcast:
                out["subtype"] = "thread_broadcast"
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            out["reactions"] = [{"name": name, "users": users, "count": len(users)}
                                for name, users in self.reactions.items()]
        if workspace is not None and not self.is_reply:
            replies = workspace.replies(self.channel, self.ts)
            if replies:
                out.update(thread_ts=self.ts, reply_count=len(replies),
                           reply_users=sorted({r.user for r in replies}),
                           reply_users_count=len({r.user for r in replies}),
                           latest_reply=replies[-1].ts)
        return out

    def snapshot(self) -> dict[str, Any]:
        """The editable part, kept in `versions` before each update."""
        return {"text": self.text, "blocks": self.blocks, "attachments": self.attachments,
                "edited_ts": self.edited_ts}


@dataclass
class Ephemeral:
    """A chat.postEphemeral message: visible to one user only, never in history."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    posted_at: float = field(default_factory=time.monotonic)
    via_response_url: bool = False


@dataclass
class UploadedFile:
    """A file from the files.getUploadURLExternal / upload / completeUploadExternal flow."""

    id: str
    filename: str
    length: int
    content: bytes | None = None  # None until the bytes were POSTed to the upload URL
    title: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    completed: bool = False
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    message_ts: str | None = None  # the message that shared it, if shared

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8", errors="replace")

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.filename, "title": self.title or self.filename,
            "mimetype": "text/plain", "filetype": "text", "pretty_type": "Plain Text",
            "user": BOT_USER_ID, "size": len(self.content or b""), "mode": "hosted",
            "is_external": False, "is_public": False, "created": int(time.time()),
            "url_private": f"https://files.slack.com/files-pri/{TEAM_ID}-{self.id}/{self.filename}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{self.id}",
        }
        if self.alt_txt:
            out["alt_txt"] = self.alt_txt
        return out


@dataclass
class ResponseUrlPost:
    """One POST a bot made to a response_url the client simulator handed out."""

    hook_id: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class ResponseUrlContext:
    """What a response_url points back at (the message a button sat on, the user who clicked)."""

    channel: str
    user: str
    message_ts: str | None = None
    thread_ts: str | None = None


class TsClock:
    """Slack ts strings ("1732200000.000100"): unique and increasing within the workspace."""

    def __init__(self) -> None:
        self._last_micros = 0

    def next(self) -> str:
        micros = max(time.time_ns() // 1000, self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class Workspace:
    """Messages per channel in post order, plus ephemerals, files, users and user groups."""

    def __init__(self) -> None:
        self.clock = TsClock()
        self.messages: dict[tuple[str, str], Message] = {}
        self.order: dict[str, list[str]] = {}
        self.thread_index: dict[tuple[str, str], list[str]] = {}  # (channel, parent ts) -> replies
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, UploadedFile] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, str] = {}  # id -> name
        self.dms: dict[str, str] = {}  # user id -> the app's DM channel id with that user
        self._next_id = 1

    def new_id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{prefix}0{self._next_id:08X}"

    def dm_channel(self, user_id: str) -> str:
        if user_id not in self.dms:
            self.dms[user_id] = self.new_id("D")
        return self.dms[user_id]

    def add_message(self, message: Message) -> Message:
        self.messages[(message.channel, message.ts)] = message
        self.order.setdefault(message.channel, []).append(message.ts)
        if message.is_reply:
            key = (message.channel, message.thread_ts or "")
            self.thread_index.setdefault(key, []).append(message.ts)
        return message

    def get(self, channel: str, ts: str) -> Message | None:
        message = self.messages.get((channel, ts))
        return None if message is None or message.deleted else message

    def top_level(self, channel: str) -> list[Message]:
        """Channel history oldest first: top-level messages and broadcast replies."""
        found = (self.messages[(channel, ts)] for ts in self.order.get(channel, []))
        return [m for m in found if not m.deleted and (not m.is_reply or m.reply_broadcast)]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        found = (self.messages[(channel, ts)]
                 for ts in self.thread_index.get((channel, thread_ts), []))
        return [m for m in found if not m.deleted]

    def parent_user(self, reply: Message) -> str:
        parent = self.messages.get((reply.channel, reply.thread_ts or ""))
        return parent.user if parent else reply.user

    def user_info(self, user_id: str) -> dict[str, Any]:
        if user_id in self.users:
            return self.users[user_id]
        name = user_id.lower()
        return {"id": user_id, "team_id": TEAM_ID, "name": name, "real_name": name,
                "deleted": False, "is_bot": user_id == BOT_USER_ID, "is_admin": False,
                "tz": "Etc/UTC", "tz_offset": 0,
                "profile": {"real_name": name, "display_name": name, "team": TEAM_ID}}
