"""Web API method handlers: each takes the emulator and the merged params, returns Slack's JSON.

A handler raises ApiError(code) for {"ok": false, "error": code}; server.py does transport
(auth, rate limits, recording). Shapes follow docs.slack.dev/reference/methods/<method>.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .blocks import validate_blocks
from .state import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Ephemeral,
    Message,
    UploadedFile,
)

if TYPE_CHECKING:
    from .server import SlackEmulator

MAX_TEXT = 40_000
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_USER_ID = re.compile(r"^[UW][A-Z0-9_]+$")
_EMOJI_NAME = re.compile(r"^[a-z0-9_+\-']+(::skin-tone-[2-6])?$")


class ApiError(Exception):
    """A Slack error answer: {"ok": false, "error": code, **extra}."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code, self.extra = code, extra


Handler = Callable[["SlackEmulator", dict[str, Any]], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}
APP_TOKEN_METHODS = {"apps.connections.open"}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


def _required(params: dict[str, Any], name: str, error: str = "invalid_arguments") -> str:
    value = params.get(name)
    if value in (None, ""):
        raise ApiError(error)
    return str(value)


def _json_field(params: dict[str, Any], name: str, error: str) -> Any:
    """Form bodies carry blocks/attachments as JSON strings; JSON bodies carry them parsed."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value) if value else None
        except json.JSONDecodeError as exc:
            raise ApiError(error) from exc
    return value


def _channel(emu: SlackEmulator, params: dict[str, Any], name: str = "channel") -> str:
    channel = _required(params, name, "channel_not_found")
    if channel not in emu.workspace.channels and not _CHANNEL_ID.match(channel):
        raise ApiError("channel_not_found")
    if channel in emu.not_in_channel:
        raise ApiError("not_in_channel")
    return channel


def _content(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None, Any]:
    """text, blocks, attachments after Slack's checks (no_text, msg_too_long, invalid_blocks)."""
    text = params.get("text") or ""
    blocks = _json_field(params, "blocks", "invalid_blocks_format")
    attachments = _json_field(params, "attachments", "invalid_attachments")
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise ApiError("invalid_blocks", errors=errors, response_metadata={
                "messages": [f"[ERROR] {e}" for e in errors]})
    return text, blocks, attachments


def _flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "")).lower() in ("1", "true")


@method("api.test")
async def api_test(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "args": {k: v for k, v in params.items() if k != "token"}}


@method("auth.test")
async def auth_test(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": "Budo Test",
            "user": BOT_NAME, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            "is_enterprise_install": False}


@method("chat.postMessage")
async def chat_post_message(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    target = str(params.get("channel") or "")
    if _USER_ID.match(target):  # a user id posts into the app's DM with that user, as in Slack
        params = {**params, "channel": emu.workspace.dm_channel(target)}
    channel = _channel(emu, params)
    text, blocks, attachments = _content(params)
    thread_ts = params.get("thread_ts") or None
    if thread_ts:
        parent = emu.workspace.get(channel, thread_ts)
        if parent is None:
            raise ApiError("thread_not_found")
        # Replying to a reply lands in the parent's thread, as in Slack.
        thread_ts = parent.thread_ts or parent.ts
    message = emu.workspace.add_message(Message(
        channel=channel, ts=emu.workspace.clock.next(), text=text, blocks=blocks,
        attachments=attachments, thread_ts=thread_ts,
        reply_broadcast=bool(thread_ts) and _flag(params, "reply_broadcast"),
        metadata=_json_field(params, "metadata", "invalid_metadata_format")))
    return {"ok": True, "channel": channel, "ts": message.ts,
            "message": message.to_api(emu.workspace)}


def _own_message(emu: SlackEmulator, params: dict[str, Any], not_ours: str
                 ) -> tuple[str, str, Any]:
    """(channel, ts, message) of a message the bot may edit; Slack's errors otherwise."""
    channel = _channel(emu, params)
    ts = _required(params, "ts", "message_not_found")
    message = emu.workspace.get(channel, ts)
    if message is None:
        raise ApiError("message_not_found")
    if message.user != BOT_USER_ID:
        raise ApiError(not_ours)
    return channel, ts, message


@method("chat.update")
async def chat_update(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel, ts, message = _own_message(emu, params, "cant_update_message")
    text, blocks, attachments = _content(params)
    message.versions.append(message.snapshot())
    message.text = text
    if blocks is not None or "blocks" in params:
        message.blocks = blocks
    if attachments is not None:
        message.attachments = attachments
    message.edited_ts = emu.workspace.clock.next()
    return {"ok": True, "channel": channel, "ts": ts, "text": text,
            "message": message.to_api(emu.workspace)}


@method("chat.getPermalink")
async def chat_get_permalink(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(emu, params)
    message = emu.workspace.get(channel, _required(params, "message_ts", "message_not_found"))
    if message is None:
        raise ApiError("message_not_found")
    link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel}"
    return {"ok": True, "channel": channel, "permalink": link}


@method("conversations.open")
async def conversations_open(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("channel"):
        return {"ok": True, "channel": {"id": _channel(emu, params)}}
    users = [u for u in str(params.get("users") or "").split(",") if u]
    if len(users) != 1:  # group DMs are not emulated
        raise ApiError("users_list_not_supplied" if not users else "not_enough_users")
    if not _USER_ID.match(users[0]):
        raise ApiError("user_not_found")
    return {"ok": True, "no_op": users[0] in emu.workspace.dms,
            "already_open": users[0] in emu.workspace.dms,
            "channel": {"id": emu.workspace.dm_channel(users[0])}}


@method("conversations.info")
async def conversations_info(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(emu, params)
    name = emu.workspace.channels.get(channel, channel.lower())
    return {"ok": True, "channel": {
        "id": channel, "name": name, "is_channel": channel.startswith("C"),
        "is_group": channel.startswith("G"), "is_im": channel.startswith("D"),
        "is_private": not channel.startswith("C"), "is_archived": False,
        "is_member": channel not in emu.not_in_channel, "created": 1700000000}}


@method("chat.delete")
async def chat_delete(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel, ts, message = _own_message(emu, params, "cant_delete_message")
    message.deleted = True
    return {"ok": True, "channel": channel, "ts": ts}


@method("chat.postEphemeral")
async def chat_post_ephemeral(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(emu, params)
    user = _required(params, "user", "user_not_found")
    if not _USER_ID.match(user) and user not in emu.workspace.users:
        raise ApiError("user_not_found")
    if user in emu.not_in_channel_users.get(channel, set()):
        raise ApiError("user_not_in_channel")
    text, blocks, _ = _content(params)
    ephemeral = Ephemeral(channel=channel, user=user, ts=emu.workspace.clock.next(),
                          text=text, blocks=blocks, thread_ts=params.get("thread_ts") or None)
    emu.workspace.ephemerals.append(ephemeral)
    return {"ok": True, "message_ts": ephemeral.ts}


def _reaction_target(emu: SlackEmulator, params: dict[str, Any]) -> tuple[Message, str]:
    channel = _channel(emu, params)
    name = _required(params, "name", "invalid_name").strip(":")
    if not _EMOJI_NAME.match(name):
        raise ApiError("invalid_name")
    message = emu.workspace.get(channel, _required(params, "timestamp", "bad_timestamp"))
    if message is None:
        raise ApiError("message_not_found")
    return message, name


@method("reactions.add")
async def reactions_add(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    message, name = _reaction_target(emu, params)
    users = message.reactions.setdefault(name, [])
    if BOT_USER_ID in users:
        raise ApiError("already_reacted")
    users.append(BOT_USER_ID)
    return {"ok": True}


@method("reactions.remove")
async def reactions_remove(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    message, name = _reaction_target(emu, params)
    users = message.reactions.get(name, [])
    if BOT_USER_ID not in users:
        raise ApiError("no_reaction")
    users.remove(BOT_USER_ID)
    if not users:
        del message.reactions[name]
    return {"ok": True}


@method("conversations.replies")
async def conversations_replies(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(emu, params)
    parent = emu.workspace.get(channel, _required(params, "ts", "thread_not_found"))
    if parent is None:
        raise ApiError("thread_not_found")
    root = emu.workspace.get(channel, parent.thread_ts or parent.ts) or parent
    thread = [root, *emu.workspace.replies(channel, root.ts)]
    return {"ok": True, "messages": [m.to_api(emu.workspace) for m in thread],
            "has_more": False, "response_metadata": {"next_cursor": ""}}


@method("conversations.history")
async def conversations_history(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(emu, params)
    limit = int(params.get("limit") or 100)
    newest_first = list(reversed(emu.workspace.top_level(channel)))
    return {"ok": True, "messages": [m.to_api(emu.workspace) for m in newest_first[:limit]],
            "has_more": len(newest_first) > limit, "pin_count": 0,
            "response_metadata": {"next_cursor": ""}}


@method("usergroups.users.list")
async def usergroups_users_list(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    group = _required(params, "usergroup", "no_such_subteam")
    if group not in emu.workspace.usergroups:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(emu.workspace.usergroups[group])}


@method("users.info")
async def users_info(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    user = _required(params, "user", "user_not_found")
    if user not in emu.workspace.users and not _USER_ID.match(user):
        raise ApiError("user_not_found")
    return {"ok": True, "user": emu.workspace.user_info(user)}


@method("files.getUploadURLExternal")
async def files_get_upload_url(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    filename = _required(params, "filename", "invalid_arguments")
    try:
        length = int(params.get("length", ""))
    except ValueError as exc:
        raise ApiError("invalid_arguments") from exc
    if length < 1:
        raise ApiError("invalid_arguments")
    upload = UploadedFile(id=emu.workspace.new_id("F"), filename=filename, length=length,
                          alt_txt=params.get("alt_txt"), snippet_type=params.get("snippet_type"))
    emu.workspace.files[upload.id] = upload
    return {"ok": True, "upload_url": f"{emu.base_url}/upload/v1/{upload.id}",
            "file_id": upload.id}


@method("files.completeUploadExternal")
async def files_complete_upload(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    entries = _json_field(params, "files", "invalid_arguments")
    if not isinstance(entries, list) or not entries:
        raise ApiError("invalid_arguments")
    uploads: list[UploadedFile] = []
    for entry in entries:
        upload = emu.workspace.files.get(str(entry.get("id")))
        if upload is None or upload.content is None or upload.completed:
            raise ApiError("file_not_found")
        upload.title = entry.get("title") or upload.filename
        uploads.append(upload)
    channel = params.get("channel_id") or (params.get("channels") or "").split(",")[0] or None
    thread_ts = params.get("thread_ts") or None
    if channel:
        channel = _channel(emu, {"channel": channel})
        if thread_ts and emu.workspace.get(channel, thread_ts) is None:
            raise ApiError("thread_not_found")
        comment = params.get("initial_comment") or ""
        if len(comment) > MAX_TEXT:
            raise ApiError("msg_too_long")
        share = emu.workspace.add_message(Message(
            channel=channel, ts=emu.workspace.clock.next(), text=comment, blocks=None,
            thread_ts=thread_ts, files=[u.to_api() for u in uploads]))
        for upload in uploads:
            upload.channel, upload.thread_ts, upload.message_ts = channel, thread_ts, share.ts
            upload.initial_comment = comment or None
    for upload in uploads:
        upload.completed = True
    return {"ok": True, "files": [u.to_api() for u in uploads]}


@method("apps.connections.open")
async def apps_connections_open(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "url": emu.socket_url}


@method("bots.info")
async def bots_info(emu: SlackEmulator, params: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "bot": {"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME,
                                "deleted": False, "user_id": BOT_USER_ID, "icons": {}}}
