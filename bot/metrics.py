"""Prometheus metrics for `budo serve`: one registry per bot, served at GET /metrics.

The agent's typed events carry everything worth counting, so most metrics come from a
``MetricsSink`` beside the audit and Slack sinks (the loop knows nothing of Prometheus);
the poster counts Slack API errors and 429s; the run manager sets active/queued gauges and
counts how runs end.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` histograms, base units).
Labels are bounded sets (tool names, statuses, Slack method names), never run ids or users.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from agent import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    ModelReply,
    ToolFinished,
)

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsSink"]

# The classic text format every Prometheus (2.x and 3.x) scrapes; our names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Runs last seconds to minutes; a 14B model on CPU answers in 1-120 s; tools in ms to seconds.
RUN_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800)
MODEL_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
APPROVAL_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800)


class Metrics:
    """Every metric budo exports, in its own registry (two bots in one process — tests —
    never collide, and nothing is registered at import time)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.runs = Counter("budo_runs_total", "Runs by final status.", ["status"], registry=r)
        self.run_duration = Histogram("budo_run_duration_seconds", "Wall clock of a run, "
                                      "start to final status.", buckets=RUN_BUCKETS, registry=r)
        self.active_runs = Gauge("budo_active_runs", "Runs in flight.", registry=r)
        self.queued_runs = Gauge("budo_queued_runs", "Runs waiting for a slot "
                                 "(BUDO_MAX_RUNS).", registry=r)
        self.model_latency = Histogram("budo_model_request_seconds", "Latency of one model "
                                       "request (reply received).", buckets=MODEL_BUCKETS,
                                       registry=r)
        self.model_tokens = Counter("budo_model_tokens_total", "Tokens used, by kind.",
                                    ["kind"], registry=r)
        self.tool_calls = Counter("budo_tool_calls_total", "Tool calls by tool and outcome.",
                                  ["tool", "outcome"], registry=r)
        self.tool_latency = Histogram("budo_tool_call_seconds", "Tool call latency.", ["tool"],
                                      buckets=TOOL_BUCKETS, registry=r)
        self.approvals = Counter("budo_approvals_total", "Approvals by decision.",
                                 ["decision"], registry=r)
        self.approval_wait = Histogram("budo_approval_decision_seconds", "Time from the "
                                       "approval card to the decision.",
                                       buckets=APPROVAL_BUCKETS, registry=r)
        self.slack_errors = Counter("budo_slack_api_errors_total", "Slack Web API calls that "
                                    "failed (after retries), by method and error.",
                                    ["method", "error"], registry=r)
        self.slack_ratelimited = Counter("budo_slack_ratelimited_total", "HTTP 429 answers from "
                                         "Slack (each one, retried or not), by method.",
                                         ["method"], registry=r)
        self.verdict_delivery = Counter("budo_outcome_deliveries_total", "Where a run's "
                                        "outcome landed: channel, thread, ephemeral or none.",
                                        ["via"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def run_ended(self, status: str, duration_s: float) -> None:
        self.runs.labels(status).inc()
        self.run_duration.observe(max(0.0, duration_s))

    def slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method, error).inc()

    def slack_429(self, method: str) -> None:
        self.slack_ratelimited.labels(method).inc()


class MetricsSink:
    """An EventSink: model latency and tokens, tool calls and latency, approvals and their
    time to decision. One per run (it pairs approval cards with decisions)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._approval_started: dict[str, float] = {}

    async def emit(self, event: Event) -> None:
        m = self.metrics
        if isinstance(event, ModelReply):
            m.model_latency.observe(event.duration_s)
            m.model_tokens.labels("prompt").inc(event.prompt_tokens)
            m.model_tokens.labels("completion").inc(event.completion_tokens)
        elif isinstance(event, ToolFinished):
            m.tool_calls.labels(event.tool, "ok" if event.ok else "error").inc()
            m.tool_latency.labels(event.tool).observe(event.duration_s)
        elif isinstance(event, ApprovalRequested):
            self._approval_started[event.call_id] = time.monotonic()
        elif isinstance(event, ApprovalDecided):
            # Nobody decided: it expired (or nobody could be asked) — denied by default.
            decision = ("approved" if event.approved else
                        "denied" if event.decided_by else "expired")
            m.approvals.labels(decision).inc()
            started = self._approval_started.pop(event.call_id, None)
            if started is not None:
                m.approval_wait.observe(time.monotonic() - started)
