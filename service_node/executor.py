"""Fragment executor of a simulated QPU: pure functions, no networking.

DESIGN.md, "Execution semantics": a node translates a fragment into its native
gates, applies it with its Aer noise model to the incoming simulated state and
returns the outgoing state; readout fragments sample measurement counts. The
daemon that wraps these functions (protocol :mod:`qb2.protocol.execute`) lives
elsewhere.

States are numpy ``complex128`` arrays in Qiskit's little-endian qubit order
(qubit ``k`` is bit ``k`` of the basis index): a statevector of shape
``(2**n,)`` or a density matrix of shape ``(2**n, 2**n)``.

Noise (see :mod:`qb2.service_node.noise`):

* ``density_matrix``: gate noise and link (teleportation) depolarization are
  applied exactly, as superoperators.
* ``statevector``: **no** gate or link noise is applied (a pure state cannot
  carry a mixed channel deterministically); the noise is then only
  *estimated* by the cost model. Readout error is classical and applies to
  both representations.

Pitfalls handled here:

* Aer drops the circuit's global phase when the state is initialised with
  ``set_statevector``; the translated fragment's global phase is therefore
  applied to the returned statevector explicitly.
* Aer's ``SetDensityMatrix`` checks positivity with an eigendecomposition,
  O(d**3) (1.3 s at 11 qubits). The incoming density matrix is checked here in
  O(d**2) (shape, finiteness, unit trace, hermiticity) and positivity is *not*
  checked.
* Aer's qubit truncation is disabled so the returned state always has all
  ``num_qubits`` qubits.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, get_args

import numpy as np
import qiskit_aer  # noqa: F401  (registers set_statevector / save_* on QuantumCircuit)
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import ClassicalRegister, Gate, Instruction, QuantumRegister
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler.exceptions import TranspilerError
from qiskit_aer import AerSimulator
from qiskit_aer.library import SetDensityMatrix
from qiskit_aer.noise import NoiseModel

from qb2.protocol.execute import ClbitRegister, ExecuteError, GateOp, Representation
from qb2.service_node.errors import NodeError
from qb2.service_node.noise import link_error, readout_noise_model

__all__ = [
    "MAX_DENSITY_MATRIX_QUBITS",
    "MAX_STATEVECTOR_QUBITS",
    "CompiledFragment",
    "DeviceCompiler",
    "ExecutionError",
    "GateOutcome",
    "ReadoutOutcome",
    "apply_gates",
    "logical_circuit",
    "sample_readout",
    "translate",
]

#: Widest density matrix a node simulates (a 16-qubit density matrix is 64 GiB).
MAX_DENSITY_MATRIX_QUBITS = 16
#: Widest statevector a node simulates (28 qubits: 4 GiB).
MAX_STATEVECTOR_QUBITS = 28

#: Tolerance on the norm (statevector) / trace (density matrix) of an incoming
#: state; the same as Qiskit's ``Statevector.is_valid`` (atol 1e-8 + rtol 1e-5).
_NORM_TOL = 1e-8 + 1e-5
#: Tolerance on ``max |rho - rho^dagger|`` of an incoming density matrix.
_HERMITIAN_TOL = 1e-8

_STANDARD = get_standard_gate_name_mapping()
_REPRESENTATIONS: tuple[str, ...] = get_args(Representation)
_ERROR_CODES: tuple[str, ...] = get_args(ExecuteError.model_fields["code"].annotation)


class ExecutionError(NodeError):
    """A fragment cannot run; maps one-to-one onto :class:`qb2.protocol.execute.ExecuteError`.

    Attributes:
        code: ``"bad_request"``, ``"unsupported_gate"``, ``"capacity"`` or ``"internal"``.
        message: one human-readable line.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in _ERROR_CODES:
            raise ValueError(f"unknown ExecutionError code {code!r}; expected one of {_ERROR_CODES}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_model(self) -> ExecuteError:
        """The wire form of this error."""
        return ExecuteError(code=self.code, message=self.message)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GateOutcome:
    """Result of :func:`apply_gates`.

    Attributes:
        state: the outgoing state, complex128, shape ``(2**n,)`` or ``(2**n, 2**n)``.
        native_op_counts: gate counts of the fragment after translation to the
            node's native gates, keys sorted, e.g. ``{"cx": 3, "rz": 12, "sx": 4}``.
        simulation_s: wall time spent building and simulating, in seconds.
        routing_swaps: SWAPs inserted to route the fragment on a device's
            coupling map (FR-016); None off-device.
    """

    state: np.ndarray
    native_op_counts: dict[str, int]
    simulation_s: float
    routing_swaps: int | None = None


@dataclass(frozen=True)
class ReadoutOutcome:
    """Result of :func:`sample_readout`.

    Attributes:
        counts: outcome -> number of shots, keys in Qiskit's bitstring format
            (registers in reverse order separated by spaces, each register's
            bit 0 rightmost).
        simulation_s: wall time spent building and simulating, in seconds.
    """

    counts: dict[str, int]
    simulation_s: float


class CompiledFragment(Protocol):
    """A fragment compiled for a device model (see :class:`DeviceCompiler`).

    Attributes:
        circuit: ``n``-qubit circuit of native gates (register ``q``) whose
            unitary, global phase included, equals the fragment's in the
            coordinator's qubit order.
        native_op_counts: native gate counts to report, keys sorted.
        noise_model: gate noise keyed by state qubit; None for none.
    """

    circuit: QuantumCircuit
    native_op_counts: dict[str, int]
    noise_model: NoiseModel | None


class DeviceCompiler(Protocol):
    """What :func:`apply_gates` needs from a device model (FR-016).

    Implemented by :class:`qb2.service_node.devices.DeviceModel`; the executor
    imports nothing from it.
    """

    def compile_fragment(self, ops: Sequence[GateOp], num_qubits: int) -> CompiledFragment:
        """Place, route and translate ``ops`` for the device; raises ExecutionError."""
        ...


# --------------------------------------------------------------------------- translation


def _native_key(native_gates: Sequence[str]) -> frozenset[str]:
    """Native names transpile can target; non-standard names can never be produced."""
    return frozenset(g for g in native_gates if g in _STANDARD)


def _check_width(num_qubits: object) -> int:
    if isinstance(num_qubits, bool) or not isinstance(num_qubits, (int, np.integer)):
        raise ExecutionError("bad_request", f"num_qubits must be an integer, got {num_qubits!r}")
    if num_qubits < 1:
        raise ExecutionError("bad_request", f"num_qubits must be >= 1, got {num_qubits}")
    return int(num_qubits)


def _gate_from_op(index: int, op: GateOp, num_qubits: int) -> Gate:
    template = _STANDARD.get(op.name)
    if template is None:
        raise ExecutionError(
            "bad_request", f"op {index}: unknown gate {op.name!r} (not a Qiskit standard gate)"
        )
    if not isinstance(template, Gate) or template.num_qubits < 1:
        raise ExecutionError(
            "bad_request",
            f"op {index}: {op.name!r} is not a unitary gate; gate fragments take unitary gates only",
        )
    if len(op.qubits) != template.num_qubits:
        raise ExecutionError(
            "bad_request",
            f"op {index}: gate {op.name!r} acts on {template.num_qubits} qubit(s), got {len(op.qubits)}",
        )
    if len(op.params) != len(template.params):
        raise ExecutionError(
            "bad_request",
            f"op {index}: gate {op.name!r} takes {len(template.params)} parameter(s), got {len(op.params)}",
        )
    for q in op.qubits:
        if not 0 <= q < num_qubits:
            raise ExecutionError(
                "bad_request", f"op {index}: qubit index {q} out of range for a {num_qubits}-qubit state"
            )
    if len(set(op.qubits)) != len(op.qubits):
        raise ExecutionError(
            "bad_request", f"op {index}: gate {op.name!r} repeats a qubit in {list(op.qubits)}"
        )
    for p in op.params:
        if not math.isfinite(p):
            raise ExecutionError("bad_request", f"op {index}: gate {op.name!r} has a non-finite parameter {p}")
    if not op.params:
        return template  # parameterless standard gates are immutable singletons
    return type(template)(*(float(p) for p in op.params))


def logical_circuit(ops: Sequence[GateOp], num_qubits: int) -> QuantumCircuit:
    """The fragment as written: ``ops`` as Qiskit standard gates on ``num_qubits`` qubits, untranslated.

    Validates every op as :func:`translate` does (the device models of
    :mod:`qb2.service_node.devices` use it for that, and tests for reference
    unitaries); no transpilation, no caching.

    Args:
        ops: gates in order; Qiskit standard gate names, qubit indices in
            ``[0, num_qubits)``, params in radians.
        num_qubits: width ``n`` of the circuit (not validated here: callers check it).

    Returns:
        A fresh ``QuantumCircuit`` of ``num_qubits`` qubits (one register ``q``).

    Raises:
        ExecutionError: ``bad_request`` for an unknown or non-unitary gate, a
            wrong number of qubits or params, a non-finite param, or a
            repeated or out-of-range qubit index.
    """
    qc = QuantumCircuit(QuantumRegister(num_qubits, "q"))
    for index, op in enumerate(ops):
        qc.append(_gate_from_op(index, op, num_qubits), list(op.qubits), copy=False)
    return qc


@lru_cache(maxsize=2048)
def _translate_cached(ops: tuple[GateOp, ...], num_qubits: int, native: frozenset[str]) -> QuantumCircuit:
    qc = logical_circuit(ops, num_qubits)
    if not ops:
        return qc
    try:
        # No coupling map / target connectivity: no layout, no routing, so
        # qubit k stays qubit k. Level 0 only unrolls and basis-translates.
        out = transpile(qc, basis_gates=sorted(native), optimization_level=0)
    except TranspilerError:
        bad = _untranslatable(qc, native)
        raise ExecutionError(
            "unsupported_gate",
            f"gate(s) {', '.join(bad) or '?'} cannot be translated into the native gate set "
            f"[{', '.join(sorted(native))}]",
        ) from None
    if out.num_qubits != num_qubits or out.layout is not None:
        raise ExecutionError("internal", "translation remapped qubits")  # pragma: no cover - guard
    return out


def _untranslatable(qc: QuantumCircuit, native: frozenset[str]) -> list[str]:
    """Names of the distinct gates of ``qc`` that alone fail to translate (error path only)."""
    bad: list[str] = []
    seen: set[str] = set()
    for inst in qc.data:
        op = inst.operation
        if op.name in seen:
            continue
        seen.add(op.name)
        one = QuantumCircuit(op.num_qubits)
        one.append(op, range(op.num_qubits))
        try:
            transpile(one, basis_gates=sorted(native), optimization_level=0)
        except TranspilerError:
            bad.append(op.name)
    return bad


def translate(ops: Sequence[GateOp], num_qubits: int, native_gates: Sequence[str]) -> QuantumCircuit:
    """Build the fragment as a circuit and translate it into the node's native gates.

    Uses ``qiskit.transpile(qc, basis_gates=native, optimization_level=0)``
    without coupling map, so no layout or routing happens: qubit ``k`` of the
    result is qubit ``k`` of the fragment, and the unitary, global phase
    included, is preserved (``Operator(result) == Operator(original)``).
    Results are cached per ``(ops, num_qubits, native set)`` (LRU, 2048
    entries); the returned circuit is a fresh copy.

    Args:
        ops: gates in order; names are Qiskit standard gate names, qubit indices
            local to the state (``0 <= q < num_qubits``), params in radians.
        num_qubits: width ``n >= 1`` of the circuit.
        native_gates: the node's native gate names. Names that are not Qiskit
            standard gates are ignored (no gate can be translated into them).

    Returns:
        A ``QuantumCircuit`` of ``num_qubits`` qubits (one register ``q``)
        containing only native gates.

    Raises:
        ExecutionError: ``bad_request`` for an unknown or non-unitary gate name
            (``measure``, ``reset``, ``delay``, ``barrier``...), a wrong number
            of qubits or params, a non-finite param, a repeated or out-of-range
            qubit index, or ``num_qubits < 1``; ``unsupported_gate`` when a gate
            cannot be translated into the native set (the message names the
            gate(s) and the set).
    """
    n = _check_width(num_qubits)
    return _translate_cached(tuple(ops), n, _native_key(native_gates)).copy()


# --------------------------------------------------------------------------- simulation

_SIMULATORS: dict[tuple[str, str], AerSimulator] = {}
_SIM_LOCK = threading.Lock()


def _simulator(method: str, aer_device: str = "CPU") -> AerSimulator:
    """One shared AerSimulator per (method, Aer device); per-call settings go in as run options."""
    key = (method, aer_device)
    sim = _SIMULATORS.get(key)
    if sim is None:
        with _SIM_LOCK:
            sim = _SIMULATORS.get(key)
            if sim is None:
                options: dict[str, object] = {"method": method, "enable_truncation": False}
                if aer_device != "CPU":
                    options["device"] = aer_device
                sim = AerSimulator(**options)
                _SIMULATORS[key] = sim
    return sim


def _check_representation(representation: str, num_qubits: int) -> None:
    if representation not in _REPRESENTATIONS:
        raise ExecutionError(
            "bad_request", f"representation must be one of {list(_REPRESENTATIONS)}, got {representation!r}"
        )
    limit = MAX_DENSITY_MATRIX_QUBITS if representation == "density_matrix" else MAX_STATEVECTOR_QUBITS
    if num_qubits > limit:
        raise ExecutionError(
            "capacity", f"{num_qubits} qubits exceed this node's {representation} limit of {limit} qubits"
        )


def _checked_state(state: np.ndarray, representation: str, num_qubits: int) -> np.ndarray:
    """Validate an incoming state in O(d**2); returns it as C-contiguous complex128."""
    dim = 1 << num_qubits
    shape = (dim, dim) if representation == "density_matrix" else (dim,)
    arr = np.asarray(state)
    if arr.shape != shape:
        raise ExecutionError(
            "bad_request",
            f"a {num_qubits}-qubit {representation} has shape {shape}, got {arr.shape}",
        )
    arr = np.ascontiguousarray(arr, dtype=np.complex128)
    if not np.isfinite(arr).all():
        raise ExecutionError("bad_request", "the state contains non-finite amplitudes")
    if representation == "density_matrix":
        trace = complex(np.trace(arr))
        if abs(trace - 1.0) > _NORM_TOL:
            raise ExecutionError("bad_request", f"the density matrix has trace {trace:.6g}, expected 1")
        asym = float(np.max(np.abs(arr - arr.conj().T)))
        if asym > _HERMITIAN_TOL:
            raise ExecutionError(
                "bad_request", f"the density matrix is not Hermitian (max deviation {asym:.3g})"
            )
    else:
        norm = float(np.linalg.norm(arr))
        if abs(norm - 1.0) > _NORM_TOL:
            raise ExecutionError("bad_request", f"the statevector has norm {norm:.6g}, expected 1")
    return arr


class _SetDensityMatrixUnchecked(SetDensityMatrix):
    """Aer's ``set_density_matrix`` minus its O(d**3) positivity check (see ``_checked_state``)."""

    def __init__(self, data: np.ndarray, num_qubits: int) -> None:  # noqa: D107
        Instruction.__init__(self, "set_density_matrix", num_qubits, 0, [data])


def _initialised_circuit(
    state: np.ndarray, representation: str, num_qubits: int, cregs: Sequence[ClassicalRegister] = ()
) -> QuantumCircuit:
    qc = QuantumCircuit(QuantumRegister(num_qubits, "q"), *cregs)
    if representation == "density_matrix":
        qc.append(_SetDensityMatrixUnchecked(state, num_qubits), qc.qubits, copy=False)
    else:
        try:
            qc.set_statevector(state)
        except ValueError as exc:  # pragma: no cover - _checked_state catches these first
            raise ExecutionError("bad_request", f"invalid statevector: {exc}") from None
    return qc


def _run(method: str, qc: QuantumCircuit, *, aer_device: str = "CPU", **options: object):
    try:
        result = _simulator(method, aer_device).run(qc, **options).result()
    except Exception as exc:  # noqa: BLE001 - Aer raises many types; the caller gets a code
        raise ExecutionError("internal", f"simulator failed: {type(exc).__name__}: {exc}") from None
    if not result.success:
        raise ExecutionError("internal", f"simulator failed: {result.status}")
    return result


def apply_gates(
    state: np.ndarray,
    representation: Representation,
    num_qubits: int,
    ops: Sequence[GateOp],
    native_gates: Sequence[str],
    noise_model: NoiseModel | None,
    teleported_qubits: Sequence[int] = (),
    link_fidelity: float = 1.0,
    *,
    device_model: DeviceCompiler | None = None,
    aer_device: str = "CPU",
) -> GateOutcome:
    """Apply a gate fragment, translated to native gates and with noise, to a state.

    Order: link depolarization on each teleported qubit (density matrix only),
    then the translated fragment with ``noise_model`` (density matrix only),
    simulated by Aer (``method="density_matrix"`` or ``"statevector"``). For
    the statevector representation no noise at all is applied; noise is then
    only estimated by the cost model (DESIGN.md, "Representation").

    Args:
        state: incoming state, shape ``(2**n,)`` (statevector) or
            ``(2**n, 2**n)`` (density matrix), little-endian qubit order; norm
            (trace) 1 within 1e-5, a density matrix Hermitian within 1e-8.
            Positivity of a density matrix is not checked.
        representation: ``"density_matrix"`` or ``"statevector"``.
        num_qubits: ``n``, the width of ``state``.
        ops: the fragment's gates (see :func:`translate`).
        native_gates: the node's native gate names.
        noise_model: from :func:`qb2.service_node.noise.build_noise_model`; None for
            an ideal node.
        teleported_qubits: qubits that arrived by teleportation, distinct, in
            ``[0, n)``.
        link_fidelity: process fidelity of the teleportation link, in (0, 1].
        device_model: a real-device model (FR-016,
            :class:`qb2.service_node.devices.DeviceModel`): when given, the
            fragment is placed and routed on its coupling map and translated
            to its gates by ``device_model.compile_fragment`` (routing SWAPs
            counted in ``native_op_counts``, the routing permutation undone so
            the state keeps its qubit order), and its calibrated noise model
            replaces ``noise_model`` (which is then ignored).
        aer_device: Aer device, ``"CPU"`` or ``"GPU"`` (GPU-enabled Aer only).

    Returns:
        :class:`GateOutcome` with the outgoing state (same shape, complex128),
        the native gate counts and the wall time in seconds.

    Raises:
        ExecutionError: ``bad_request`` (bad representation, state shape, norm or
            hermiticity, ops, teleported qubit or link fidelity),
            ``unsupported_gate`` (see :func:`translate`), ``capacity``
            (``n`` above :data:`MAX_DENSITY_MATRIX_QUBITS` /
            :data:`MAX_STATEVECTOR_QUBITS`), ``internal`` (Aer failed).
    """
    start = time.perf_counter()
    n = _check_width(num_qubits)
    _check_representation(representation, n)
    arr = _checked_state(state, representation, n)
    for q in teleported_qubits:
        if not 0 <= q < n:
            raise ExecutionError("bad_request", f"teleported qubit {q} out of range for a {n}-qubit state")
    if len(set(teleported_qubits)) != len(tuple(teleported_qubits)):
        raise ExecutionError("bad_request", f"teleported_qubits repeats a qubit: {list(teleported_qubits)}")
    try:
        link = link_error(float(link_fidelity))
    except (TypeError, ValueError) as exc:
        raise ExecutionError("bad_request", str(exc)) from None
    if device_model is not None:
        compiled = device_model.compile_fragment(tuple(ops), n)
        fragment, counts, noise_model = compiled.circuit, dict(compiled.native_op_counts), compiled.noise_model
        swaps: int | None = compiled.swaps
    else:
        swaps = None
        fragment = _translate_cached(tuple(ops), n, _native_key(native_gates))
        counts = {name: int(c) for name, c in sorted(fragment.count_ops().items())}

    dm = representation == "density_matrix"
    qc = _initialised_circuit(arr, representation, n)
    if dm and link is not None:
        channel = link.to_instruction()
        for q in teleported_qubits:
            qc.append(channel, [q])
    qc.compose(fragment, inplace=True)
    # Aer drops the global phase of a circuit that starts with set_statevector;
    # it is applied to the result below instead.
    phase = float(qc.global_phase)
    qc.global_phase = 0.0
    if dm:
        qc.save_density_matrix(label="state")
        options: dict[str, object] = {"shots": 1}
        if noise_model is not None:
            options["noise_model"] = noise_model
        result = _run("density_matrix", qc, aer_device=aer_device, **options)
        out = np.asarray(result.data(0)["state"], dtype=np.complex128)
    else:
        qc.save_statevector(label="state")
        result = _run("statevector", qc, aer_device=aer_device, shots=1)
        out = np.asarray(result.data(0)["state"], dtype=np.complex128)
        if phase:
            out = out * np.exp(1j * phase)
    out = np.ascontiguousarray(out)
    if out.shape != arr.shape:  # pragma: no cover - guard against Aer truncation
        raise ExecutionError("internal", f"simulator returned shape {out.shape}, expected {arr.shape}")
    return GateOutcome(state=out, native_op_counts=counts, simulation_s=time.perf_counter() - start,
                       routing_swaps=swaps)


def sample_readout(
    state: np.ndarray,
    representation: Representation,
    num_qubits: int,
    measurements: Sequence[tuple[int, int]],
    clbit_registers: Sequence[ClbitRegister],
    shots: int,
    seed: int | None,
    readout_fidelity: float,
    *,
    readout_noise: NoiseModel | None = None,
    aer_device: str = "CPU",
) -> ReadoutOutcome:
    """Measure a state ``shots`` times with the node's readout error.

    Rebuilds the classical registers in order (flat clbit index = position
    over the registers in order), initialises the state, appends
    ``measure(q, c)`` for each pair and samples with
    ``AerSimulator(method=representation, seed_simulator=seed)``. With an
    ideal readout and the same seed, the counts equal those of
    ``AerSimulator(seed_simulator=seed).run(full_circuit, shots)`` on the
    original circuit whose final state ``state`` is.

    Args:
        state: shape ``(2**n,)`` or ``(2**n, 2**n)`` as in :func:`apply_gates`.
        representation: ``"density_matrix"`` or ``"statevector"``.
        num_qubits: ``n``.
        measurements: ``(qubit, clbit)`` pairs, qubit in ``[0, n)``, clbit in
            ``[0, total register width)``; applied in order.
        clbit_registers: classical registers (name, size), in circuit order.
        shots: number of samples, ``>= 1``.
        seed: Aer ``seed_simulator``; None for a random seed.
        readout_fidelity: probability a measured bit is reported correctly, in
            (0, 1]; each bit is flipped with probability ``1 - readout_fidelity``.
        readout_noise: when given, replaces that symmetric flip: an Aer noise
            model with readout errors keyed by state qubit (a device's
            calibrated errors, :meth:`qb2.service_node.devices.DeviceModel.readout_noise_model`).
            ``readout_fidelity`` is still validated.
        aer_device: Aer device, ``"CPU"`` or ``"GPU"``.

    Returns:
        :class:`ReadoutOutcome` with Qiskit-format counts and the wall time in seconds.

    Raises:
        ExecutionError: ``bad_request`` (bad state, representation, indices,
            registers, shots, seed or readout fidelity), ``capacity`` (too many
            qubits), ``internal`` (Aer failed).
    """
    start = time.perf_counter()
    n = _check_width(num_qubits)
    _check_representation(representation, n)
    arr = _checked_state(state, representation, n)
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ExecutionError("bad_request", f"shots must be an integer >= 1, got {shots!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ExecutionError("bad_request", f"seed must be a non-negative integer or None, got {seed!r}")
    try:
        noise = readout_noise_model(float(readout_fidelity))
    except (TypeError, ValueError) as exc:
        raise ExecutionError("bad_request", str(exc)) from None
    if readout_noise is not None:
        noise = readout_noise
    names = [r.name for r in clbit_registers]
    if len(set(names)) != len(names):
        raise ExecutionError("bad_request", f"clbit register names repeat: {names}")
    try:
        cregs = [ClassicalRegister(r.size, r.name) for r in clbit_registers]
    except Exception as exc:  # noqa: BLE001 - CircuitError for invalid names
        raise ExecutionError("bad_request", f"invalid clbit register: {exc}") from None
    num_clbits = sum(r.size for r in clbit_registers)
    for q, c in measurements:
        if not 0 <= q < n:
            raise ExecutionError("bad_request", f"measured qubit {q} out of range for a {n}-qubit state")
        if not 0 <= c < num_clbits:
            raise ExecutionError("bad_request", f"clbit {c} out of range for {num_clbits} classical bit(s)")

    qc = _initialised_circuit(arr, representation, n, cregs)
    for q, c in measurements:
        qc.measure(q, c)
    options: dict[str, object] = {"shots": int(shots)}
    if seed is not None:
        options["seed_simulator"] = int(seed)
    if noise is not None:
        options["noise_model"] = noise
    result = _run(representation, qc, aer_device=aer_device, **options)
    counts = {str(k): int(v) for k, v in result.get_counts(0).items()} if num_clbits else {"": int(shots)}
    return ReadoutOutcome(counts=counts, simulation_s=time.perf_counter() - start)
