"""FR-003: OpenQASM 2/3 and QuantumCircuit ingestion into the IR."""

from __future__ import annotations

import math

import pytest
import qiskit.qasm2
import qiskit.qasm3
from mqt.bench import BenchmarkLevel, get_benchmark
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.circuit.library import CXGate, get_standard_gate_name_mapping
from qiskit.quantum_info import Operator

from qb2.compiler import (
    CircuitIR,
    Measurement,
    QasmValidationError,
    Register,
    from_quantum_circuit,
    parse_qasm,
    to_quantum_circuit,
)

BENCHMARKS = ("ghz", "qft", "grover", "qaoa", "dj", "wstate")
STANDARD = set(get_standard_gate_name_mapping())
Q2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
Q3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def _benchmark(name: str, n: int = 4) -> QuantumCircuit:
    return get_benchmark(name, BenchmarkLevel.INDEP, n)


def _dump(qc: QuantumCircuit, fmt: str) -> str:
    return qiskit.qasm2.dumps(qc) if fmt == "qasm2" else qiskit.qasm3.dumps(qc)


def _measurement_map(qc: QuantumCircuit) -> list[tuple[int, int]]:
    return [
        (qc.find_bit(inst.qubits[0]).index, qc.find_bit(inst.clbits[0]).index)
        for inst in qc.data
        if inst.operation.name == "measure"
    ]


def _unitary_of(qc: QuantumCircuit) -> Operator:
    return Operator(qc.remove_final_measurements(inplace=False))


def _error(text: str, fmt: str | None = None) -> QasmValidationError:
    with pytest.raises(QasmValidationError) as info:
        parse_qasm(text, fmt)  # type: ignore[arg-type]
    return info.value


# --- valid input ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["qasm2", "qasm3"])
@pytest.mark.parametrize("bench", BENCHMARKS)
def test_benchmark_parses_to_equivalent_ir(bench: str, fmt: str) -> None:
    original = _benchmark(bench)
    ir = parse_qasm(_dump(original, fmt), name=bench)

    assert isinstance(ir, CircuitIR)
    assert ir.name == bench
    assert ir.num_qubits == original.num_qubits
    assert ir.num_clbits == original.num_clbits
    assert {op.name for op in ir.operations} <= STANDARD
    assert all(isinstance(p, float) for op in ir.operations for p in op.params)
    rebuilt = to_quantum_circuit(ir, include_measurements=False)
    assert Operator(rebuilt).equiv(_unitary_of(original))


@pytest.mark.parametrize("fmt", ["qasm2", "qasm3"])
@pytest.mark.parametrize("bench", BENCHMARKS)
def test_benchmark_measurement_map_and_registers_preserved(bench: str, fmt: str) -> None:
    original = _benchmark(bench)
    ir = parse_qasm(_dump(original, fmt))

    assert [(m.qubit, m.clbit) for m in ir.measurements] == _measurement_map(original)
    assert ir.cregs == tuple(Register(r.name, r.size) for r in original.cregs)
    assert sum(r.size for r in ir.qregs) == ir.num_qubits
    if fmt == "qasm2":  # QASM 3 export of a laid-out circuit (qft) uses physical $n qubits
        assert ir.qregs == tuple(Register(r.name, r.size) for r in original.qregs)


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_qasm2_and_qasm3_exports_give_the_same_ir(bench: str) -> None:
    original = _benchmark(bench)
    ir2 = parse_qasm(_dump(original, "qasm2"))
    ir3 = parse_qasm(_dump(original, "qasm3"))
    assert ir2.operations == ir3.operations
    assert ir2.measurements == ir3.measurements


def test_from_quantum_circuit_matches_parse_and_defaults_name() -> None:
    original = _benchmark("grover")
    ir = from_quantum_circuit(original)
    assert ir.name == original.name
    assert ir.operations == parse_qasm(_dump(original, "qasm2")).operations
    assert from_quantum_circuit(original, name="x").name == "x"


def test_gate_order_and_qubit_mapping_preserved_exactly() -> None:
    text = Q2 + (
        "qreg a[2];\nqreg b[2];\ncreg c[2];\n"
        "h b[1];\ncx b[1],a[0];\nrz(pi/4) a[1];\ncz a[1],b[0];\nbarrier a[0],b[1];\n"
        "measure b[1] -> c[0];\nmeasure a[0] -> c[1];\n"
    )
    ir = parse_qasm(text)
    assert [(op.name, op.qubits) for op in ir.operations] == [
        ("h", (3,)),
        ("cx", (3, 0)),
        ("rz", (1,)),
        ("cz", (1, 2)),
    ]
    assert ir.operations[2].params == (math.pi / 4,)
    assert ir.measurements == (Measurement(3, 0), Measurement(0, 1))
    assert ir.qregs == (Register("a", 2), Register("b", 2))
    assert ir.cregs == (Register("c", 2),)
    assert ir.num_operations == 6


def test_custom_gates_are_expanded_recursively_to_standard_gates() -> None:
    text = Q2 + (
        "gate inner(t) a, b { cx a, b; rz(t) b; }\n"
        "gate outer a, b, c { inner(0.5) a, b; ccx a, b, c; u0(1) c; }\n"
        "qreg q[3];\nouter q[2], q[0], q[1];\n"
    )
    ir = parse_qasm(text)
    assert [(op.name, op.qubits) for op in ir.operations] == [
        ("cx", (2, 0)),
        ("rz", (0,)),
        ("ccx", (2, 0, 1)),
        ("id", (1,)),  # legacy u0(1) is defined as one identity
    ]
    assert ir.operations[1].params == (0.5,)


def test_open_controlled_gate_is_expanded_with_same_unitary() -> None:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.append(CXGate(ctrl_state=0), [0, 1])
    ir = from_quantum_circuit(qc)
    assert all(op.name in STANDARD for op in ir.operations)
    assert Operator(to_quantum_circuit(ir)).equiv(Operator(qc))


def test_standard_name_with_other_semantics_is_not_trusted() -> None:
    # A QASM 3 program may define its own 'rzz'; only a matching definition is kept as rzz.
    text = Q3 + "gate rzz(p) a, b { cx a, b; }\nqubit[2] q;\nrzz(0.3) q[0], q[1];\n"
    ir = parse_qasm(text)
    assert [op.name for op in ir.operations] == ["cx"]


def test_barrier_delay_and_global_phase_are_dropped() -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.barrier()
    qc.delay(100, 1)
    qc.global_phase = 0.7
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    ir = from_quantum_circuit(qc)
    assert [op.name for op in ir.operations] == ["h", "cx"]
    assert ir.measurements == (Measurement(0, 0), Measurement(1, 1))


def test_bound_parameters_become_floats() -> None:
    theta = Parameter("theta")
    qc = QuantumCircuit(1)
    qc.rz(theta * 2, 0)
    ir = from_quantum_circuit(qc.assign_parameters({theta: 0.25}))
    assert ir.operations[0].params == (0.5,)
    assert type(ir.operations[0].params[0]) is float


def test_qasm3_physical_qubits_get_a_synthetic_register() -> None:
    ir = parse_qasm(Q3 + "h $2;\ncx $2, $0;\n")
    assert ir.num_qubits == 3
    assert ir.qregs == (Register("q", 3),)
    assert [(op.name, op.qubits) for op in ir.operations] == [("h", (2,)), ("cx", (2, 0))]


def test_explicit_qasm3_may_omit_header_and_comments_precede_header() -> None:
    assert parse_qasm('include "stdgates.inc";\nqubit[1] q;\nh q[0];\n', "qasm3").num_qubits == 1
    text = "// a comment\n" + Q2 + "qreg q[1];\nx q[0];\n"
    assert [op.name for op in parse_qasm(text).operations] == ["x"]
    text3 = "/* block\ncomment */ // line comment\n" + Q3 + "qubit[1] q;\ny q[0];\n"
    assert [op.name for op in parse_qasm(text3).operations] == ["y"]


# --- invalid input -------------------------------------------------------------------


def test_qasm2_syntax_error_reports_line_and_column() -> None:
    err = _error(Q2 + "qreg q[2];\nh q[0]\ncx q[0],q[1];\n")
    # the missing ';' is noticed at the next token, 'cx' on line 5, column 1
    assert (err.line, err.column) == (5, 1)
    assert "';'" in err.message
    assert err.to_dict() == {"line": 5, "column": 1, "message": err.message}
    assert str(err).startswith("line 5, column 1: ")


def test_qasm2_column_is_one_based() -> None:
    err = _error(Q2 + "qreg q[2];\n  h q[0] @;\n")
    assert (err.line, err.column) == (4, 10)


def test_qasm3_syntax_error_reports_line_and_column() -> None:
    err = _error(Q3 + "qubit[2] q;\nh q[0]\ncx q[0], q[1];\n")
    assert (err.line, err.column) == (5, 1)
    assert "unexpected 'cx'" in err.message


def test_qasm3_lexer_error_reports_line_and_column() -> None:
    err = _error(Q3 + "qubit[2] q;\n  h q[0] #;\n")
    assert (err.line, err.column) == (4, 10)


def test_qasm3_unexpected_end_of_input() -> None:
    err = _error(Q3 + "qubit[2] q;\nh q[0]")
    assert err.line == 4
    assert "end of input" in err.message


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (Q2 + "qreg q[2];\nfoo q[0];\n", 4, 1),
        (Q3 + "qubit[2] q;\n  foo q[0];\n", 4, 3),
    ],
)
def test_unknown_gate_names_gate_and_line(text: str, line: int, column: int) -> None:
    err = _error(text)
    assert (err.line, err.column) == (line, column)
    assert "foo" in err.message


def test_missing_header_is_reported_at_line_1() -> None:
    err = _error("qreg q[2];\nh q[0];\n")
    assert (err.line, err.column) == (1, 1)
    assert "header" in err.message
    assert _error("qreg q[1];\n", "qasm2").line == 1


def test_empty_program() -> None:
    for text in ("", "   \n\n"):
        err = _error(text)
        assert err.line == 1
        assert "empty" in err.message


def test_unsupported_version_and_format_mismatch() -> None:
    assert "version 4" in _error("OPENQASM 4.0;\n").message
    err = _error("\n" + Q3 + "qubit q;\n", "qasm2")
    assert err.line == 2
    assert "qasm3" in err.message


@pytest.mark.parametrize(
    "text",
    [
        Q2 + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nh q[0];\n",
        Q3 + "qubit[2] q;\nbit[2] c;\nc[0] = measure q[0];\ncx q[1], q[0];\n",
    ],
)
def test_mid_circuit_measurement_is_rejected(text: str) -> None:
    err = _error(text)
    assert "measured" in err.message
    assert "qubit 0" in err.message
    assert "not supported yet" in err.message


def test_measurement_followed_by_gate_on_other_qubit_is_fine() -> None:
    ir = parse_qasm(Q2 + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nh q[1];\n")
    assert [op.name for op in ir.operations] == ["h"]
    assert ir.measurements == (Measurement(0, 0),)


@pytest.mark.parametrize(
    "text",
    [
        Q2 + "qreg q[2];\nreset q[1];\nh q[1];\n",
        Q3 + "qubit[2] q;\nreset q[1];\n",
    ],
)
def test_reset_is_rejected(text: str) -> None:
    err = _error(text)
    assert "'reset' on qubit 1" in err.message
    assert err.line is None


@pytest.mark.parametrize(
    "text",
    [
        Q3 + "qubit[2] q;\nbit[2] c;\nc[0] = measure q[0];\nif (c[0]) x q[1];\n",
        Q3 + "qubit[2] q;\nbit[2] c;\nwhile (c[0]) { x q[1]; }\n",
        Q2 + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nif (c==1) x q[1];\n",
    ],
)
def test_classical_control_is_rejected(text: str) -> None:
    err = _error(text)
    assert "classical" in err.message
    assert "not supported yet" in err.message


def test_unbound_parameter_is_rejected() -> None:
    err = _error(Q3 + "input float theta;\nqubit[1] q;\nrz(theta) q[0];\n")
    assert "parameter theta is unbound" in err.message
    qc = QuantumCircuit(1)
    qc.rx(Parameter("phi"), 0)
    with pytest.raises(QasmValidationError, match="parameter phi is unbound"):
        from_quantum_circuit(qc)


def test_undefined_parameter_in_qasm2_has_position() -> None:
    err = _error(Q2 + "qreg q[1];\nrz(theta) q[0];\n")
    assert (err.line, err.column) == (4, 4)
    assert "theta" in err.message


def test_zero_qubit_circuit_is_rejected() -> None:
    with pytest.raises(QasmValidationError, match="no qubits"):
        from_quantum_circuit(QuantumCircuit())
    with pytest.raises(QasmValidationError, match="no qubits"):
        parse_qasm(Q2 + "creg c[1];\n")


def test_other_non_unitary_instructions_are_rejected() -> None:
    qc = QuantumCircuit(1)
    qc.initialize([0, 1], 0)
    with pytest.raises(QasmValidationError, match="initialize"):
        from_quantum_circuit(qc)


def test_includes_never_read_files(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "extra.inc").write_text("gate mine a { x a; }\n")
    monkeypatch.chdir(tmp_path)
    err = _error(Q2 + 'include "extra.inc";\nqreg q[1];\nmine q[0];\n')
    assert err.line == 3
    err3 = _error(Q3 + 'include "extra.inc";\nqubit[1] q;\n')
    assert err3.line == 3


def test_qasm3_out_of_range_index_is_a_validation_error() -> None:
    err = _error(Q3 + "qubit[2] q;\nh q[5];\n")
    assert err.line is None
    assert "index" in err.message


def test_register_layout_with_loose_bits_is_synthesised() -> None:
    qc = QuantumCircuit(QuantumRegister(2, "a"), ClassicalRegister(1, "m"))
    qc.add_bits([qc.qubits[0].__class__()])
    qc.h(2)
    ir = from_quantum_circuit(qc)
    assert ir.qregs == (Register("q", 3),)
    assert ir.cregs == (Register("m", 1),)


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_qasm(b"OPENQASM 2.0;")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_quantum_circuit("OPENQASM 2.0;")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["OPENQASM 3.0\nqubit q;\n", "OPENQASM 2.0\nqreg q[1];\n"])
def test_header_without_semicolon_is_a_positioned_syntax_error(text: str) -> None:
    err = _error(text)
    assert (err.line, err.column) == (2, 1)
    assert ";" in err.message
