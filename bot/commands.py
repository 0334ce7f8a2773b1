"""Parsing ``/budo`` subcommands and @mentions into plain commands; no Slack calls here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_QUESTION_CHARS = 2000
RUN_ID_PATTERN = re.compile(r"^r-[A-Za-z0-9_-]{1,64}$")
# <@U123> or <@U123|name>: Slack's encoding of a user mention inside message text.
MENTION_PATTERN = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")

HELP_TEXT = (
    "*budo* investigates Kubernetes incidents and posts the evidence in a thread.\n"
    "• `/budo investigate <question>` — start an investigation here "
    "(e.g. `/budo investigate why is checkout returning 500s?`)\n"
    "• `@budo <question>` — the same from a message; inside a finished run's thread it asks "
    "a follow-up with that run's context\n"
    "• `/budo runs` — the latest investigations in this channel\n"
    "• `/budo export [run-id]` — upload the Markdown timeline and JSONL trail of a run "
    "(default: this channel's latest) into its thread\n"
    "• `/budo help` — this message\n"
    "Mutating actions (deleting a pod) wait for an on-call Approve; Cancel stops a run."
)

Kind = Literal["help", "investigate", "runs", "export"]


@dataclass(frozen=True)
class Command:
    kind: Kind
    argument: str = ""      # the question (investigate) or the run id (export)
    problem: str = ""       # why we fell back to help, shown above it


def parse_slash(text: str | None) -> Command:
    """``/budo <text>`` -> Command. Empty, unknown or malformed input becomes help with a
    one-line ``problem``; never an exception."""
    words = (text or "").strip()
    if not words:
        return Command("help")
    head, _, rest = words.partition(" ")
    head = head.lower()
    rest = rest.strip()
    if head in {"help", "-h", "--help", "?"}:
        return Command("help")
    if head == "investigate":
        question = rest
        if not question:
            return Command("help", problem="`/budo investigate` needs a question.")
        return Command("investigate", trim_question(question))
    if head == "runs":
        return Command("runs")
    if head == "export":
        if rest and not RUN_ID_PATTERN.match(rest):
            return Command("help", problem=f"`{rest[:80]}` is not a run id (they look like r-…).")
        return Command("export", rest)
    return Command("help", problem=f"Unknown subcommand `{head[:40]}`.")


def question_from_mention(text: str | None) -> str:
    """The question in an @mention: the message without the mention markup."""
    return trim_question(MENTION_PATTERN.sub(" ", text or "").strip())


def trim_question(question: str) -> str:
    question = " ".join(question.split())
    return question[:MAX_QUESTION_CHARS]


def help_reply(command: Command) -> str:
    return f"{command.problem}\n{HELP_TEXT}" if command.problem else HELP_TEXT
