"""Configuration: read from the environment in exactly one place, every field documented.

Nothing reads ``os.environ`` at import time. Front ends call ``Settings.from_env()`` once at
startup; a missing or invalid value raises ``ConfigError`` naming the variable, which the CLI
prints as one line before exiting non-zero. Everything else receives a ``Settings`` (or the
plain values it needs) as an argument, so tests build one with ``Settings(...)`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from budo.errors import ConfigError

SLACK_DEFAULT_API_URL = "https://slack.com/api/"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/budo`` or ``~/.local/state/budo``: where the audit DB and JSONL live."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "budo"


@dataclass(frozen=True)
class Settings:
    """Every setting budo reads. The ``env`` metadata names the variable; the README table
    is generated from the same docstrings (see ``settings_table``)."""

    llm_url: str = field(
        default="http://localhost:11434/v1",
        metadata={"env": "BUDO_LLM_URL", "doc": "OpenAI-compatible base URL (Ollama, vLLM, "
                  "llama.cpp, OpenAI); budo POSTs to `{url}/chat/completions`, or to Ollama's "
                  "native `/api/chat` beside it when the server is Ollama."},
    )
    llm_model: str = field(
        default="qwen2.5:14b",
        metadata={"env": "BUDO_LLM_MODEL", "doc": "Model name sent with every request."},
    )
    llm_api_key: str | None = field(
        default=None,
        metadata={"env": "BUDO_LLM_API_KEY", "doc": "Bearer token for the model endpoint, "
                  "if it needs one (OpenAI, a proxied vLLM). Never logged."},
    )
    llm_timeout: float = field(
        default=120.0,
        metadata={"env": "BUDO_LLM_TIMEOUT", "doc": "Seconds to wait for one model reply "
                  "before retrying (a 14B model on CPU can be slow)."},
    )
    llm_temperature: str = field(
        default="0",
        metadata={"env": "BUDO_LLM_TEMPERATURE", "empty": "", "doc": "Sampling temperature "
                  "sent with every request. Set it empty to send none (the server's default); "
                  "a model that refuses it (OpenAI gpt-5, o-series) is asked again without it."},
    )
    llm_max_output_tokens: int = field(
        default=0,
        metadata={"env": "BUDO_LLM_MAX_OUTPUT_TOKENS", "doc": "Cap on each reply's tokens "
                  "(`max_tokens`, `max_completion_tokens` where the server demands it, Ollama "
                  "`num_predict`). 0: not sent."},
    )
    context_tokens: int = field(
        default=32768,
        metadata={"env": "BUDO_CONTEXT_TOKENS", "doc": "The model's context window in tokens, "
                  "when the server does not publish it (Ollama `/api/show`, vLLM "
                  "`max_model_len`, llama.cpp `n_ctx` are read first); on Ollama it also caps "
                  "the `num_ctx` budo asks for. Older tool results are compacted to fit."},
    )
    db_path: str = field(
        default="",
        metadata={"env": "BUDO_DB", "doc": "SQLite audit database path; `:memory:` for tests. "
                  "Default `$XDG_STATE_HOME/budo/budo.db` (`~/.local/state/budo/budo.db`)."},
    )
    namespaces: tuple[str, ...] = field(
        default=(),
        metadata={"env": "BUDO_NAMESPACES", "doc": "Comma-separated namespaces the tools may "
                  "read and act on. Empty: every namespace RBAC allows."},
    )
    kubeconfig: str | None = field(
        default=None,
        metadata={"env": "KUBECONFIG", "doc": "Kubeconfig file for the cluster. Unset: "
                  "`~/.kube/config`, then the in-cluster service account."},
    )
    max_turns: int = field(
        default=15,
        metadata={"env": "BUDO_MAX_TURNS", "doc": "Model turns per run; the last turn is "
                  "offered no tools so the model must answer."},
    )
    max_tokens: int = field(
        default=200_000,
        metadata={"env": "BUDO_MAX_TOKENS", "doc": "Token budget per run (prompt + completion, "
                  "summed over turns)."},
    )
    run_timeout: float = field(
        default=600.0,
        metadata={"env": "BUDO_RUN_TIMEOUT", "doc": "Wall-clock budget per run, seconds "
                  "(approval waits included)."},
    )
    tool_timeout: float = field(
        default=30.0,
        metadata={"env": "BUDO_TOOL_TIMEOUT", "doc": "Seconds one tool call may take."},
    )
    verify_timeout: float = field(
        default=120.0,
        metadata={"env": "BUDO_VERIFY_TIMEOUT", "doc": "Seconds an approved rollout-changing "
                  "action is watched until its new pods are updated and ready (its own budget, "
                  "not the per-tool one)."},
    )
    max_replicas: int = field(
        default=50,
        metadata={"env": "BUDO_MAX_REPLICAS", "doc": "The most replicas the `scale` action may "
                  "ask for (0 ≤ replicas ≤ this)."},
    )
    tool_output_chars: int = field(
        default=8000,
        metadata={"env": "BUDO_TOOL_OUTPUT_CHARS", "doc": "A tool result longer than this "
                  "reaches the model as head + tail with an omission marker."},
    )
    slack_bot_token: str | None = field(
        default=None,
        metadata={"env": "SLACK_BOT_TOKEN", "doc": "Bot token (`xoxb-…`). Required by "
                  "`budo serve`."},
    )
    slack_signing_secret: str | None = field(
        default=None,
        metadata={"env": "SLACK_SIGNING_SECRET", "doc": "Verifies HTTP requests from Slack. "
                  "Required by `budo serve` in HTTP mode."},
    )
    slack_app_token: str | None = field(
        default=None,
        metadata={"env": "SLACK_APP_TOKEN", "doc": "App-level token (`xapp-…`). When set, "
                  "`budo serve` uses Socket Mode instead of HTTP."},
    )
    slack_api_url: str = field(
        default=SLACK_DEFAULT_API_URL,
        metadata={"env": "SLACK_API_URL", "doc": "Slack Web API base URL; every Web API call "
                  "(Socket Mode's `apps.connections.open` and file uploads too) goes here."},
    )
    oncall_users: tuple[str, ...] = field(
        default=(),
        metadata={"env": "BUDO_ONCALL_USERS", "doc": "Comma-separated Slack user IDs who may "
                  "approve mutating actions."},
    )
    oncall_usergroup: str | None = field(
        default=None,
        metadata={"env": "BUDO_ONCALL_USERGROUP", "doc": "A Slack usergroup ID whose members "
                  "may approve (members cached for a minute)."},
    )
    audit_key: str | None = field(
        default=None,
        metadata={"env": "BUDO_AUDIT_KEY", "doc": "Secret key (≥ 16 characters) that makes "
                  "the audit chain HMAC-SHA256: without it nobody holding the database file "
                  "can rewrite the trail so that `budo audit verify` passes. Unset: a plain "
                  "SHA-256 chain, reported as unkeyed. Never logged; keep it in a Secret."},
    )
    approval_timeout: float = field(
        default=600.0,
        metadata={"env": "BUDO_APPROVAL_TIMEOUT", "doc": "Seconds an approval stays open; "
                  "expired means denied."},
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every field from ``env`` (default ``os.environ``); raise ``ConfigError`` naming
        the variable on a bad value. Unset or empty variables keep the default."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name, "").strip()
            if not raw:
                if name in env and f.metadata.get("empty") is not None:
                    values[f.name] = f.metadata["empty"]  # set but empty means "none"
                continue
            values[f.name] = _parse(name, raw, f.default)
        if not values.get("db_path"):
            values["db_path"] = str(default_state_dir(env) / "budo.db")
        settings = cls(**values)  # type: ignore[arg-type]
        settings._check()
        return settings

    def _check(self) -> None:
        for name, value in (("BUDO_LLM_URL", self.llm_url), ("SLACK_API_URL", self.slack_api_url)):
            if not value.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
        positive = {
            "BUDO_MAX_TURNS": self.max_turns, "BUDO_MAX_TOKENS": self.max_tokens,
            "BUDO_RUN_TIMEOUT": self.run_timeout, "BUDO_TOOL_TIMEOUT": self.tool_timeout,
            "BUDO_TOOL_OUTPUT_CHARS": self.tool_output_chars, "BUDO_LLM_TIMEOUT": self.llm_timeout,
            "BUDO_APPROVAL_TIMEOUT": self.approval_timeout,
            "BUDO_VERIFY_TIMEOUT": self.verify_timeout,
        }
        for name, number in positive.items():
            if number <= 0:
                raise ConfigError(f"{name} must be greater than 0, got {number}")
        if self.llm_temperature:
            try:
                float(self.llm_temperature)
            except ValueError:
                raise ConfigError(f"BUDO_LLM_TEMPERATURE must be a number or empty, got "
                                  f"{self.llm_temperature!r}") from None
        if self.context_tokens < 1024:
            raise ConfigError(f"BUDO_CONTEXT_TOKENS must be at least 1024, got "
                              f"{self.context_tokens}")
        if self.llm_max_output_tokens < 0:
            raise ConfigError("BUDO_LLM_MAX_OUTPUT_TOKENS must be 0 (not sent) or more")
        if self.max_replicas < 0:
            raise ConfigError(f"BUDO_MAX_REPLICAS must be 0 or more, got {self.max_replicas}")
        if self.audit_key is not None and len(self.audit_key) < 16:
            raise ConfigError("BUDO_AUDIT_KEY must be at least 16 characters (a random "
                              "secret, e.g. `openssl rand -hex 32`)")

    @property
    def temperature(self) -> float | None:
        """BUDO_LLM_TEMPERATURE as a number, or None when it is set empty (send none)."""
        return float(self.llm_temperature) if self.llm_temperature else None

    def require_slack(self) -> None:
        """What `budo serve` needs: a bot token, and a signing secret unless in Socket Mode."""
        if not self.slack_bot_token:
            raise ConfigError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        if not self.slack_bot_token.startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        if self.slack_app_token:
            if not self.slack_app_token.startswith("xapp-"):
                raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        elif not self.slack_signing_secret:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is not set (needed in HTTP mode; set SLACK_APP_TOKEN "
                "for Socket Mode instead)"
            )
        if not self.oncall_users and not self.oncall_usergroup:
            raise ConfigError(
                "neither BUDO_ONCALL_USERS nor BUDO_ONCALL_USERGROUP is set: nobody could "
                "approve a mutating action"
            )

    @property
    def slack_base_url(self) -> str:
        """The Web API base URL with the trailing slash slack_sdk needs."""
        return self.slack_api_url.rstrip("/") + "/"


def _parse(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def settings_table() -> str:
    """The README's settings table, generated from the field metadata so the two cannot drift."""
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for f in fields(Settings):
        default = f.default
        shown = "" if default in (None, "", ()) else f"`{default}`"
        rows.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['doc']} |")
    return "\n".join(rows)
