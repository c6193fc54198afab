"""Circuit intermediate representation (FR-003).

The IR is the compiler's single view of a circuit: gates in program order on
flat qubit indices, the register layout (so bitstrings print as Qiskit prints
them), and the terminal measurements. It is immutable and carries no Qiskit
objects, so plans built from it are plain data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Register:
    """A named quantum or classical register of ``size`` bits/qubits."""

    name: str
    size: int


@dataclass(frozen=True, slots=True)
class Operation:
    """One gate in program order.

    ``name`` is a Qiskit standard gate name (``h``, ``cx``, ``cp``, ``rzz`` ...),
    ``qubits`` are flat circuit qubit indices (control first, as in Qiskit), and
    ``params`` are real angles in radians.
    """

    name: str
    qubits: tuple[int, ...]
    params: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Measurement:
    """A terminal measurement of circuit qubit ``qubit`` into clbit ``clbit``."""

    qubit: int
    clbit: int


@dataclass(frozen=True, slots=True)
class CircuitIR:
    """A circuit ready for planning.

    Attributes:
        num_qubits / num_clbits: circuit width.
        qregs / cregs: register layout, in declaration order; flat indices
            number the registers' bits in that order. Their sizes always sum
            to ``num_qubits`` / ``num_clbits``: a circuit whose bits are not
            exactly covered by its registers (QASM 3 loose ``qubit a;`` or
            physical ``$0`` qubits) gets one synthetic register named ``q`` /
            ``c`` covering every bit (see :mod:`qb2.compiler.lower`).
        operations: unitary gates in program order (barriers, delays and
            global phase removed; non-standard gates expanded).
        measurements: terminal measurements, in program order: no operation
            acts on a qubit after its measurement.
        name: a label for logs and tables.
    """

    num_qubits: int
    num_clbits: int
    operations: tuple[Operation, ...]
    measurements: tuple[Measurement, ...] = ()
    qregs: tuple[Register, ...] = ()
    cregs: tuple[Register, ...] = ()
    name: str = "circuit"

    @property
    def num_operations(self) -> int:
        """Gates plus measurements."""
        return len(self.operations) + len(self.measurements)
