"""Redaction cost and linearity.

Every tool result goes through agent.redact.redact before the model sees it, and a log can be
50 MB. For each input kind the script times redact() on N and 2N characters and prints
µs/char and the 2N/N ratio (≈ 2.0 is linear; ≈ 4 would be quadratic), against a baseline
measured in the same run: one pass of ``re.sub`` with a trivial pattern over the same text.

Input kinds: realistic logs (the hostile corpus lines and ordinary noise), and pathological
shapes that made the old key=value rule quadratic (one long identifier run, dotted names,
'key=' repeated, long base64 lines, many END markers without BEGIN).

    python bench/redact.py [--chars 400000]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.redact import redact
from scenarios.hostile import FALSE_POSITIVES, SECRETS


def realistic(n: int) -> str:
    lines = [s.snippet for s in SECRETS] + FALSE_POSITIVES * 6
    text = "\n".join(lines)
    return (text * (n // len(text) + 1))[:n]


KINDS: dict[str, Callable[[int], str]] = {
    "realistic log": realistic,
    "one identifier run": lambda n: "a" * n,
    "dotted run": lambda n: ("auth." * (n // 5 + 1))[:n],
    "key= repeated": lambda n: ("key=" * (n // 4 + 1))[:n],
    "password: x, ...": lambda n: ("password: x, " * (n // 13 + 1))[:n],
    "base64 lines": lambda n: (("QWxhZGRpbjpvcGVuIHNlc2FtZQ" * 3 + "\n") * (n // 79 + 1))[:n],
    "END markers": lambda n: (("-----END PRIVATE KEY-----\n") * (n // 26 + 1))[:n],
    "scheme:// runs": lambda n: ("a+b.c://" * (n // 8 + 1))[:n],
}


def timed(func: Callable[[str], object], text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func(text)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=400_000)
    args = parser.parse_args()
    trivial = re.compile(r"\d{99}")
    print(f"{'input':<20} {'µs/char':>8} {'2N/N':>6} {'× baseline':>11}")
    worst = 0.0
    for name, make in KINDS.items():
        small, big = make(args.chars), make(args.chars * 2)
        t_small = timed(redact, small)
        t_big = timed(redact, big)
        base = timed(lambda t: trivial.sub("", t), big)
        ratio = t_big / max(t_small, 1e-9)
        worst = max(worst, ratio)
        print(f"{name:<20} {t_big / len(big) * 1e6:>8.3f} {ratio:>6.2f} "
              f"{t_big / max(base, 1e-9):>11.1f}")
    print(f"worst 2N/N ratio: {worst:.2f} (linear ≈ 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
