"""`budo` command line: one dispatcher, each subcommand owned by the module that does the work.

Subcommand modules are imported lazily (only the one you run), and each exposes
``add_arguments(parser)`` and ``async def run(args) -> int`` or ``def run(args) -> int``.
Every ``BudoError`` becomes one line on stderr and exit code 2; nothing prints a traceback
unless BUDO_DEBUG=1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import sys
from collections.abc import Sequence

from budo.errors import BudoError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("budo.demo", "run the canonical incident end to end in the terminal"),
    "investigate": ("budo.terminal", "investigate a question against your cluster"),
    "serve": ("bot.serve", "run the Slack bot (Socket Mode or HTTP)"),
    "sandbox": ("scenarios.cli", "serve a bundled incident as a Kubernetes API + kubeconfig"),
    "eval": ("budo.evaluate", "score a model on the bundled incidents"),
    "runs": ("storage.cli", "list recent investigations"),
    "export": ("storage.cli", "export a run as a postmortem timeline (md) or trail (jsonl)"),
    "audit": ("storage.cli", "verify a run's tamper-evident hash chain"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (to add its arguments)."""
    parser = argparse.ArgumentParser(
        prog="budo",
        description="ChatOps incident investigator: an LLM agent over a typed Kubernetes "
        "tool surface, with on-call approvals and an audit trail.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name, _command=name)
        if name == command:
            module = importlib.import_module(module_name)
            adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
            adder(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    runner = getattr(module, f"run_{args._command}", None) or module.run
    try:
        result = runner(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except BudoError as exc:
        if os.environ.get("BUDO_DEBUG"):
            raise
        from budo.console import terminal_safe  # an error may quote the cluster or the model

        print(f"budo {args.command}: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"budo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
