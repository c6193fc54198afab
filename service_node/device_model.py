"""A fake backend as a node's QPU (FR-016): placement, routing and translation of fragments, noise per fragment.

:class:`DeviceModel` holds one device's gates, coupling map and calibrated
noise (build it with :func:`qb2.service_node.device_catalogue.load_device`);
:func:`qb2.service_node.executor.apply_gates` runs a fragment through its
:meth:`DeviceModel.compile_fragment`. Its connectivity is advertised
(:meth:`DeviceModel.advertised_coupling`, in placement order); a fragment's
qubits are placed on a connected set of physical qubits and routed on that
map by :func:`qb2.compiler.routing.route_fragment`, the routine the planner
also uses to count the plan's routing SWAPs (SWAPs are inserted, reported in
``ExecuteResponse.routing_swaps`` and counted as native gates).

Fragment execution on a device (:meth:`DeviceModel.compile_fragment`)
--------------------------------------------------------------------
The incoming state is over the *component's* ``n`` qubits (the coordinator's
order), not the device's. The ``m`` distinct qubits the fragment acts on
("active" qubits, sorted) are the ones placed on the device:

1. the first ``m`` physical qubits in breadth-first order from physical qubit
   0 over the (undirected) coupling graph are chosen
   (:func:`qb2.compiler.routing.placement_order`); they are always connected
   (for a linear device such as fake_manila they are ``0..m-1``); a fragment
   wider than the device fails with code ``capacity``. This order is also
   the advertised numbering: advertised qubit ``j`` is physical qubit
   ``order[j]``;
2. the fragment, relabelled onto ``0..m-1`` (active qubit ``j`` -> chosen
   physical qubit ``j``), is routed by :func:`qb2.compiler.routing.route_fragment`
   on the coupling map restricted to those qubits (SABRE, fixed seed and
   trial count, so reproducible, and exactly what the planner predicts),
   then transpiled against the device's ``Target`` restricted to those
   physical qubits with the trivial layout and ``optimization_level=1``
   (translation to the calibrated native gates; the circuit is already
   mapped, so this inserts no SWAP: checked);
3. routing leaves logical qubit ``j`` on wire ``final[j]``;
   noiseless SWAPs appended after the routed circuit undo that permutation,
   so the returned state keeps the coordinator's qubit order. They are
   bookkeeping (relabelling which physical qubit holds which logical qubit),
   are not noisy and are not counted; the routing SWAPs (decomposed into the
   device's 2-qubit gates) are;
4. the routed circuit runs on the active qubits of the ``n``-qubit state with
   a noise model whose errors are those of the chosen physical qubits,
   attached to the corresponding state qubits
   (:mod:`qb2.service_node.device_noise`). Qubits of the state that the
   fragment does not touch get no noise (they are not on this device).

Readout fragments use the calibrated readout error of physical qubit ``j``
(same breadth-first order) for the ``j``-th measured qubit (sorted); measured
qubits beyond the device width get the device's mean readout error matrix.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import SwapGate
from qiskit.providers import BackendV2
from qiskit.transpiler import Target
from qiskit.transpiler.exceptions import TranspilerError
from qiskit_aer.noise import NoiseModel

from qb2.compiler.routing import (
    ROUTING_SEED,
    OpKey,
    local_ops,
    placement_order,
    restrict,
    route_fragment,
)
from qb2.protocol.execute import GateOp
from qb2.service_node.device_calibration import calibrated_profile, coupling_pairs, faulty, native_gates
from qb2.service_node.device_noise import CalibratedNoise
from qb2.service_node.executor import ExecutionError, logical_circuit
from qb2.service_node.settings import NodeProfile

__all__ = ["DeviceFragment", "DeviceModel"]

#: Transpiler seed (the routing itself is :mod:`qb2.compiler.routing`'s, with the same seed).
_ROUTING_SEED = ROUTING_SEED

_SWAP = SwapGate()


@dataclass(frozen=True)
class DeviceFragment:
    """A fragment compiled for a device (:meth:`DeviceModel.compile_fragment`).

    Attributes:
        circuit: ``n``-qubit circuit (one register ``q``, the coordinator's
            qubit order): the routed native gates on the active qubits, then
            the noiseless SWAPs that undo the routing permutation.
        native_op_counts: native gate counts of the routed fragment (routing
            SWAPs included as their native decomposition; the undo SWAPs
            excluded), keys sorted.
        noise_model: the calibrated noise of the physical qubits used, keyed by
            state qubit; None for a noiseless device model or an empty fragment.
        physical_qubits: physical qubit of each active qubit, in active (sorted) order.
        active_qubits: the fragment's distinct state qubits, sorted.
        swaps: SWAPs the router inserted (:func:`qb2.compiler.routing.route_fragment`;
            the planner's ``FragmentPlan.routing_swaps`` for the same fragment).
    """

    circuit: QuantumCircuit
    native_op_counts: dict[str, int]
    noise_model: NoiseModel | None
    physical_qubits: tuple[int, ...]
    active_qubits: tuple[int, ...]
    swaps: int


@dataclass(frozen=True)
class _Routed:
    circuit: QuantumCircuit  # m qubits, routed, native
    final: tuple[int, ...]  # logical j ends on wire final[j]
    counts: dict[str, int]
    swaps: int


class DeviceModel:
    """One fake backend as a node's QPU: gates, coupling map and calibrated noise.

    Build with :func:`qb2.service_node.device_catalogue.load_device` (cached per
    name and noise flag; also exported by :mod:`qb2.service_node.devices`). Thread-safe:
    compiled fragments and noise models are cached behind locks.

    Attributes:
        name: canonical device name (``fake_manila``).
        backend: the qiskit-ibm-runtime fake backend (``BackendV2``).
        native_gates: standard unitary gate names of the device, sorted.
        num_qubits: the device's qubit count.
        coupling: directed physical pairs on which some native 2-qubit gate is
            calibrated and usable (pairs with error 1.0, IBM's marker of a
            faulty coupler, are left out), sorted.
        noisy: whether calibrated noise is applied.
    """

    def __init__(self, backend: BackendV2, *, noise: bool = True) -> None:
        self.name: str = backend.name
        self.backend = backend
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # fake_nighthawk warns on target access
            self.target: Target = backend.target
        self.native_gates = native_gates(self.target)
        self.num_qubits: int = int(backend.num_qubits)
        self.coupling: tuple[tuple[int, int], ...] = coupling_pairs(self.target, self.native_gates)
        self.noisy = bool(noise)
        self._order = placement_order(self.num_qubits, self.coupling)
        self._lock = threading.Lock()
        self._routed: dict[tuple[tuple[OpKey, ...], int], _Routed] = {}
        self._targets: dict[int, Target] = {}
        self._noise: dict[tuple[int, ...], NoiseModel | None] = {}
        self._readout: dict[tuple[int, ...], NoiseModel | None] = {}
        self._calibrated = CalibratedNoise(self.target, self.native_gates)

    def __repr__(self) -> str:
        return f"DeviceModel({self.name!r}, qubits={self.num_qubits}, noise={self.noisy})"

    # ----------------------------------------------------------------- layout

    @property
    def max_fragment_qubits(self) -> int:
        """Widest fragment the device holds on connected qubits (its connected component of qubit 0)."""
        return len(self._order)

    def physical_qubits(self, k: int) -> tuple[int, ...]:
        """The ``k`` connected physical qubits a ``k``-qubit fragment is placed on.

        The first ``k`` qubits of a breadth-first walk from physical qubit 0
        (neighbours in ascending order) over the undirected coupling graph.

        Raises:
            ExecutionError: ``capacity`` when ``k`` exceeds :attr:`max_fragment_qubits`.
        """
        if k > len(self._order):
            raise ExecutionError(
                "capacity", f"a {k}-qubit fragment does not fit on device {self.name} ({len(self._order)} connected qubits)"
            )
        return self._order[:k]

    def advertised_coupling(self, k: int | None = None) -> tuple[tuple[int, int], ...]:
        """The coupling map the node advertises for its first ``k`` qubits (default: all it holds).

        Advertised qubit ``j`` is physical qubit ``physical_qubits(k)[j]``
        (placement order), so every advertised qubit ``j > 0`` is coupled to
        a lower one, as :class:`qb2.protocol.advert.ServiceAdvertisement` requires;
        directed pairs, sorted (:func:`qb2.compiler.routing.restrict`).
        """
        return restrict(self.coupling, self.physical_qubits(len(self._order) if k is None else k))

    def _sub_target(self, m: int) -> Target:
        """The device target restricted to ``physical_qubits(m)``, relabelled ``0..m-1``."""
        cached = self._targets.get(m)
        if cached is not None:
            return cached
        phys = self.physical_qubits(m)
        index = {p: j for j, p in enumerate(phys)}
        qprops = self.target.qubit_properties
        sub = Target(
            num_qubits=m,
            dt=self.target.dt,
            qubit_properties=[qprops[p] for p in phys] if qprops else None,
        )
        for name in self.native_gates:
            props: dict[tuple[int, ...], Any] = {}
            for qargs, p in self.target[name].items():
                if qargs is not None and all(q in index for q in qargs) and not faulty(p):
                    props[tuple(index[q] for q in qargs)] = p
            if props:
                sub.add_instruction(self.target.operation_from_name(name), props, name=name)
        with self._lock:
            self._targets.setdefault(m, sub)
        return self._targets[m]

    # ----------------------------------------------------------------- compile

    def _route(self, ops: tuple[OpKey, ...], m: int) -> _Routed:
        """Route ``ops`` (on ``0..m-1``) with the planner's routine, then translate to the device target."""
        key = (ops, m)
        cached = self._routed.get(key)
        if cached is not None:
            return cached
        try:
            routed = route_fragment(ops, m, restrict(self.coupling, self.physical_qubits(m)))
        except ValueError as exc:
            raise ExecutionError("unsupported_gate", f"fragment cannot be routed on device {self.name}: {exc}") from None
        extra: list[int] = []

        def after_pass(pass_: object, dag: Any, **_: object) -> None:
            if type(pass_).__name__ == "SabreSwap":  # the circuit is mapped: routing must not run again
                extra.append(int(dag.count_ops().get("swap", 0)))

        try:
            native = transpile(
                routed.circuit,
                target=self._sub_target(m),
                initial_layout=list(range(m)),
                routing_method="sabre",
                optimization_level=1,
                seed_transpiler=_ROUTING_SEED,
                callback=after_pass,
            )
        except TranspilerError as exc:
            raise ExecutionError(
                "unsupported_gate", f"fragment cannot be compiled for device {self.name}: {exc}"
            ) from None
        if native.num_qubits != m:  # pragma: no cover - guard: the target has exactly m qubits
            raise ExecutionError("internal", f"routing produced {native.num_qubits} qubits, expected {m}")
        moved = tuple(native.layout.final_index_layout()) if native.layout is not None else tuple(range(m))
        if any(extra) or moved != tuple(range(m)):  # pragma: no cover - guard
            raise ExecutionError("internal", f"device translation re-routed a mapped fragment on {self.name}")
        counts = {name: int(c) for name, c in sorted(native.count_ops().items())}
        # The router's swaps are decomposed into native gates by the translation,
        # so ``counts`` carries them as native gates (3 cx per swap on cx devices).
        result = _Routed(native, routed.final, counts, routed.swaps)
        with self._lock:
            if len(self._routed) > 4096:
                self._routed.clear()
            self._routed.setdefault(key, result)
        return result

    def compile_fragment(self, ops: Sequence[GateOp], num_qubits: int) -> DeviceFragment:
        """Place, route and translate a fragment for this device (module docstring, steps 1-4).

        Args:
            ops: the fragment's gates on state qubits ``0 <= q < num_qubits``
                (validated like :func:`qb2.service_node.executor.translate`).
            num_qubits: ``n``, the width of the incoming state.

        Returns:
            :class:`DeviceFragment`; its circuit's unitary equals the fragment's
            (global phase included) when noise is ignored.

        Raises:
            ExecutionError: ``bad_request`` (invalid ops), ``capacity`` (more
                active qubits than the device holds), ``unsupported_gate``
                (not compilable for the device).
        """
        ops = tuple(ops)
        logical_circuit(ops, num_qubits)  # validates names, arity, params, indices
        active = tuple(sorted({q for op in ops for q in op.qubits}))
        circuit = _circuit_q(num_qubits)
        if not active:
            return DeviceFragment(circuit, {}, None, (), (), 0)
        keyed, m = local_ops(ops)  # active qubit j -> j
        phys = self.physical_qubits(m)
        routed = self._route(keyed, m)
        wires = [circuit.qubits[q] for q in active]
        circuit.compose(routed.circuit, qubits=wires, inplace=True)
        for a, b in _undo_swaps(routed.final):
            circuit.append(_SWAP, [wires[a], wires[b]], copy=False)
        return DeviceFragment(
            circuit=circuit,
            native_op_counts=dict(routed.counts),
            noise_model=self.noise_model(active),
            physical_qubits=phys,
            active_qubits=active,
            swaps=routed.swaps,
        )

    # ----------------------------------------------------------------- noise

    def noise_model(self, active: Sequence[int]) -> NoiseModel | None:
        """Gate noise for a fragment whose sorted active state qubits are ``active``.

        The calibrated errors (Aer's ``basic_device_gate_errors`` on the
        device target, what ``NoiseModel.from_backend`` uses) of every native
        gate on ``physical_qubits(len(active))``, re-keyed onto the state
        qubits: physical ``phys[j]`` -> state qubit ``active[j]``
        (:meth:`qb2.service_node.device_noise.CalibratedNoise.gate_noise_model`). Cached.

        Returns:
            The model, or None when the device model is noiseless.

        Raises:
            ExecutionError: ``capacity`` when ``active`` is wider than :attr:`max_fragment_qubits`.
        """
        if not self.noisy:
            return None
        key = tuple(active)
        if key in self._noise:
            return self._noise[key]
        model = self._calibrated.gate_noise_model(self.physical_qubits(len(key)), key)
        with self._lock:
            self._noise.setdefault(key, model)
        return self._noise[key]

    def readout_noise_model(self, measured: Sequence[int]) -> NoiseModel | None:
        """Readout noise for measuring the state qubits ``measured``.

        The ``j``-th measured qubit (sorted, distinct) gets the calibrated
        ``ReadoutError`` of physical qubit ``physical_qubits(...)[j]``; qubits
        beyond the device width get the mean of the device's readout matrices.

        Returns:
            The model (cached), or None when the device model is noiseless or nothing is measured.
        """
        if not self.noisy:
            return None
        key = tuple(sorted(set(measured)))
        if not key:
            return None
        if key in self._readout:
            return self._readout[key]
        on_device = min(len(key), len(self._order))
        model = self._calibrated.readout_noise_model(self.physical_qubits(on_device), key)
        with self._lock:
            self._readout.setdefault(key, model)
        return self._readout[key]

    # ----------------------------------------------------------------- advertisement

    def profile(self) -> NodeProfile:
        """The NodeProfile this device advertises.

        Formulas: :func:`qb2.service_node.device_calibration.calibrated_profile`
        (fidelities 1.0 when the model is noiseless).
        """
        return calibrated_profile(self.name, self.target, self.native_gates, self.max_fragment_qubits,
                                  noise=self.noisy)


def _circuit_q(num_qubits: int) -> QuantumCircuit:
    from qiskit.circuit import QuantumRegister

    return QuantumCircuit(QuantumRegister(num_qubits, "q"))


def _undo_swaps(final: Sequence[int]) -> list[tuple[int, int]]:
    """Wire transpositions that move logical ``j`` from wire ``final[j]`` back to wire ``j``.

    Applied in order after the routed circuit. Selection sort: at most ``m - 1`` swaps.
    """
    where = list(final)  # logical -> wire
    holder = [0] * len(where)  # wire -> logical
    for logical, wire in enumerate(where):
        holder[wire] = logical
    swaps: list[tuple[int, int]] = []
    for j in range(len(where)):
        if holder[j] == j:
            continue
        w = where[j]  # logical j sits on wire w; swap wires j and w
        other = holder[j]
        swaps.append((j, w))
        holder[j], holder[w] = j, other
        where[j], where[other] = j, w
    return swaps

