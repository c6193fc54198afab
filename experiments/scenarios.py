"""The harness's clusters and fault scenarios (FR-013): which nodes, which daemon settings, which fault parameters.

What each scenario does over a run is told in :mod:`qb2.experiments.harness`;
this module holds its parameters and the cluster it runs on:

- the nodes: :func:`node_specs` (names from :data:`NODE_NAMES`, profiles
  cycling over :data:`NODE_PROFILES`), :func:`best_profile` and
  :func:`slowed_nodes` (the preferred nodes, which ``latency`` slows and
  ``degrade`` degrades);
- the fault parameters (:data:`EXECUTE_TIMEOUT_S`, :data:`LATENCY_SPIKE_S`,
  :data:`DROP_SLOWDOWN_S`, :data:`DEGRADE_FACTOR` ...; seconds);
- :func:`scenario_cluster`: node specs and daemon environment of one scenario
  (:data:`BASE_ENV` plus the scenario's runtime settings; nodes of
  :data:`CONTROL_SCENARIOS` accept faults over the control protocol).
"""

from __future__ import annotations

from collections.abc import Iterable

from qb2.client.cluster import NodeSpec
from qb2.compiler.capability import has_entangler
from qb2.experiments.suites import ALL_SCENARIOS
from qb2.service_node.config import PROFILES

__all__ = ["BASE_ENV", "CONTROL_SCENARIOS", "DEGRADE_FACTOR", "DROP_SLOWDOWN_S", "EXECUTE_TIMEOUT_S",
           "LATENCY_SPIKE_S", "LATENCY_TIMEOUT_PER_MIB_S", "MAX_ATTEMPTS", "NODE_NAMES", "NODE_PROFILES",
           "best_profile", "node_specs", "scenario_cluster", "slowed_nodes"]

#: Profiles the distributed nodes cycle through.
NODE_PROFILES: tuple[str, ...] = ("ibm-like", "ion-like", "cz-native", "single-qubit")
#: Node names, in order; past the tenth node a name repeats with the node's index appended.
NODE_NAMES: tuple[str, ...] = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                               "india", "juliet")
#: Coordinator execute timeout in the latency scenario, seconds (plus LATENCY_TIMEOUT_PER_MIB_S per MiB sent).
EXECUTE_TIMEOUT_S = 0.4
#: Execute-timeout allowance per MiB of state sent in the latency scenario, seconds: a 12-qubit statevector
#: (64 KiB) adds 3 ms, a 17-qubit one (2 MiB) 0.1 s, so wide fragments on healthy nodes do not time out.
LATENCY_TIMEOUT_PER_MIB_S = 0.05
#: Invocations per fragment in the latency scenario before the runtime falls back.
MAX_ATTEMPTS = 2
#: Per-request latency injected on the slowed nodes in the latency scenario, seconds (> EXECUTE_TIMEOUT_S).
LATENCY_SPIKE_S = 1.0
#: Fidelity multiplier in the degrade scenario.
DEGRADE_FACTOR = 0.9
#: ``drop_node``: injected delay per execute request (seconds) until the struck job is final.
DROP_SLOWDOWN_S = 0.05
#: Environment for every scenario's daemons: fast backoff, a registry TTL longer than any job, and link
#: probes off so that the planner uses the nominal RTT for every node (:mod:`qb2.experiments.reproducibility`).
BASE_ENV = {"QB2_RUNTIME__BACKOFF_BASE_S": "0.05", "QB2_DISCOVERY__REGISTRY_TTL_S": "30",
            "QB2_QUALITY__PROBE_INTERVAL_S": "0"}
#: Scenarios whose nodes serve the control protocol (faults sent at run time).
CONTROL_SCENARIOS = frozenset({"latency", "drop_node", "degrade"})


def node_specs(count: int, ideal: bool = False) -> list[NodeSpec]:
    """``count`` node specs cycling over :data:`NODE_PROFILES` (all ``ideal`` when ``ideal``)."""
    return [NodeSpec(NODE_NAMES[i % len(NODE_NAMES)] + ("" if i < len(NODE_NAMES) else str(i)),
                     "ideal" if ideal else NODE_PROFILES[i % len(NODE_PROFILES)]) for i in range(count)]


def best_profile(specs: Iterable[NodeSpec]) -> str:
    """The profile with the highest ``gate_2q`` among those with an entangling native gate.

    A profile without entangling gates (``single-qubit``) advertises
    ``gate_2q = 1.0`` as a placeholder and is never the best; it is chosen only
    when no profile has an entangling gate.
    """
    profiles = {s.profile or "ibm-like" for s in specs}
    entangling = {p for p in profiles if has_entangler(PROFILES[p]["native_gates"])} or profiles
    return max(entangling, key=lambda p: (PROFILES[p]["fidelity"]["gate_2q"], p))


def scenario_cluster(scenario: str, specs: list[NodeSpec], ideal: bool) -> tuple[list[NodeSpec], dict[str, str]]:
    """Node specs and daemon environment for ``scenario`` (the scenarios: :mod:`qb2.experiments.harness`).

    Faults themselves are sent at run time over the control protocol
    (:func:`qb2.experiments.fault_injection.send_faults`); nodes of :data:`CONTROL_SCENARIOS` start with
    ``--accept-control``.

    Raises:
        ValueError: unknown scenario.
    """
    if scenario not in ALL_SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {ALL_SCENARIOS}")
    env = dict(BASE_ENV)
    if ideal:
        env["QB2_COMPILER__LINK_FIDELITY"] = "1.0"
    extra = ["--accept-control"] if scenario in CONTROL_SCENARIOS else []
    out = [NodeSpec(s.name, s.profile, [*s.extra_args, *extra], s.device) for s in specs]
    if scenario == "latency":
        env.update({"QB2_RUNTIME__EXECUTE_TIMEOUT_S": str(EXECUTE_TIMEOUT_S),
                    "QB2_RUNTIME__EXECUTE_TIMEOUT_PER_MIB_S": str(LATENCY_TIMEOUT_PER_MIB_S),
                    "QB2_RUNTIME__MAX_ATTEMPTS": str(MAX_ATTEMPTS)})
    return out, env


def slowed_nodes(specs: list[NodeSpec]) -> list[str]:
    """Names of the nodes ``latency`` slows and ``degrade`` degrades: every node of :func:`best_profile`."""
    best = best_profile(specs)
    return [s.name for s in specs if (s.profile or "ibm-like") == best]
