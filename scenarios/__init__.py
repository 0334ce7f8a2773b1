"""Replayed incidents: the scenario format, its loader, and the replay Kubernetes API server.

See scenarios/FORMAT.md. ``load_scenario("checkout-typo")`` gives a validated ``Scenario``;
``scenarios.replay.ReplayServer`` serves one to the kubernetes client and kubectl.
"""

from scenarios.load import bundled_scenarios, load_scenario
from scenarios.model import ContainerLogs, Scenario

__all__ = ["ContainerLogs", "Scenario", "bundled_scenarios", "load_scenario"]
