"""Fixtures for every part's tests live in tests/fixtures/, one module per stand-in:
cluster (replay Kubernetes API), model (scripted OpenAI-compatible server), store (audit DB),
slack (Slack Web API emulator)."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.model",
    "tests.fixtures.store",
    "tests.fixtures.slack",
]
