"""`budo` command line: one dispatcher, each subcommand owned by the module that does the work.

Subcommand modules are imported lazily (only the one you run), and each exposes
``add_arguments(parser)`` and ``async def run(args) -> int`` or ``def run(args) -> int``.
Every ``BudoError`` becomes one line on stderr and exit code 2; nothing prints a traceback
unless BUDO_DEBUG=1. Ctrl-C exits 130 wherever it lands; a closed pipe (``budo runs | head
-1``) exits quietly with 141, as a tool killed by SIGPIPE would.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from budo import __version__
from budo.config import check_db_directory
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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (to add its arguments)."""
    parser = _Parser(
        prog="budo",
        description="ChatOps incident investigator: an LLM agent over a typed Kubernetes "
        "tool surface, with on-call approvals and an audit trail.",
    )
    parser.add_argument("--version", action="version", version=f"budo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name, _command=name)
        if name == command:
            import importlib

            module = importlib.import_module(module_name)
            adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
            adder(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        return _main(argv, command)
    except KeyboardInterrupt:  # anywhere: while importing, parsing, running, cleaning up
        print(f"budo{' ' + command if command in COMMANDS else ''}: interrupted",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`). Point stdout at /dev/null so the interpreter's
        # final flush cannot fail again, and leave without a word.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str], command: str | None) -> int:
    # Imported here, inside main's Ctrl-C handler: asyncio alone takes ~50 ms to import.
    import asyncio
    import importlib
    import inspect

    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    runner = getattr(module, f"run_{args._command}", None) or module.run
    try:
        check_db_directory()
        result = runner(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        sys.stdout.flush()  # a closed pipe surfaces here, inside the handler above
        return int(result or 0)
    except BudoError as exc:
        if os.environ.get("BUDO_DEBUG"):
            raise
        from agent.text import terminal_safe  # an error may quote the cluster or the model

        print(f"budo {args.command}: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
