"""The final answer, parsed into a structured verdict.

The system prompt asks for::

    ROOT CAUSE: <one or two sentences>
    EVIDENCE:
    - <fact, naming the tool output it came from>
    FIX: <the command or change>
    CONFIDENCE: high|medium|low

Models drift from formats (markdown bold, "Root cause -", numbered lists), so parsing is
forgiving. A reply that ignores the format entirely keeps its whole text as the root cause,
marked ``structured=False``: nothing the model said is lost.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_SECTION = re.compile(
    r"^[\s>#*_`]*(root[\s_-]*cause|evidence|fix|remediation|confidence)[\s*_`]*[:\-–]\s*(.*)$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_CANON = {"root cause": "root_cause", "remediation": "fix"}


@dataclass
class Verdict:
    root_cause: str
    evidence: list[str] = field(default_factory=list)
    fix: str = ""
    confidence: str = "unknown"
    structured: bool = True
    raw: str = ""
    cut_off: bool = False  # the server stopped it at its token limit, even after a continuation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_verdict(text: str) -> Verdict:
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            name = re.sub(r"[\s_-]+", " ", match.group(1).lower())
            current = _CANON.get(name, name)
            sections.setdefault(current, [])
            if match.group(2).strip():
                sections[current].append(match.group(2).strip())
        elif current is not None and line.strip():
            sections[current].append(line.strip())
    root = " ".join(sections.get("root_cause", [])).strip(" *_")
    if not root:
        return Verdict(root_cause=text.strip(), structured=False, raw=text)
    evidence = [_BULLET.sub("", item).strip() for item in sections.get("evidence", [])]
    confidence_text = " ".join(sections.get("confidence", [])).lower()
    confidence = next(
        (level for level in ("high", "medium", "low") if level in confidence_text), "unknown"
    )
    return Verdict(
        root_cause=root,
        evidence=[e for e in evidence if e],
        fix="\n".join(sections.get("fix", [])).strip(" *_"),
        confidence=confidence,
        structured=True,
        raw=text,
    )
