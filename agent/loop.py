"""The agent loop: question in, verdict (or a clearly stated failure) out.

One function, ``run_investigation``, owns the whole conversation. It knows nothing of Slack,
terminals or SQLite: every step becomes a typed event (agent/events.py) handed to each sink in
order, and awaited, before the next step. Rules that matter live here, in code:

- the approval gate: a mutating tool runs only after ``approver.request`` says yes; a denial,
  timeout or missing human becomes a ``denied: …`` tool result;
- every failure a model or a tool can produce (unknown tool, bad JSON, an exception, a timeout,
  a repeated call) goes back to the model as a tool result; the loop never crashes on them;
- budgets: turns (the last turn is offered no tools), tokens, wall clock, per-tool time, and
  the characters of each tool result that reach the model;
- the context: every request is fitted to the model's window first (agent/context.py: older
  results compacted, a typed event says so); an overflow refusal is retried harder, then
  answered without tools (none coming back is a failed run naming the setting to raise,
  never a verdict); a server that silently truncated is reported and asked again;
- a reply that is neither a tool call nor an answer in the verdict format gets a nudge, and
  an answer cut off at the length limit one continuation, before anything counts as a verdict.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import agent.prompts as prompts
from agent import server_errors
from agent.context import INFERRED, ContextBudget
from agent.events import (
    ContextCompacted,
    ContextTruncated,
    ModelNudged,
    ModelReply,
    ModelRequest,
    RunCancelled,
    RunFailed,
    RunInterrupted,
    RunStarted,
    Terminal,
    VerdictReached,
)
from agent.gate import Gate
from agent.outcome import Budgets, RunOutcome, Stop
from agent.protocols import (
    Approver,
    ChatModel,
    Completion,
    EventSink,
    ToolCall,
    ToolSpec,
)
from agent.verdict import Verdict, parse_verdict
from budo.errors import (
    BudgetExceeded,
    BudoError,
    ContextOverflow,
    ModelError,
    ModelResponseError,
)

MAX_NUDGES = 3  # replies that are neither a call nor an answer, per run, before one is accepted

log = logging.getLogger("budo.agent.loop")


@dataclass(kw_only=True)
class _Run(Gate):
    model: ChatModel
    tokens: int = 0
    context: ContextBudget | None = None  # built on the first turn, from the server if it says
    nudges: int = 0
    context_full: bool = False  # the tools were taken away because the conversation filled it
    _asked_for: float = 0.0  # seconds the last completion took

    # --- one turn -------------------------------------------------------------------------

    async def turn(self, last: bool) -> Verdict | None:
        self.turns += 1
        schemas = [] if last else [spec.schema() for spec in self.tools.values()]
        if last:
            self.messages.append({"role": "user", "content": prompts.LAST_TURN_NOTE})
        reply, schemas = await self.ask(schemas)
        calls = reply.tool_calls if schemas else []  # tools offered none: ignore stray calls
        await self.record_reply(reply, calls)
        self.messages.append(_assistant_message(reply.content, calls))
        if calls:
            for call in calls:
                await self.handle_call(call, reply.content)
            return None
        return await self.conclude(reply, final=not schemas)

    async def record_reply(self, reply: Completion, calls: list[ToolCall]) -> None:
        self.tokens += reply.usage.total
        await self.emit(ModelReply(
            run_id=self.run_id, turn=self.turns, duration_s=round(self._asked_for, 3),
            prompt_tokens=reply.usage.prompt_tokens,
            completion_tokens=reply.usage.completion_tokens,
            tokens_estimated=reply.usage.estimated, content=reply.content,
            tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
            recovered_from_text=reply.recovered_from_text,
        ))
        if self.tokens > self.budgets.max_tokens:
            raise BudgetExceeded(
                f"token budget exhausted: {self.tokens} tokens used of {self.budgets.max_tokens}"
            )

    async def conclude(self, reply: Completion, final: bool) -> Verdict | None:
        """A reply without tool calls: the verdict, or a nudge when it is not one."""
        text, cut = reply.content, reply.finish_reason == "length"
        if cut and text.strip():  # stopped at the token limit mid-answer: ask for the rest once
            await self.emit(ModelNudged(run_id=self.run_id, turn=self.turns, reason="cut off",
                                        content=text))
            self.messages.append({"role": "user", "content": prompts.CONTINUE_NOTE})
            more, _ = await self.ask([])
            await self.record_reply(more, [])
            self.messages.append(_assistant_message(more.content, []))
            text, cut = text + more.content, more.finish_reason == "length"
        if not text.strip():
            if final:  # asked for the answer with no tools left, and none came: no verdict
                raise self.no_answer()
            await self.emit(ModelNudged(run_id=self.run_id, turn=self.turns, reason="empty"))
            self.messages.append({"role": "user", "content": prompts.EMPTY_NOTE})
            return None
        verdict = parse_verdict(text)
        if verdict.structured or final or self.nudges >= MAX_NUDGES:
            verdict.cut_off = cut
            return verdict
        self.nudges += 1  # a plan in prose, a call we could not read: not a verdict
        await self.emit(ModelNudged(run_id=self.run_id, turn=self.turns, reason="not an answer",
                                    content=text))
        self.messages.append({"role": "user", "content": prompts.NUDGE_NOTE})
        return None

    def no_answer(self) -> BudoError:
        """Why a forced last answer came back empty, naming the setting to raise."""
        if self.context_full and self.context is not None:
            return server_errors.context_too_small(
                self.context.window, self.context.source,
                str(getattr(self.model, "flavour", "unknown")))
        return ModelResponseError(
            f"the model gave no answer on its last turn ({self.turns} of BUDO_MAX_TURNS="
            f"{self.budgets.max_turns}) — raise BUDO_MAX_TURNS, or use a model that answers "
            "when it has no tools")

    # --- one request, fitted to the model's context ------------------------------------------

    async def budget(self) -> ContextBudget:
        if self.context is None:
            found: tuple[int, str] | None = None
            discover = getattr(self.model, "context_window", None)
            if discover is not None:
                try:
                    found = await discover()
                except ModelError:
                    found = None
            window, source = found or (self.budgets.context_tokens, "BUDO_CONTEXT_TOKENS")
            self.context = ContextBudget(window, source)
            # A server that counts the reply cap against the window (vLLM) needs it kept free.
            cap = getattr(self.model, "max_output_tokens", None)
            if isinstance(cap, int) and cap > 0:
                self.context.reply_reserve = min(cap, window // 2)
        return self.context

    async def ask(self, schemas: list[dict[str, Any]]
                  ) -> tuple[Completion, list[dict[str, Any]]]:
        """One completion for the conversation as it stands, made to fit the context first.
        Overflow: compact harder and retry; again: no tools, answer from what is there.
        Silent truncation by the server: say so, shrink the budget, and ask again once."""
        budget = await self.budget()
        overflows = 0
        truncation_retried = False
        while True:
            schemas = await self.fit(budget, schemas, overflows)
            raw = budget.raw(self.messages, schemas or None)
            estimate = math.ceil(raw * budget.scale)
            chars = sum(len(str(m.get("content") or "")) for m in self.messages)
            await self.emit(ModelRequest(run_id=self.run_id, turn=self.turns,
                                         messages=len(self.messages), chars=chars,
                                         tools_offered=len(schemas), estimated_tokens=estimate,
                                         context_window=budget.window))
            started = time.monotonic()
            try:
                reply = await self.model.complete(
                    self.messages, tools=schemas or None,
                    tool_choice="auto" if schemas else None)
            except ContextOverflow as exc:
                overflows += 1
                if overflows > 2 or (overflows == 2 and not schemas):
                    raise
                budget.shrink_to(exc.context_tokens or int(estimate * 0.8),
                                 "the server's overflow error")
                continue
            self._asked_for = time.monotonic() - started
            if (reply.usage.estimated or reply.usage.prompt_tokens <= 0
                    or not getattr(self.model, "counts_prompt_in_full", True)):
                return reply, schemas
            kept = [m for m in self.messages if m.get("role") == "system"] + self.messages[-1:]
            reading = budget.read_count(raw, reply.usage.prompt_tokens,
                                        floor=budget.estimate(kept, schemas or None))
            if reading is None:
                return reply, schemas
            await self.emit(ContextTruncated(
                run_id=self.run_id, turn=self.turns, estimated_tokens=estimate,
                reported_tokens=reply.usage.prompt_tokens, window=reading,
                message=prompts.truncation_notice(estimate, reply.usage.prompt_tokens,
                                                  reading)))
            if truncation_retried:
                return reply, schemas
            truncation_retried = True  # that reply was written without the dropped messages
            self.tokens += reply.usage.total
            budget.shrink_to(reading, INFERRED)

    async def fit(self, budget: ContextBudget, schemas: list[dict[str, Any]],
                  overflows: int) -> list[dict[str, Any]]:
        """Compact until the request fits; when even the hardest compaction does not, take the
        tools away and ask for the answer. Returns the schemas to offer."""
        done = budget.fit(self.messages, schemas or None, hardest=3)
        if done is not None and not done.fits and schemas:
            schemas = []
            self.context_full = True
            self.messages.append({"role": "user", "content": prompts.CONTEXT_FULL_NOTE})
            again = budget.fit(self.messages, None, hardest=3)
            if again is not None:
                done = again
        if done is not None:
            await self.emit(ContextCompacted(
                run_id=self.run_id, turn=self.turns,
                reason="overflow" if overflows else "budget", window=budget.window,
                source=budget.source, before_tokens=done.before, after_tokens=done.after,
                level=done.level, call_ids=done.compacted_calls, fits=done.fits))
        elif overflows == 2 and schemas:
            schemas = []
            self.context_full = True
            self.messages.append({"role": "user", "content": prompts.CONTEXT_FULL_NOTE})
        return schemas

    # --- one tool call ----------------------------------------------------------------------

async def run_investigation(
    question: str,
    *,
    run_id: str,
    model: ChatModel,
    tools: Sequence[ToolSpec],
    sinks: Sequence[EventSink],
    approver: Approver,
    budgets: Budgets = Budgets(),
    namespace: str | None = None,
    requester: str | None = None,
    history: list[dict[str, Any]] | None = None,
    stop_reason: Callable[[], Stop] | None = None,
) -> RunOutcome:
    """Run one investigation to its end and emit exactly one terminal event (verdict, failed,
    cancelled or interrupted) — the one place a run's end is decided. Never raises for model,
    tool or budget trouble, nor for a bug in a tool or sink: those end as a failed run. Task
    cancellation ends the run as ``stop_reason()`` says (default: cancelled)."""
    messages = list(history) if history else [{"role": "system", "content": prompts.SYSTEM_PROMPT}]
    messages.append(_ask(question, namespace))
    run = _Run(run_id, {t.name: t for t in tools}, list(sinks), approver, budgets, messages,
               model=model)

    def outcome(status: Any, verdict: dict[str, Any] | None = None,
                reason: str | None = None) -> RunOutcome:
        return RunOutcome(run_id, status, verdict, run.turns, run.tokens, reason, run.messages)

    internal = False
    try:
        async with asyncio.timeout(budgets.run_timeout):
            await run.emit(RunStarted(run_id=run_id, question=question, namespace=namespace,
                                      model=getattr(model, "model", "?"),
                                      max_turns=budgets.max_turns, tools=sorted(run.tools),
                                      requester=requester))
            verdict: Verdict | None = None
            while verdict is None:
                verdict = await run.turn(last=run.turns + 1 >= budgets.max_turns)
            forced = run.turns >= budgets.max_turns
            await run.emit(VerdictReached(run_id=run_id, verdict=verdict.to_dict(),
                                          turns=run.turns, tokens=run.tokens, truncated=forced))
            return outcome("succeeded", verdict.to_dict())
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        stop = stop_reason() if stop_reason is not None else Stop()
        ended: Terminal = (
            RunInterrupted(run_id=run_id, reason=stop.reason, turns=run.turns,
                           tokens=run.tokens)
            if stop.kind == "interrupted" else
            RunCancelled(run_id=run_id, reason=stop.reason, turns=run.turns, tokens=run.tokens,
                         by=stop.by))
        await _final(run, ended)
        return outcome(stop.kind, reason=stop.reason)
    except TimeoutError:
        error: Exception = BudgetExceeded(
            f"wall-clock budget exhausted after {budgets.run_timeout:g}s"
        )
    except BudoError as exc:  # model unreachable, token budget, a broken sink
        error = exc
    except Exception as exc:  # our own bug: the run still ends, recorded and shown
        log.exception("run %s: internal error", run_id)
        error, internal = exc, True
    reason = f"internal error: {type(error).__name__}: {error}" if internal else str(error)
    await _final(run, RunFailed(run_id=run_id, reason=reason, error_type=type(error).__name__,
                                turns=run.turns, tokens=run.tokens, internal=internal))
    return outcome("failed", reason=reason)


def past_conversation(question: str, namespace: str | None, answer: str) -> list[dict[str, Any]]:
    """The conversation of an earlier run, rebuilt from its question and final answer (when
    its full message list is gone, e.g. after a restart): the ``history`` of a follow-up."""
    return [{"role": "system", "content": prompts.SYSTEM_PROMPT}, _ask(question, namespace),
            {"role": "assistant", "content": answer}]


def _ask(question: str, namespace: str | None) -> dict[str, Any]:
    return {"role": "user", "content": prompts.first_user_message(question, namespace)}


async def _final(run: _Run, event: Terminal) -> None:
    """Emit the terminal event to every sink still standing. A sink failing here has nothing
    left to stop, so its error is dropped rather than masking the original outcome. Shielded:
    a second cancellation (a shutdown that stops waiting) still lets the end be recorded."""

    async def deliver() -> None:
        for sink in run.sinks:
            try:
                await sink.emit(event)
            except Exception:  # see docstring
                log.warning("run %s: a sink could not record %s", run.run_id, event.kind,
                            exc_info=True)

    task = asyncio.ensure_future(deliver())
    _ENDING.add(task)  # the loop holds tasks weakly: keep it alive if we stop waiting
    task.add_done_callback(_ENDING.discard)
    await asyncio.shield(task)


_ENDING: set[asyncio.Future[None]] = set()


def _assistant_message(content: str, calls: list[ToolCall]) -> dict[str, Any]:
    # "content": "" rather than None: some servers 500 on a null content next to tool_calls.
    message: dict[str, Any] = {"role": "assistant", "content": content or ""}
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function",
             # Arguments that did not parse go back as {} (the parse error is the tool
             # result): echoing them verbatim makes Ollama and older vLLM refuse every
             # later request with a 400.
             "function": {"name": c.name,
                          "arguments": json.dumps(c.arguments if c.arguments is not None
                                                  else {})}}
            for c in calls
        ]
    return message


