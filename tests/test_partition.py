"""FR-004: splitting a circuit into dependency-safe fragments (state-handoff model)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit.quantum_info import Operator

from qb2.compiler import (
    CircuitIR,
    FragmentDAG,
    InfeasiblePlanError,
    split_fragments,
    to_quantum_circuit,
)
from qb2.compiler.ir import Operation

GATES = {"h": 1, "x": 1, "rz": 1, "cx": 2, "cz": 2, "ccx": 3}


@st.composite
def circuits(draw: st.DrawFn, max_qubits: int = 8, max_ops: int = 40) -> CircuitIR:
    n = draw(st.integers(min_value=1, max_value=max_qubits))
    names = [g for g, arity in GATES.items() if arity <= n]
    ops = []
    for _ in range(draw(st.integers(min_value=0, max_value=max_ops))):
        name = draw(st.sampled_from(names))
        qubits = tuple(draw(st.permutations(range(n)))[: GATES[name]])
        params = (draw(st.floats(min_value=-3.2, max_value=3.2)),) if name == "rz" else ()
        ops.append(Operation(name=name, qubits=qubits, params=params))
    return CircuitIR(num_qubits=n, num_clbits=0, operations=tuple(ops))


def _check_structure(ir: CircuitIR, dag: FragmentDAG, cap: int, max_ops: int) -> None:
    seen = sorted(i for f in dag.fragments for i in f.operation_indices)
    assert seen == list(range(len(ir.operations)))  # every op in exactly one fragment
    last: list[int | None] = [None] * ir.num_qubits
    for position, fragment in enumerate(dag.fragments):
        assert fragment.index == position
        assert fragment.fragment_id == f"f{position}"
        assert list(fragment.operation_indices) == sorted(fragment.operation_indices)
        assert 1 <= len(fragment.operation_indices) <= max_ops
        touched = sorted({q for i in fragment.operation_indices for q in ir.operations[i].qubits})
        assert list(fragment.qubits) == touched
        assert fragment.width <= cap
        assert all(d < fragment.index for d in fragment.depends_on)
        assert list(fragment.depends_on) == sorted(set(fragment.depends_on))
        assert [q for q, _ in fragment.sources] == list(fragment.qubits)
        assert set(fragment.depends_on) == {p for _, p in fragment.sources if p is not None}
    # sources: per qubit, the fragment that held it last in execution (fragment) order
    holder: list[int | None] = [None] * ir.num_qubits
    for fragment in dag.fragments:
        assert fragment.sources == tuple((q, holder[q]) for q in fragment.qubits)
        for q in fragment.qubits:
            holder[q] = fragment.index
    for i, op in enumerate(ir.operations):
        owner = next(f.index for f in dag.fragments if i in f.operation_indices)
        for q in op.qubits:
            last[q] = owner
    assert list(dag.last_fragment) == last


def _check_order_preserved(ir: CircuitIR, dag: FragmentDAG) -> None:
    """Ops sharing a qubit keep their relative order when run fragment by fragment."""
    position = {op: k for k, op in enumerate(dag.operation_order())}
    for i, a in enumerate(ir.operations):
        for j in range(i + 1, len(ir.operations)):
            if set(a.qubits) & set(ir.operations[j].qubits):
                assert position[i] < position[j], (i, j)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ir=circuits(),
    cap=st.integers(min_value=1, max_value=5),
    max_ops=st.integers(min_value=1, max_value=6),
)
def test_split_is_a_dependency_safe_partition(ir: CircuitIR, cap: int, max_ops: int) -> None:
    if any(len(op.qubits) > cap for op in ir.operations):
        with pytest.raises(InfeasiblePlanError) as info:
            split_fragments(ir, cap, max_ops)
        assert info.value.constraint == "width"
        return
    dag = split_fragments(ir, cap, max_ops)
    _check_structure(ir, dag, cap, max_ops)
    _check_order_preserved(ir, dag)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ir=circuits(max_qubits=5, max_ops=30),
    cap=st.integers(min_value=3, max_value=5),
    max_ops=st.integers(min_value=1, max_value=6),
)
def test_fragments_in_order_reproduce_the_unitary(ir: CircuitIR, cap: int, max_ops: int) -> None:
    dag = split_fragments(ir, cap, max_ops)
    distributed = to_quantum_circuit(ir, operation_order=dag.operation_order())
    assert Operator(distributed) == Operator(to_quantum_circuit(ir))


@settings(max_examples=50, deadline=None)
@given(ir=circuits(max_qubits=6), cap=st.integers(min_value=3, max_value=5))
def test_accepts_predicate_bounds_grown_fragments(ir: CircuitIR, cap: int) -> None:
    def accepts(gates: frozenset[str], width: int) -> bool:
        return "ccx" not in gates or len(gates) == 1

    dag = split_fragments(ir, cap, 12, accepts=accepts)
    _check_structure(ir, dag, cap, 12)
    _check_order_preserved(ir, dag)
    for fragment in dag.fragments:
        gates = frozenset(ir.operations[i].name for i in fragment.operation_indices)
        if len(fragment.operation_indices) > 1:
            assert accepts(gates, fragment.width)


def _ir(n: int, *ops: tuple[str, tuple[int, ...]]) -> CircuitIR:
    return CircuitIR(
        num_qubits=n,
        num_clbits=0,
        operations=tuple(Operation(name, qubits) for name, qubits in ops),
    )


def test_ghz_chain_grows_one_fragment_until_the_cap() -> None:
    ir = _ir(6, ("h", (0,)), *(("cx", (i, i + 1)) for i in range(5)))
    dag = split_fragments(ir, max_fragment_qubits=4, max_fragment_ops=12)
    assert [f.qubits for f in dag.fragments] == [(0, 1, 2, 3), (3, 4, 5)]
    assert [f.operation_indices for f in dag.fragments] == [(0, 1, 2, 3), (4, 5)]
    assert [f.depends_on for f in dag.fragments] == [(), (0,)]
    assert dag.fragments[1].sources == ((3, 0), (4, None), (5, None))
    assert dag.last_fragment == (0, 0, 0, 1, 1, 1)


def test_independent_groups_merge_into_a_new_fragment() -> None:
    ir = _ir(3, ("h", (0,)), ("h", (1,)), ("cx", (0, 1)), ("x", (2,)))
    dag = split_fragments(ir, 4, 12)
    assert [f.operation_indices for f in dag.fragments] == [(0,), (1,), (2,), (3,)]
    assert dag.fragments[2].depends_on == (0, 1)
    assert dag.fragments[3].depends_on == ()
    assert dag.last_fragment == (2, 2, 3)


def test_op_joins_old_fragment_past_a_later_one() -> None:
    # f0 = {cx 0,1}; f1 takes qubit 1; 'h 0' still only touches f0 and joins it.
    ir = _ir(3, ("cx", (0, 1)), ("cx", (1, 2)), ("h", (0,)))
    dag = split_fragments(ir, 2, 12)
    assert [f.operation_indices for f in dag.fragments] == [(0, 2), (1,)]
    assert dag.operation_order() == (0, 2, 1)


def test_max_ops_closes_a_fragment() -> None:
    ir = _ir(1, *(("x", (0,)) for _ in range(5)))
    dag = split_fragments(ir, 4, 2)
    assert [f.operation_indices for f in dag.fragments] == [(0, 1), (2, 3), (4,)]
    assert [f.depends_on for f in dag.fragments] == [(), (0,), (1,)]


def test_op_wider_than_cap_is_infeasible() -> None:
    with pytest.raises(InfeasiblePlanError) as info:
        split_fragments(_ir(3, ("ccx", (0, 1, 2))), 2, 12)
    assert info.value.constraint == "width"
    assert "'ccx'" in info.value.message


def test_invalid_caps_are_rejected() -> None:
    with pytest.raises(ValueError):
        split_fragments(_ir(1), 0, 12)
    with pytest.raises(ValueError):
        split_fragments(_ir(1), 4, 0)


def test_empty_circuit_has_no_fragments() -> None:
    dag = split_fragments(_ir(2), 4, 12)
    assert dag.fragments == ()
    assert dag.last_fragment == (None, None)
