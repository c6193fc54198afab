"""The placement model of one planning call: translation tables, node costs, routing SWAPs (FR-004, FR-016).

:class:`PlacementModel` translates the circuit's gates into each native gate
set once (:mod:`qb2.compiler.translation`), holds each node's cost constants
(:mod:`qb2.compiler.cost`) and the gates it supports, counts the SWAPs a
node with a coupling map inserts per fragment (:mod:`qb2.compiler.routing`),
and builds the :class:`qb2.compiler.problem.Problem` of a fragmentation under
given weights (vectorised over nodes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from qb2.compiler.cost import CostWeights, Terms, fragment_terms, node_cost
from qb2.compiler.dag import FragmentDAG
from qb2.compiler.ir import CircuitIR
from qb2.compiler.options import PlannerOptions
from qb2.compiler.placement import NodeCapability
from qb2.compiler.problem import INF, Problem
from qb2.compiler.routing import SWAP_TWO_QUBIT_GATES, fragment_routing_swaps
from qb2.compiler.translation import NativeCount, native_counts
from qb2.protocol.advert import ServiceAdvertisement


class PlacementModel:
    """Translation tables, node costs and per-fragment counts of one planning call."""

    def __init__(
        self,
        ir: CircuitIR,
        nodes: Sequence[ServiceAdvertisement],
        options: PlannerOptions,
    ) -> None:
        self.ir = ir
        self.adverts = tuple(nodes)
        self.options = options
        self.gates = tuple(sorted({op.name for op in ir.operations}))
        self.costs = tuple(
            node_cost(
                n,
                link_rtt_s=options.link_rtt_s,
                default_link_rtt_s=options.default_link_rtt_s,
                queue_wait_s=options.queue_wait_s,
                link_fidelities=options.link_fidelities,
                link_fidelity=options.link_fidelity,
            )
            for n in nodes
        )
        sets: dict[tuple[str, ...], int] = {}
        self.set_of: list[int] = []
        for n in nodes:
            self.set_of.append(sets.setdefault(n.native_gates, len(sets)))
        self.native_sets = sorted(sets, key=lambda s: sets[s])
        self.tables: list[dict[str, NativeCount | None]] = [
            native_counts(s, self.gates) for s in self.native_sets
        ]
        self.supported = tuple(
            frozenset(g for g, c in self.tables[self.set_of[j]].items() if c is not None)
            for j in range(len(nodes))
        )
        #: node index -> advertised coupling map, for nodes that have one (FR-016)
        self.coupled = {j: tuple(n.coupling_map) for j, n in enumerate(nodes) if n.coupling_map is not None}
        self._swaps: dict[tuple[tuple[int, ...], int], int] = {}

    def routing_swaps(self, operation_indices: tuple[int, ...], j: int) -> int:
        """SWAPs node ``j`` inserts to route the fragment of ``operation_indices`` (0 without a coupling map)."""
        coupling = self.coupled.get(j)
        if coupling is None:
            return 0
        key = (operation_indices, j)
        if key not in self._swaps:
            self._swaps[key] = fragment_routing_swaps((self.ir.operations[i] for i in operation_indices), coupling)
        return self._swaps[key]

    def views(self) -> tuple[NodeCapability, ...]:
        """Each node's advert with the circuit gates it supports, in the model's node order."""
        return tuple(NodeCapability(a, s) for a, s in zip(self.adverts, self.supported, strict=True))

    def problem(self, dag: FragmentDAG, weights: CostWeights) -> Problem:
        """The :class:`qb2.compiler.problem.Problem` of ``dag`` under ``weights`` (vectorised over nodes)."""
        ir, m, g = self.ir, len(dag.fragments), len(self.gates)
        index = {name: i for i, name in enumerate(self.gates)}
        counts = np.zeros((m, max(g, 1)))
        rows, cols = [], []
        for f in dag.fragments:
            for i in f.operation_indices:
                rows.append(f.index)
                cols.append(index[ir.operations[i].name])
        np.add.at(counts, (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)), 1.0)
        s = len(self.native_sets)
        one = np.zeros((max(g, 1), s))
        two = np.zeros((max(g, 1), s))
        bad = np.zeros((max(g, 1), s))
        for si, table in enumerate(self.tables):
            for gate, c in table.items():
                if c is None:
                    bad[index[gate], si] = 1.0
                else:
                    one[index[gate], si] = c.one_qubit
                    two[index[gate], si] = c.two_qubit
        n1 = (counts @ one)[:, self.set_of]  # m x k, exact small integers
        n2 = (counts @ two)[:, self.set_of]
        unsupported = (counts @ bad)[:, self.set_of] > 0
        cost = self.costs
        widths = np.array([len(f.qubits) for f in dag.fragments], dtype=np.int64)[:, None]
        lo = np.array([c.min_width for c in cost])[None, :]
        hi = np.array([c.capacity for c in cost])[None, :]
        feasible = (~unsupported) & (widths >= lo) & (widths <= hi)
        for j in self.coupled:  # routing SWAPs as extra 2-qubit gates (FR-016)
            for f in dag.fragments:
                if feasible[f.index, j]:
                    n2[f.index, j] += SWAP_TWO_QUBIT_GATES * self.routing_swaps(f.operation_indices, j)
        t1 = np.array([c.t1_s for c in cost])
        t2 = np.array([c.t2_s for c in cost])
        r1 = np.array([c.r1 for c in cost])
        r2 = np.array([c.r2 for c in cost])
        invoke = np.array([c.invoke_s for c in cost])
        price = np.array([c.price for c in cost])
        lat = n1 * t1 + n2 * t2 + invoke
        risk = n1 * r1 + n2 * r2
        total = weights.latency * lat + weights.fidelity_risk * risk + weights.entanglement * 0.0
        total = total + weights.price * price
        total = np.where(feasible, total, INF)
        order = np.argsort(total, axis=1, kind="stable")
        counts_ok = feasible.sum(axis=1)
        frag_order = tuple(
            tuple(order[i, : counts_ok[i]].tolist()) for i in range(m)
        )
        costs_ = self.costs

        def terms(i: int, j: int) -> Terms:
            """Terms of fragment ``i`` on node ``j`` (the search's evaluation uses them)."""
            return fragment_terms(costs_[j], int(n1[i, j]), int(n2[i, j]))

        return Problem.build(
            num_qubits=ir.num_qubits,
            nodes=cost,
            weights=weights,
            frag_qubits=[f.qubits for f in dag.fragments],
            frag_cost=total.tolist(),
            frag_order=frag_order,
            frag_terms=terms,
            measured=[mm.qubit for mm in ir.measurements],
            ops=[len(f.operation_indices) for f in dag.fragments],
            ebit_generation_s=self.options.ebit_generation_s,
        )

    def translated(self, dag_fragment_ops: Sequence[int], j: int) -> dict[str, int]:
        """Native gate counts of operations ``dag_fragment_ops`` on node ``j``."""
        table = self.tables[self.set_of[j]]
        out: Counter[str] = Counter()
        for name, times in sorted(Counter(self.ir.operations[i].name for i in dag_fragment_ops).items()):
            count = table[name]
            assert count is not None  # the node was capable
            for native, n in count.ops:
                out[native] += n * times
        return dict(sorted(out.items()))
