"""Block Kit validation with Slack's main limits, strict so the bot's blocks are checked.

Slack answers a bad `blocks` with {"ok": false, "error": "invalid_blocks", "errors": [...]}
where each error names a json-pointer; `validate_blocks` returns those strings (empty = valid).
Limits: https://docs.slack.dev/reference/block-kit/blocks (as of 2025).
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255

_TEXT_TYPES = {"plain_text", "mrkdwn"}
_INTERACTIVE = {"button", "static_select", "external_select", "users_select",
                "conversations_select", "channels_select", "overflow", "datepicker",
                "timepicker", "checkboxes", "radio_buttons", "multi_static_select",
                "multi_users_select", "multi_conversations_select", "multi_channels_select",
                "multi_external_select", "plain_text_input", "datetimepicker", "email_text_input",
                "url_text_input", "number_input", "workflow_button", "rich_text_input"}
_KNOWN_BLOCKS = {"section", "header", "divider", "context", "actions", "image", "rich_text",
                 "input", "file", "video", "markdown", "context_actions", "table"}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, problem: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{pointer}]")

    def max_len(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def text_object(self, obj: Any, pointer: str, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
            self.fail(pointer, "must be a text object (plain_text or mrkdwn)")
            return
        if plain_only and obj["type"] != "plain_text":
            self.fail(f"{pointer}/type", "must be plain_text")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail(f"{pointer}/text", "must be a non-empty string")
            return
        self.max_len(text, limit, f"{pointer}/text")
        if obj["type"] == "mrkdwn" and "emoji" in obj:
            self.fail(f"{pointer}/emoji", "is not allowed for mrkdwn text")

    def confirm(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.fail(pointer, "must be a confirmation dialog object")
            return
        self.text_object(obj.get("title"), f"{pointer}/title", 100, plain_only=True)
        self.text_object(obj.get("text"), f"{pointer}/text", 300)
        self.text_object(obj.get("confirm"), f"{pointer}/confirm", 30, plain_only=True)
        self.text_object(obj.get("deny"), f"{pointer}/deny", 30, plain_only=True)
        if obj.get("style") not in (None, "primary", "danger"):
            self.fail(f"{pointer}/style", "must be primary or danger")

    def option(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.fail(pointer, "must be an option object")
            return
        self.text_object(obj.get("text"), f"{pointer}/text", 75)
        self.max_len(obj.get("value"), 150, f"{pointer}/value")

    def element(self, el: Any, pointer: str, action_ids: set[str]) -> None:
        if not isinstance(el, dict) or el.get("type") not in _INTERACTIVE | {"image"}:
            self.fail(pointer, "failed to match all allowed schemas")
            return
        if el["type"] == "image":
            self.image_fields(el, pointer)
            return
        action_id = el.get("action_id")
        if action_id is not None:
            if not isinstance(action_id, str) or not action_id:
                self.fail(f"{pointer}/action_id", "must be a non-empty string")
            else:
                self.max_len(action_id, MAX_ACTION_ID, f"{pointer}/action_id")
                if action_id in action_ids:
                    self.fail(f"{pointer}/action_id", f"duplicate action_id {action_id!r}")
                action_ids.add(action_id)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{pointer}/confirm")
        if el["type"] == "button":
            self.text_object(el.get("text"), f"{pointer}/text", 75, plain_only=True)
            self.max_len(el.get("value"), 2000, f"{pointer}/value")
            self.max_len(el.get("url"), 3000, f"{pointer}/url")
            if el.get("style") not in (None, "primary", "danger"):
                self.fail(f"{pointer}/style", "must be primary or danger")
        for index, opt in enumerate(el.get("options") or []):
            self.option(opt, f"{pointer}/options/{index}")

    def image_fields(self, el: dict[str, Any], pointer: str) -> None:
        if not el.get("image_url") and not el.get("slack_file"):
            self.fail(f"{pointer}/image_url", "is required")
        self.max_len(el.get("image_url"), 3000, f"{pointer}/image_url")
        alt = el.get("alt_text")
        if not isinstance(alt, str) or not alt:
            self.fail(f"{pointer}/alt_text", "must be a non-empty string")
        self.max_len(alt, 2000, f"{pointer}/alt_text")

    def block(self, block: Any, pointer: str, block_ids: set[str]) -> None:
        if not isinstance(block, dict) or block.get("type") not in _KNOWN_BLOCKS:
            self.fail(pointer, "failed to match all allowed schemas")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.max_len(block_id, MAX_BLOCK_ID, f"{pointer}/block_id")
            if block_id in block_ids:
                self.fail(f"{pointer}/block_id", f"duplicate block_id {block_id!r}")
            block_ids.add(block_id)
        kind = block["type"]
        action_ids: set[str] = set()
        if kind == "section":
            self.section(block, pointer, action_ids)
        elif kind == "header":
            self.text_object(block.get("text"), f"{pointer}/text", 150, plain_only=True)
        elif kind == "context":
            self.context(block, pointer)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                self.fail(f"{pointer}/elements", "must have between 1 and 25 items")
                return
            for index, el in enumerate(elements):
                self.element(el, f"{pointer}/elements/{index}", action_ids)
        elif kind == "image":
            self.image_fields(block, pointer)
            if "title" in block:
                self.text_object(block["title"], f"{pointer}/title", 2000, plain_only=True)
        elif kind == "markdown":
            if not isinstance(block.get("text"), str) or not block["text"]:
                self.fail(f"{pointer}/text", "must be a non-empty string")
            self.max_len(block.get("text"), 12000, f"{pointer}/text")

    def section(self, block: dict[str, Any], pointer: str, action_ids: set[str]) -> None:
        if "text" not in block and "fields" not in block:
            self.fail(pointer, "must provide text or fields")
        if "text" in block:
            self.text_object(block["text"], f"{pointer}/text", 3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                self.fail(f"{pointer}/fields", "must have between 1 and 10 items")
            else:
                for index, item in enumerate(fields):
                    self.text_object(item, f"{pointer}/fields/{index}", 2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{pointer}/accessory", action_ids)

    def context(self, block: dict[str, Any], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            self.fail(f"{pointer}/elements", "must have between 1 and 10 items")
            return
        for index, el in enumerate(elements):
            where = f"{pointer}/elements/{index}"
            if isinstance(el, dict) and el.get("type") == "image":
                self.image_fields(el, where)
            else:
                self.text_object(el, where, 3000)


def validate_blocks(blocks: Any, max_blocks: int = MAX_BLOCKS) -> list[str]:
    """Slack-style error strings for `blocks` (a parsed list); empty when Slack would accept."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.fail("/blocks", "must be an array")
        return checker.errors
    if len(blocks) > max_blocks:
        checker.fail("/blocks", f"no more than {max_blocks} items allowed")
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        checker.block(block, f"/blocks/{index}", block_ids)
    return checker.errors
