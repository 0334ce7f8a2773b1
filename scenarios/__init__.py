"""Replayed incidents: the scenario format, its loader, and the replay Kubernetes API server.

See scenarios/FORMAT.md. ``load_scenario("checkout-typo")`` gives a validated ``Scenario``;
``scenarios.replay.ReplayServer`` serves one to the kubernetes client and kubectl.
"""

from scenarios.model import ContainerLogs, Scenario, bundled_scenarios, load_scenario

__all__ = ["ContainerLogs", "Scenario", "bundled_scenarios", "load_scenario"]
