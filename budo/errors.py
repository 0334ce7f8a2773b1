"""budo's error tree: shallow on purpose, httpx style.

Every module that talks to an external system (model endpoint, Kubernetes API, SQLite, Slack)
translates that system's exceptions into one of these with ``raise ... from exc``, so callers
catch *our* types and the original stays on ``__cause__`` for the log.

    BudoError                      base; ``str(err)`` is one line a human can act on
    ├── ConfigError                a setting is missing or invalid (names the variable)
    ├── ScenarioError              a scenario file fails validation (names file, path, problem)
    ├── ModelError                 the chat-model endpoint failed after retries
    │   ├── ModelUnreachable       connect refused / DNS / TLS: nothing answers at the URL
    │   ├── ModelNotFound          the endpoint answers but the model is not there (ollama pull)
    │   ├── ModelTimeout           the endpoint accepted the request but did not answer in time
    │   └── ModelResponseError     an HTTP error or a body we cannot use
    │       ├── ModelMisconfigured a server setting must change (--jinja, tool parser); no retry
    │       └── ContextOverflow    the prompt exceeds the server's context (``.context_tokens``)
    ├── ClusterError               the Kubernetes API failed (tools turn these into tool errors)
    │   ├── ClusterUnreachable     connection refused / timeout / no kubeconfig
    │   ├── Forbidden              403 (RBAC) or a namespace outside BUDO_NAMESPACES
    │   ├── NotFound               404
    │   └── Conflict               409: changed since approved (uid or resourceVersion precondition)
    ├── StoreError                 the audit store failed (corrupt file, read-only, disk full)
    │   ├── RunAlreadyActive       a thread already has a running run (``.run_id`` names it)
    │   ├── RunNotFound            no run with that id
    │   └── ApprovalNotFound       no approval with that id (a stale button)
    ├── SlackError                 the Slack Web API failed after retries
    └── RunAborted                 a run ended without a verdict
        └── BudgetExceeded         tokens or wall clock ran out
"""

from __future__ import annotations


class BudoError(Exception):
    """Base of every error budo raises on purpose. The message is one actionable line."""


class ConfigError(BudoError):
    """A setting is missing or invalid. The message names the environment variable."""


class ScenarioError(BudoError):
    """A scenario file is malformed. The message names the file, the path in it and the problem."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file, self.path, self.problem = file, path, problem
        super().__init__(f"{file}: {path}: {problem}")


class ModelError(BudoError):
    """The chat-model endpoint failed (after retries where retrying made sense)."""


class ModelUnreachable(ModelError):
    """Nothing answers at the model URL."""


class ModelNotFound(ModelError):
    """The endpoint answers but does not serve the configured model."""


class ModelTimeout(ModelError):
    """The endpoint did not answer within the client timeout."""


class ModelResponseError(ModelError):
    """The endpoint answered with an HTTP error or a body we cannot use."""


class ModelMisconfigured(ModelResponseError):
    """The server refuses because of how it is configured; the message names the flag to set.
    Retrying cannot help, so the client never retries these."""


class ContextOverflow(ModelResponseError):
    """The server refused a prompt longer than its context window (vLLM, llama.cpp, OpenAI, LM
    Studio each word it differently). ``context_tokens`` is the window when the server said it,
    ``prompt_tokens`` the prompt size it counted; the message names the setting to raise."""

    def __init__(self, message: str, context_tokens: int | None = None,
                 prompt_tokens: int | None = None) -> None:
        super().__init__(message)
        self.context_tokens, self.prompt_tokens = context_tokens, prompt_tokens


class ToolArgumentError(BudoError, ValueError):
    """A tool call's arguments do not fit its schema or Kubernetes' naming rules; the message
    is the one-line tool error the model gets (no API call is made, no card is posted)."""


class ClusterError(BudoError):
    """The Kubernetes API failed."""


class ClusterUnreachable(ClusterError):
    """No API server answers, or there is no usable kubeconfig/in-cluster config."""


class Forbidden(ClusterError):
    """RBAC said no (403), or the namespace is outside BUDO_NAMESPACES."""


class NotFound(ClusterError):
    """The object does not exist (404)."""


class Conflict(ClusterError):
    """409: the object changed since it was approved (uid or resourceVersion precondition)."""


class StoreError(BudoError):
    """The audit store failed."""


class RunAlreadyActive(StoreError):
    """A thread already has a running investigation; ``run_id`` is the one running."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"an investigation is already running in this thread: {run_id}")


class RunNotFound(StoreError):
    """No run has that id."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r} (see `budo runs`)")


class ApprovalNotFound(StoreError):
    """No approval has that id (decide/expire/get on an unknown id raise this)."""

    def __init__(self, approval_id: str) -> None:
        self.approval_id = approval_id
        super().__init__(f"no approval with id {approval_id!r}")


class SlackError(BudoError):
    """The Slack Web API failed after retries."""


class RunAborted(BudoError):
    """A run ended without a verdict."""


class BudgetExceeded(RunAborted):
    """A run budget (tokens, wall clock) ran out."""
