"""One tool call through the gate, in the order the architecture fixes: unknown tool or
unparseable arguments → ``spec.check`` (no API call, no card) → the repeat breaker → for
mutating tools ``spec.preview`` (a refusal means no card) → approval → ``spec.func`` → for
actions ``spec.verify`` under its own budget → the result, clipped, back to the model. Every
failure on the way is a tool result the model reads; none raises.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import agent.prompts as prompts
from agent.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    Redacted,
    ToolFinished,
    ToolRequested,
    Truncated,
    VerificationStarted,
    Verified,
)
from agent.guards import clip, wrap_untrusted
from agent.outcome import Budgets
from agent.protocols import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    EventSink,
    Preview,
    ToolCall,
    ToolResult,
    ToolSpec,
    Verification,
)
from budo.errors import BudoError, ToolArgumentError


class SinkFailed(BudoError):
    """A sink could not take an event: the trail would have a hole, so the run stops."""


@dataclass
class Gate:
    """The part of a run that takes the model's tool calls through the gate and hands each
    result back as a ``tool`` message (the loop, ``agent.loop._Run``, builds on it)."""

    run_id: str
    tools: dict[str, ToolSpec]
    sinks: list[EventSink]
    approver: Approver
    budgets: Budgets
    messages: list[dict[str, Any]]
    turns: int = 0
    calls_seen: Counter[str] = field(default_factory=Counter)

    async def emit(self, event: Event) -> None:
        for sink in list(self.sinks):
            try:
                await sink.emit(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Drop the broken sink so the failure itself can still reach the others.
                self.sinks.remove(sink)
                raise SinkFailed(
                    f"{type(sink).__name__} failed to record {event.kind}: {exc}"
                ) from exc

    async def handle_call(self, call: ToolCall, reasoning: str) -> None:
        spec = self.tools.get(call.name)
        args = call.arguments or {}
        await self.emit(ToolRequested(run_id=self.run_id, turn=self.turns, call_id=call.id,
                                      tool=call.name, args=args,
                                      mutating=bool(spec and spec.mutating)))
        if spec is None:
            reason = prompts.unknown_tool(call.name, sorted(self.tools))
            return await self.finish_call(call, ToolResult.failure(reason), 0.0, note=True)
        if call.arguments is None:
            reason = prompts.bad_arguments(call.name, call.parse_error or "unparseable")
            return await self.finish_call(call, ToolResult.failure(reason), 0.0, note=True)
        try:
            args = spec.check(args) if spec.check else args
        except ToolArgumentError as exc:  # before any API call and before any card
            return await self.finish_call(call, ToolResult.failure(str(exc)), 0.0, note=True)
        key = f"{call.name}:{json.dumps(args, sort_keys=True)}"
        self.calls_seen[key] += 1
        if self.calls_seen[key] >= 3:
            note = prompts.BREAKER_NOTE.format(tool=call.name)
            return await self.finish_call(call, ToolResult.failure(note), 0.0, note=True)
        preview: Preview | None = None
        if spec.mutating:
            if spec.preview is not None:
                started = time.monotonic()
                previewed = await self.run_tool(spec.name, spec.preview, args)
                if isinstance(previewed, ToolResult):  # refused by a dry run: no card
                    return await self.finish_call(call, previewed, time.monotonic() - started)
                preview = previewed
            decision = await self.ask_approval(call, spec, args, reasoning, preview)
            if not decision.approved:
                denied = ToolResult.failure(
                    f"denied: {decision.reason}. The action was NOT performed; do not retry it. "
                    "Recommend it in your FIX instead."
                )
                return await self.finish_call(call, denied, 0.0, note=True)
        started = time.monotonic()
        extra = {"approved": preview} if preview is not None else {}
        result = await self.run_tool(spec.name, spec.func, {**args, **extra})
        assert isinstance(result, ToolResult)
        if spec.verify is not None and result.ok:
            result = await self.verify(call, spec, args, preview, result)
        await self.finish_call(call, result, time.monotonic() - started)

    async def verify(self, call: ToolCall, spec: ToolSpec, args: dict[str, Any],
                     preview: Preview | None, result: ToolResult) -> ToolResult:
        """Watch what an approved action did, under BUDO_VERIFY_TIMEOUT (not the per-tool
        budget); the model reads the outcome, so a fix that did not work means more work."""
        assert spec.verify is not None
        limit = self.budgets.verify_timeout
        await self.emit(VerificationStarted(run_id=self.run_id, call_id=call.id,
                                            tool=spec.name, timeout_s=limit))
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit + 5.0):  # the verifier stops itself at `limit`
                seen = await spec.verify(args, preview, limit)
        except TimeoutError:
            seen = Verification(False, f"verification did not finish within {limit:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            seen = Verification(False, f"verification failed: {type(exc).__name__}: {exc}")
        took = round(time.monotonic() - started, 3)
        await self.emit(Verified(run_id=self.run_id, call_id=call.id, tool=spec.name,
                                 summary=spec.describe_call(args), ok=seen.ok,
                                 outcome=seen.summary, details=list(seen.details),
                                 duration_s=seen.duration_s or took))
        facts = "".join(f"\n- {d}" for d in seen.details)
        if seen.ok:
            return ToolResult(True, f"{result.output.rstrip()}\nVERIFIED: {seen.summary}{facts}",
                              findings=result.findings, redactions=result.redactions,
                              redaction_kinds=result.redaction_kinds)
        return ToolResult(False, result.output, error=(
            f"{result.output.strip()} — but the verification failed: {seen.summary}{facts}. "
            "The change IS applied; investigate why before concluding."),
            findings=result.findings, redactions=result.redactions,
            redaction_kinds=result.redaction_kinds)

    async def ask_approval(self, call: ToolCall, spec: ToolSpec, args: dict[str, Any],
                           reasoning: str, preview: Preview | None) -> ApprovalDecision:
        summary = spec.describe_call(args)
        await self.emit(ApprovalRequested(
            run_id=self.run_id, call_id=call.id, tool=spec.name, args=args, summary=summary,
            reason=reasoning.strip(), changes=list(preview.changes) if preview else [],
            current=preview.current if preview else ""))
        request = ApprovalRequest(run_id=self.run_id, call_id=call.id, tool=spec.name, args=args,
                                  summary=summary, reason=reasoning.strip(), preview=preview)
        try:
            decision = await self.approver.request(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an approver that breaks must fail closed
            decision = ApprovalDecision(False, None, f"approval failed ({exc}); treated as denied")
        await self.emit(ApprovalDecided(run_id=self.run_id, call_id=call.id, tool=spec.name,
                                        approved=decision.approved,
                                        decided_by=decision.decided_by, reason=decision.reason))
        return decision

    async def run_tool(self, name: str, func: Any, args: dict[str, Any]
                       ) -> ToolResult | Preview:
        """A tool's function (or its preview) under the per-tool budget; every failure is a
        result for the model."""
        try:
            async with asyncio.timeout(self.budgets.tool_timeout):
                return await func(**args)  # type: ignore[no-any-return]
        except TimeoutError:
            return ToolResult.failure(
                f"{name} timed out after {self.budgets.tool_timeout:g}s; narrow the call"
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return ToolResult.failure(f"{type(exc).__name__}: {exc}")

    async def finish_call(self, call: ToolCall, result: ToolResult, duration: float,
                          *, note: bool = False) -> None:
        """Record a result and hand it to the model. ``note``: the loop wrote it (unknown
        tool, bad arguments, breaker, denial), so it goes as plain text, not as untrusted
        data the system prompt tells the model never to follow."""
        if result.redactions:
            await self.emit(Redacted(run_id=self.run_id, call_id=call.id, tool=call.name,
                                     count=result.redactions, kinds=result.redaction_kinds))
        text = result.text()
        clipped = clip(text, self.budgets.tool_output_chars)
        if clipped.truncated:
            await self.emit(Truncated(run_id=self.run_id, call_id=call.id, tool=call.name,
                                      original_chars=clipped.original_chars,
                                      kept_chars=len(clipped.text),
                                      omitted_lines=clipped.omitted_lines))
        await self.emit(ToolFinished(
            run_id=self.run_id, turn=self.turns, call_id=call.id, tool=call.name, ok=result.ok,
            duration_s=round(duration, 3), output=text, error=result.error,
            findings=list(result.findings), sent_chars=len(clipped.text),
        ))
        content = text if note else wrap_untrusted(call.name, clipped.text)
        self.messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                              "content": content})
