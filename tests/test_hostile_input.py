"""Hostile input corpus (FR-003, FR-014; issue 11): every input within the body limit is refused
(or accepted) with a structured answer after bounded work, and nothing refused is queued.

Each case is submitted through the real API app (in-process) to both the submit and the dry-run
plan endpoint; the status, the JSON error shape and ``X-Request-ID`` are asserted. The work bound
is asserted on the compiler with the coordinator's own limits: ``IngestStats`` counts the parsed
instructions read and the gate-definition nodes expanded, so the bound is a count, not a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Gate

from qb2.compiler import (
    IngestLimits,
    IngestStats,
    LimitExceededError,
    QasmValidationError,
    from_quantum_circuit,
    parse_qasm,
)
from qb2.coordinator.service import CoordinatorService
from tests.conftest import InProcessCluster
from tests.test_api import make_client

Q2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
Q3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def nested(depth: int, version: int = 2, calls: int = 2, params: bool = False) -> str:
    """``depth`` gate definitions, each calling the previous one ``calls`` times: calls**depth gates."""
    head = (Q2 + "qreg q[1];\n") if version == 2 else (Q3 + "qubit[1] q;\n")
    p, arg = ("(t)", "(0.25)") if params else ("", "")
    lines = [f"gate g0{p} a {{ {'rz(t)' if params else 'x'} a; }}"]
    lines += [f"gate g{i}{p} a {{ {' '.join([f'g{i - 1}{p} a;'] * calls)} }}" for i in range(1, depth + 1)]
    return head + "\n".join(lines) + f"\ng{depth}{arg} q[0];\n"


def empty_nested(depth: int) -> str:
    """Gates that expand to nothing but would be visited 2**depth times without memoisation."""
    lines = ["gate g0 a { }"] + [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, depth + 1)]
    return Q2 + "qreg q[1];\n" + "\n".join(lines) + f"\ng{depth} q[0];\n"


# (case id, qasm text, expected status, expected error code or None for 202)
CORPUS: list[tuple[str, str, int, str | None]] = [
    # the cases
    ("nested-17-qasm2", nested(17), 422, "too_many_operations"),
    ("nested-25-qasm2", nested(25), 422, "too_many_operations"),
    ("nested-17-qasm3", nested(17, 3), 422, "too_many_operations"),
    ("nested-25-qasm3-params", nested(25, 3, params=True), 422, "too_many_operations"),
    ("qubit-1_000_000-qasm3", "OPENQASM 3.0;\nqubit[1_000_000] q;\n", 422, "too_wide"),
    ("creg-1000000", Q2 + "qreg q[1];\ncreg c[1000000];\n", 422, "too_many_clbits"),
    # more nesting
    ("nested-16-params-qasm2", nested(17, params=True), 422, "too_many_operations"),
    ("nested-60-qasm2", nested(60), 422, "too_deep"),
    ("nested-10-calls-8", nested(10, calls=8), 422, "too_many_operations"),
    ("nesting-depth-40-single-call", nested(40, calls=1), 422, "too_deep"),
    ("nesting-depth-40-single-call-qasm3", nested(40, 3, calls=1), 422, "too_deep"),
    ("empty-definitions-30", empty_nested(30), 202, None),
    ("nested-12-accepted", nested(12), 202, None),
    ("nested-12-qasm3-params-accepted", nested(12, 3, params=True), 202, None),
    # huge registers and widths
    ("qreg-20000000", Q2 + "qreg q[20000000];\n", 422, "too_wide"),
    ("qreg-65", Q2 + "qreg q[65];\nh q[0];\n", 422, "too_wide"),
    ("many-small-qregs", Q2 + "".join(f"qreg q{i}[1];\n" for i in range(100)), 422, "too_wide"),
    ("qubit-hex-size", "OPENQASM 3.0;\nqubit[0xFFFFFF] q;\n", 422, "too_wide"),
    ("qubit-product-size", "OPENQASM 3.0;\nqubit[1000 * 1000] q;\n", 422, "too_wide"),
    ("qubit-const-size", "OPENQASM 3.0;\nconst uint n = 1000 * 1000;\nqubit[n] q;\n", 422, "invalid_qasm"),
    ("qubit-shift-size", "OPENQASM 3.0;\nqubit[1 << 40] q;\n", 422, "invalid_qasm"),
    ("loose-qubits-100", "OPENQASM 3.0;\n" + "".join(f"qubit a{i};\n" for i in range(100)), 422, "too_wide"),
    ("physical-qubit-1000000", Q3 + "h $1000000;\n", 422, "too_wide"),
    ("bit-1_000_000-qasm3", "OPENQASM 3.0;\nqubit[1] q;\nbit[1_000_000] c;\n", 422, "too_many_clbits"),
    ("many-cregs", Q2 + "qreg q[1];\n" + "".join(f"creg c{i}[64];\n" for i in range(20)), 422, "too_many_clbits"),
    # broadcasts and long bodies
    ("broadcast-h-64x2000", Q2 + "qreg q[64];\n" + "h q;\n" * 2000, 422, "too_many_operations"),
    ("broadcast-cx-64x2000", Q2 + "qreg a[32];\nqreg b[32];\n" + "cx a,b;\n" * 4000, 422, "too_many_operations"),
    ("broadcast-qasm3", Q3 + "qubit[64] q;\n" + "h q;\n" * 2000, 422, "too_many_operations"),
    ("measure-broadcast", Q2 + "qreg q[64];\ncreg c[64];\n" + "measure q -> c;\n" * 2000, 422, "too_many_operations"),
    ("barrier-flood", Q2 + "qreg q[2];\n" + "barrier q;\n" * 45_000, 202, None),
    ("gate-flood", Q2 + "qreg q[2];\n" + "x q;\n" * 100_000, 422, "too_many_operations"),
    ("million-newlines", Q2 + "qreg q[1];\n" + "\n" * 400_000 + "h q[0];\n", 202, None),
    ("million-comment-lines", Q2 + "qreg q[1];\n" + "//\n" * 150_000 + "h q[0];\n", 202, None),
    # parameter expressions
    ("param-sum-50000", Q2 + "qreg q[1];\nrz(" + "+".join(["1"] * 50_000) + ") q[0];\n", 202, None),
    ("param-parens-1000", Q2 + "qreg q[1];\nrz(" + "(" * 1000 + "1" + ")" * 1000 + ") q[0];\n", 422, "too_deep"),
    ("param-parens-qasm3-300", Q3 + "qubit[1] q;\nrz(" + "(" * 300 + "1" + ")" * 300 + ") q[0];\n", 422, "too_deep"),
    ("param-symbolic-sum", Q2 + "qreg q[1];\ngate g(t) a { rz(" + "+".join(["t"] * 20_000) + ") a; }\ng(0.1) q[0];\n",
     202, None),
    ("param-unbound-qasm3", Q3 + "input float theta;\nqubit[1] q;\nrz(theta) q[0];\n", 422, "invalid_qasm"),
    ("param-infinite", Q2 + "qreg q[1];\nrz(1e308*10) q[0];\n", 422, "invalid_qasm"),
    ("param-nan", Q2 + "qreg q[1];\nrz(0/0) q[0];\n", 422, "invalid_qasm"),
    ("brackets-unbalanced-deep", Q2 + "[" * 100_000, 422, "too_deep"),
    # includes
    ("include-file", 'OPENQASM 2.0;\ninclude "/etc/passwd";\nqreg q[1];\n', 422, "invalid_qasm"),
    ("include-repeated", Q2 + 'include "qelib1.inc";\n' * 1000 + "qreg q[1];\n", 422, "invalid_qasm"),
    ("include-qasm3-file", 'OPENQASM 3.0;\ninclude "/dev/zero";\nqubit[1] q;\n', 422, "invalid_qasm"),
    ("include-self", 'OPENQASM 2.0;\ninclude "qelib1.inc";\ninclude "circuit.qasm";\nqreg q[1];\n', 422, "invalid_qasm"),
    # bytes and encodings
    ("nul-byte", Q2 + "qreg q[1];\nh q[0];\0\n", 422, "invalid_qasm"),
    ("nul-in-header", "OPENQASM\x002.0;\n", 422, "invalid_qasm"),
    ("control-characters", Q2 + "qreg q[1];\n\x07\x08\x1b h q[0];\n", 422, "invalid_qasm"),
    ("non-ascii-identifier", Q2 + "qreg qü[1];\n", 422, "invalid_qasm"),
    ("right-to-left-override", Q2 + "qreg q[1];\n\u202eh q[0];\n", 422, "invalid_qasm"),
    ("bom", "\ufeff" + Q2 + "qreg q[1];\nh q[0];\n", 422, "invalid_qasm"),
    # other structure
    ("opaque-gate", Q2 + "qreg q[1];\nopaque o a;\no q[0];\n", 422, "invalid_qasm"),
    ("gate-redefined", Q2 + "qreg q[1];\ngate h a { x a; }\n", 422, "invalid_qasm"),
    ("for-loop-huge", Q3 + "qubit[1] q;\nfor int i in [0:100000000] { h q[0]; }\n", 422, "invalid_qasm"),
    ("while-true", Q3 + "qubit[1] q;\nbit c;\nwhile (true) { h q[0]; }\n", 422, "invalid_qasm"),
    ("inverse-of-nested-qasm3", nested(16, 3).replace("g16 q[0];", "inv @ g16 q[0];\ninv @ g16 q[0];"),
     422, "too_many_operations"),
    ("pow-of-nested-qasm3", nested(12, 3).replace("g12 q[0];", "pow(2) @ g12 q[0];"), 422, "too_many_operations"),
    ("inv-repeated-qasm3", nested(8, 3).replace("g8 q[0];", "inv @ g8 q[0];\n" * 10), 422, "too_many_operations"),
    ("ctrl-small-accepted", Q3 + "qubit[2] q;\nctrl @ x q[0], q[1];\ninv @ s q[0];\n", 202, None),
    ("version-4", "OPENQASM 4.0;\nqreg q[1];\n", 422, "invalid_qasm"),
    ("only-comment", "// nothing\n", 422, "invalid_qasm"),
    ("unterminated-comment", Q2 + "qreg q[1];\n/*" + " " * 100_000, 422, "invalid_qasm"),
]


@pytest.mark.parametrize(("qasm", "status", "code"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
async def test_hostile_input_gets_a_structured_answer_after_bounded_work(
    tmp_path: Path, ideal_cluster: InProcessCluster, qasm: str, status: int, code: str | None
) -> None:
    assert len(qasm.encode()) <= 512 * 1024, "the corpus stays within the default qasm size limit"
    service, client = await make_client(tmp_path, ideal_cluster)
    async with client:
        for path in ("/api/v1/circuits/submit", "/api/v1/circuits/plan"):
            response = await client.post(path, json={"qasm": qasm, "shots": 10})
            assert response.headers.get("x-request-id"), path
            expected = (status if status != 202 else (202 if path.endswith("submit") else 200))
            assert response.status_code == expected, (path, response.text[:300])
            if code is not None:
                error = response.json()["error"]
                assert error["code"] == code, error
                assert isinstance(error["message"], str) and error["message"]
                assert isinstance(error["details"], dict)
        jobs = (await client.get("/api/v1/jobs")).json()
        assert jobs["total"] == (1 if status == 202 else 0), "a refused submission queued nothing"
    _assert_bounded_work(service, qasm)


def _assert_bounded_work(service: CoordinatorService, qasm: str) -> None:
    limits = service.ingest_limits
    stats = IngestStats()
    try:
        parse_qasm(qasm, limits=limits, stats=stats)
    except QasmValidationError:
        pass
    # Bytecode items read: at most one past the operation limit, plus declarations and definitions.
    assert stats.instructions <= limits.max_operations + qasm.count(";") + 1, stats
    assert stats.expanded <= limits.max_operations + 1, stats


@pytest.mark.parametrize("depth", [15, 16, 17, 20, 25])
@pytest.mark.parametrize("version", [2, 3])
def test_nested_definitions_cost_steps_linear_in_depth(depth: int, version: int) -> None:
    """The issue's bomb: sizing is memoised per definition, so refusing depth 25 takes a few
    dozen expansion steps, and accepting depth 16 (65,536 gates) as many, not 2**depth."""
    stats = IngestStats()
    try:
        ir = parse_qasm(nested(depth, version), stats=stats)
    except LimitExceededError as exc:
        assert depth >= 17 and exc.limit == "max_operations"
    else:
        assert depth <= 16 and ir.num_operations == 2**depth
    assert stats.expanded <= 4 * depth, stats


def test_from_quantum_circuit_applies_the_same_bounds() -> None:
    inner = QuantumCircuit(1)
    inner.x(0)
    gate = inner.to_gate(label="g0")
    for i in range(1, 25):  # the same doubling bomb built in Python: one shared definition per level
        body = QuantumCircuit(1)
        body.append(gate, [0])
        body.append(gate, [0])
        gate = Gate(f"g{i}", 1, [])
        gate.definition = body
    qc = QuantumCircuit(1)
    qc.append(gate, [0])
    stats = IngestStats()
    with pytest.raises(LimitExceededError) as info:
        from_quantum_circuit(qc, stats=stats)
    assert info.value.limit == "max_operations" and stats.expanded <= 100
    with pytest.raises(LimitExceededError) as wide:
        from_quantum_circuit(QuantumCircuit(100), limits=IngestLimits(max_qubits=64))
    assert wide.value.limit == "max_qubits" and wide.value.to_dict()["maximum"] == 64


def test_a_gate_named_like_a_standard_gate_with_a_huge_body_is_expanded_not_simulated() -> None:
    """Recognising ``gate r(t, p) a {...}`` as the standard r builds its unitary; a huge body must
    not be simulated for that, only sized and refused or expanded."""
    definitions = ["gate g0 a { U(0, 0, 0) a; }"] + [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, 21)]
    text = "OPENQASM 2.0;\nqreg q[1];\n" + "\n".join(definitions) + "\ngate r(t, p) a { g20 a; }\nr(0.1, 0.2) q[0];\n"
    stats = IngestStats()
    with pytest.raises(LimitExceededError):
        parse_qasm(text, stats=stats)
    assert stats.expanded <= 100


async def test_raw_bodies_with_bad_bytes_get_structured_errors(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    _, client = await make_client(tmp_path, ideal_cluster)
    bodies = [
        b'{"qasm": "OPENQASM 2.0;\\nqreg q[1];\\n\xff\xfe"}',  # not UTF-8
        b'{"qasm": "\\u0000"}',
        b'{"qasm": "\\ud800"}',  # lone surrogate
        b'{"qasm": ' + b'[' * 10_000 + b']' * 10_000 + b'}',  # deeply nested JSON
        json.dumps({"qasm": "x" * 10, "shots": 10**30}).encode(),
    ]
    async with client:
        for body in bodies:
            response = await client.post("/api/v1/circuits/submit", content=body,
                                         headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (body[:40], response.status_code)
            assert "error" in response.json() and response.headers.get("x-request-id")
        assert (await client.get("/api/v1/jobs")).json()["total"] == 0


def test_qasm3_gate_parameters_bind_in_declaration_order() -> None:
    """qiskit_qasm3_import orders a definition's parameters by name; qb2 binds them as declared."""
    ir = parse_qasm('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\n'
                    "gate g(t, s) a { rz(t) a; rx(s) a; }\ng(0.1, 0.2) q[0];\n")
    assert [(o.name, o.params) for o in ir.operations] == [("rz", (0.1,)), ("rx", (0.2,))]


def test_gates_of_two_programs_with_one_name_keep_their_own_definitions() -> None:
    """Expansions are shared per definition source, not per gate name (composed programs reuse names)."""
    from qiskit import qasm2
    from qiskit.quantum_info import Operator

    from qb2.compiler import to_quantum_circuit

    first = qasm2.loads('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; gate foo a,b { h a; cx a,b; } foo q[0],q[1];')
    second = qasm2.loads('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; gate foo a,b { x a; rz(0.3) b; } foo q[0],q[1];')
    both = first.compose(second)
    assert Operator(to_quantum_circuit(from_quantum_circuit(both))).equiv(Operator(both))
