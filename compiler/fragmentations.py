"""The candidate fragmentations the planner places, and which of them nodes can run (FR-004).

:func:`fragmentations` splits the circuit with width caps ``cap, cap - 1,
...`` (:func:`qb2.compiler.partition.split_fragments`), never growing a
fragment into one no node could run; :func:`check_fragments` names the first
fragment no node accepts, :func:`placeable` filters the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from qb2.compiler.dag import FragmentDAG
from qb2.compiler.ir import CircuitIR
from qb2.compiler.partition import AcceptsFragment, split_fragments
from qb2.compiler.placement import NodeCapability, no_candidate
from qb2.compiler.placement_model import PlacementModel


def accepts_predicate(views: Sequence[NodeCapability]) -> AcceptsFragment:
    """Memoised "some node runs these gates at this width" predicate for the partitioner."""
    cache: dict[tuple[frozenset[str], int], bool] = {}

    def accepts(gates: frozenset[str], width: int) -> bool:
        key = (gates, width)
        if key not in cache:
            cache[key] = any(v.accepts(gates, width) for v in views)
        return cache[key]

    return accepts


def fragmentations(ir: CircuitIR, model: PlacementModel, cap: int) -> list[FragmentDAG]:
    """The candidate fragmentations: width caps ``cap, cap - 1, ...`` (distinct results).

    At most ``options.partition_candidates`` caps, never below the widest
    gate or 1, and only the first when the circuit has more than
    ``options.partition_search_max_ops`` operations (the scaling budget).
    """
    opts = model.options
    widest = max((len(op.qubits) for op in ir.operations), default=1)
    count = opts.partition_candidates if len(ir.operations) <= opts.partition_search_max_ops else 1
    accepts = accepts_predicate(model.views())
    dags: list[FragmentDAG] = []
    for width in range(cap, max(widest, 1) - 1, -1):
        if len(dags) >= count:
            break
        dag = split_fragments(ir, width, opts.max_fragment_ops, accepts=accepts)
        if all(d.fragments != dag.fragments for d in dags):
            dags.append(dag)
    return dags


def check_fragments(ir: CircuitIR, dag: FragmentDAG, views: Sequence[NodeCapability],
                    listed: Sequence[NodeCapability]) -> None:
    """Raise the diagnosis of the first fragment of ``dag`` that no node of ``views`` accepts.

    ``listed``: the same views in the order the error lists them (by ``node_id``).

    Raises:
        InfeasiblePlanError: :func:`qb2.compiler.placement.no_candidate`'s error.
    """
    for fragment in dag.fragments:
        gates = frozenset(ir.operations[i].name for i in fragment.operation_indices)
        if not any(v.accepts(gates, fragment.width) for v in views):
            raise no_candidate(fragment.fragment_id, gates, fragment.width, listed)


def placeable(ir: CircuitIR, dag: FragmentDAG, views: Sequence[NodeCapability]) -> bool:
    """Whether some node of ``views`` accepts every fragment of ``dag``."""
    return all(
        any(v.accepts(frozenset(ir.operations[i].name for i in f.operation_indices), f.width)
            for v in views)
        for f in dag.fragments
    )
