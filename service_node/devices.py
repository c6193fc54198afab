"""Realistic device models for service nodes (FR-016): qiskit-ibm-runtime's fake backends.

A node started with ``--device fake_manila`` is a model of that IBM device:

* **advertisement** (:func:`device_profile`): native gates = the device's
  standard unitary gate names, width = its qubit count, per-class fidelities
  and gate times from its calibration (see :func:`device_profile` for the
  exact formulas);
* **connectivity**: the node advertises the device's coupling map
  (:meth:`DeviceModel.advertised_coupling`, in placement order); a fragment's
  qubits are placed on a connected set of physical qubits and routed on that
  map by :func:`qb2.compiler.routing.route_fragment`, the routine the planner
  also uses to count the plan's routing SWAPs (SWAPs are inserted, reported
  in ``ExecuteResponse.routing_swaps`` and counted as native gates);
* **noise**: the calibrated errors of the physical qubits used, as Aer builds
  them for ``NoiseModel.from_backend(backend)`` (depolarizing gate error
  combined with thermal relaxation from T1/T2 and gate durations; per-qubit
  readout errors), instead of the synthetic depolarizing model of
  :mod:`qb2.service_node.noise`.

Source of the calibration data: ``qiskit_ibm_runtime.fake_provider``
(``FakeProviderForBackendV2``, 68 backends of 1-156 qubits in 0.51), snapshots
of real IBM devices. Units: Qiskit ``Target`` durations are seconds; this
module advertises microseconds.

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
   attached to the corresponding state qubits. Qubits of the state that the
   fragment does not touch get no noise (they are not on this device).

Readout fragments use the calibrated readout error of physical qubit ``j``
(same breadth-first order) for the ``j``-th measured qubit (sorted); measured
qubits beyond the device width get the device's mean readout error matrix.
"""

from __future__ import annotations

import difflib
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import ValidationError
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import SwapGate
from qiskit.providers import BackendV2
from qiskit.transpiler import Target
from qiskit.transpiler.exceptions import TranspilerError
from qiskit_aer.noise import NoiseModel, QuantumError, ReadoutError

from qb2.compiler.routing import (
    ROUTING_SEED,
    OpKey,
    local_ops,
    placement_order,
    restrict,
    route_fragment,
)
from qb2.protocol.advert import Fidelities, GateTimes
from qb2.protocol.execute import GateOp
from qb2.service_node.config import NodeConfigError, NodeProfile, NodeSettings
from qb2.service_node.executor import FragmentError, _logical_circuit
from qb2.service_node.noise import gate_arity

__all__ = [
    "EXECUTORS",
    "DeviceFragment",
    "DeviceModel",
    "check_executor",
    "device_names",
    "device_profile",
    "gpu_available",
    "load_device",
    "load_device_node_settings",
]

#: Executors a node can advertise: Aer on the CPU, Aer on an NVIDIA GPU (needs qiskit-aer-gpu).
EXECUTORS = ("aer", "aer-gpu")
#: Widest fragment a device node advertises (NodeProfile.qubits' upper bound).
_MAX_PROFILE_QUBITS: int = next(
    m.le for m in NodeProfile.model_fields["qubits"].metadata if getattr(m, "le", None) is not None
)
#: Transpiler seed (the routing itself is :mod:`qb2.compiler.routing`'s, with the same seed).
_ROUTING_SEED = ROUTING_SEED
#: NodeProfile keys a device node takes from its calibration (overrides are refused).
_CALIBRATED_KEYS = ("native_gates", "fidelity", "gate_times")

_SWAP = SwapGate()
_PROVIDER_LOCK = threading.Lock()


# --------------------------------------------------------------------------- backends


@lru_cache(maxsize=1)
def _backends() -> dict[str, BackendV2]:
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with _PROVIDER_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fake_nighthawk warns that its errors are not typical
        return {b.name: b for b in FakeProviderForBackendV2().backends()}


def device_names() -> list[str]:
    """Names of every available device model, sorted (``fake_manila``, ``fake_sherbrooke``, ...).

    Source: ``qiskit_ibm_runtime.fake_provider.FakeProviderForBackendV2`` (68 in 0.51).
    """
    return sorted(_backends())


def _resolve(name: str) -> str:
    """Canonical device name: lower-case, ``fake_`` prefix added when missing.

    Raises:
        NodeConfigError: no such device (the message lists close matches and a few valid names).
    """
    if not isinstance(name, str) or not name.strip():
        raise NodeConfigError(f"device name must be a non-empty string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if not key.startswith("fake_"):
        key = "fake_" + key
    names = _backends()
    if key in names:
        return key
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.75)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise NodeConfigError(
        f"unknown device {name!r}; {hint}valid names include fake_manila, fake_lagos, fake_sherbrooke, "
        f"fake_torino ({len(names)} qiskit-ibm-runtime fake backends; qb2.service_node.devices.device_names() lists all)"
    )


def _native_gates(target: Target) -> tuple[str, ...]:
    """Standard unitary gates among the target's operations, sorted (``measure``, ``delay``... dropped)."""
    return tuple(sorted(n for n in target.operation_names if gate_arity(n) is not None))


# --------------------------------------------------------------------------- profile


def _faulty(props: Any) -> bool:
    """IBM marks a broken coupler with a calibrated error of 1.0; such a pair is not usable."""
    return props is not None and props.error is not None and props.error >= 1.0


def _physical_entries(target: Target, names: Sequence[str]) -> list[tuple[float | None, float | None]]:
    """``(error, duration_s)`` of every calibrated (gate, qargs) of ``names`` that is usable and not virtual.

    A gate entry is virtual when its calibrated duration is exactly 0 (IBM's ``rz``
    is a frame change: duration 0, error 0); faulty entries (error 1.0) and
    entries without properties are skipped.
    """
    out: list[tuple[float | None, float | None]] = []
    for name in names:
        for qargs, props in target[name].items():
            if qargs is None or props is None or props.duration == 0.0 or _faulty(props):
                continue
            out.append((props.error, props.duration))
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def _fidelity(mean_error: float | None) -> float:
    if mean_error is None:
        return 1.0
    return min(1.0, max(1e-6, 1.0 - mean_error))


def device_profile(name: str, *, noise: bool = True) -> NodeProfile:
    """The :class:`NodeProfile` a node modelling device ``name`` advertises.

    Derived from the fake backend's ``Target`` (calibration snapshot):

    * ``native_gates``: the target's operation names that are Qiskit standard
      unitary gates (fake_manila: ``cx, id, rz, sx, x``);
    * ``qubits``: ``backend.num_qubits``, capped at NodeProfile's limit (24)
      for larger devices;
    * ``fidelity.gate_1q`` = 1 - mean calibrated error over every (1-qubit
      native gate, qubit) entry that is not virtual (duration 0: ``rz``);
      ``gate_2q`` = 1 - mean error over every usable (2-qubit native gate,
      directed pair) (faulty couplers, error 1.0, are left out as they are
      left out of the coupling map); ``readout`` = 1 - mean ``measure`` error over the qubits. IBM's
      errors are average-gate infidelities (randomized benchmarking), so these
      are average gate fidelities, slightly above the process fidelities the
      synthetic model uses (``F_pro = ((d + 1) F_avg - 1) / d``);
    * ``gate_times``: mean calibrated durations of the same entries (and of
      ``measure``), converted from seconds to microseconds;
    * ``name`` = ``device`` = the canonical device name, ``device_noise`` = ``noise``.

    With ``noise=False`` the node runs the device's gates and connectivity
    without any error, and advertises fidelities of 1.0 accordingly.

    Args:
        name: device name, e.g. ``"fake_manila"`` (``"manila"`` also works).
        noise: whether the node applies the device's calibrated noise.

    Returns:
        A validated NodeProfile.

    Raises:
        NodeConfigError: unknown device name.
    """
    model = load_device(name, noise=noise)
    return model.profile()


def check_executor(executor: str) -> str:
    """Validate an executor name; returns the Aer device it runs on (``"CPU"`` or ``"GPU"``).

    Raises:
        NodeConfigError: not one of :data:`EXECUTORS`, or ``aer-gpu`` without a
            GPU-enabled Aer (``AerSimulator().available_devices()`` lacks ``"GPU"``).
    """
    if executor not in EXECUTORS:
        raise NodeConfigError(f"unknown executor {executor!r}; choose one of {list(EXECUTORS)}")
    if executor == "aer-gpu":
        if not gpu_available():
            from qiskit_aer import AerSimulator

            raise NodeConfigError(
                "executor 'aer-gpu' needs a GPU-enabled Aer (pip install qiskit-aer-gpu) and an NVIDIA GPU; "
                f"this Aer reports devices {list(AerSimulator().available_devices())}"
            )
        return "GPU"
    return "CPU"


@lru_cache(maxsize=1)
def gpu_available() -> bool:
    """Whether Aer can simulate on a GPU here (``"GPU" in AerSimulator().available_devices()``)."""
    from qiskit_aer import AerSimulator

    try:
        return "GPU" in AerSimulator().available_devices()
    except Exception:  # noqa: BLE001 - a broken CUDA install means no GPU
        return False


def load_device_node_settings(device: str, executor: str = "aer", *, noise: bool = True,
                              **overrides: Any) -> NodeSettings:
    """Settings of a node that models ``device`` (what ``qb2 node --device NAME --executor E`` runs).

    Order: config file < env (``QB2_NODE__...``) < device calibration < ``overrides``.
    The device decides ``native_gates``, ``fidelity``, ``gate_times`` and the width;
    ``name`` defaults to the device name unless the file, env or an override sets one.

    Args:
        device: device name, e.g. ``"fake_manila"`` (see :func:`device_names`).
        executor: ``"aer"`` (CPU) or ``"aer-gpu"``.
        noise: apply the device's calibrated noise (False: an ideal model of the device).
        overrides: NodeProfile keys, ``None`` values ignored: ``name``,
            ``max_concurrent_fragments``, ``qubits`` (at most the device's width).

    Returns:
        NodeSettings whose ``node`` has ``device``, ``device_noise`` and ``executor`` set.

    Raises:
        NodeConfigError: unknown device (lists close and valid names), unknown or
            unavailable executor, an override of a calibrated key, a width above
            the device's, or an invalid value.
    """
    profile = device_profile(device, noise=noise)
    check_executor(executor)
    given = {k: v for k, v in overrides.items() if v is not None}
    refused = sorted(k for k in given if k in _CALIBRATED_KEYS)
    if refused:
        raise NodeConfigError(
            f"node.{refused[0]} cannot be set for a device node: device {profile.device} takes "
            f"{', '.join(_CALIBRATED_KEYS)} from its calibration"
        )
    if "qubits" in given and isinstance(given["qubits"], int) and given["qubits"] > profile.qubits:
        raise NodeConfigError(
            f"node.qubits = {given['qubits']}: device {profile.device} has only {profile.qubits} qubits"
        )
    try:
        base = NodeSettings()
        node = base.node.model_dump(exclude_unset=True)
        node.pop("device", None)
        calibrated = profile.model_dump(exclude={"name", "max_concurrent_fragments"})
        merged = {**node, **calibrated, "executor": executor}
        merged.setdefault("name", profile.name)
        merged.update(given)
        return base.model_copy(update={"node": NodeProfile.model_validate(merged)})
    except ValidationError as exc:
        details = "; ".join(
            f"node.{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise NodeConfigError(f"invalid node configuration: {details}") from None


# --------------------------------------------------------------------------- the model


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

    Build with :func:`load_device` (cached per name and noise flag). Thread-safe:
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
        self.native_gates = _native_gates(self.target)
        self.num_qubits: int = int(backend.num_qubits)
        pairs: set[tuple[int, int]] = set()
        for gate in self.native_gates:
            if gate_arity(gate) == 2:
                pairs.update(q for q, p in self.target[gate].items() if q is not None and not _faulty(p))
        self.coupling: tuple[tuple[int, int], ...] = tuple(sorted(pairs))
        self.noisy = bool(noise)
        self._order = placement_order(self.num_qubits, self.coupling)
        self._lock = threading.Lock()
        self._routed: dict[tuple[tuple[OpKey, ...], int], _Routed] = {}
        self._targets: dict[int, Target] = {}
        self._noise: dict[tuple[int, ...], NoiseModel | None] = {}
        self._readout: dict[tuple[int, ...], NoiseModel | None] = {}
        self._gate_errors: list[tuple[str, tuple[int, ...], QuantumError]] | None = None
        self._readout_errors: dict[int, ReadoutError] | None = None

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
            FragmentError: ``capacity`` when ``k`` exceeds :attr:`max_fragment_qubits`.
        """
        if k > len(self._order):
            raise FragmentError(
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
                if qargs is not None and all(q in index for q in qargs) and not _faulty(p):
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
            raise FragmentError("unsupported_gate", f"fragment cannot be routed on device {self.name}: {exc}") from None
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
            raise FragmentError(
                "unsupported_gate", f"fragment cannot be compiled for device {self.name}: {exc}"
            ) from None
        if native.num_qubits != m:  # pragma: no cover - guard: the target has exactly m qubits
            raise FragmentError("internal", f"routing produced {native.num_qubits} qubits, expected {m}")
        moved = tuple(native.layout.final_index_layout()) if native.layout is not None else tuple(range(m))
        if any(extra) or moved != tuple(range(m)):  # pragma: no cover - guard
            raise FragmentError("internal", f"device translation re-routed a mapped fragment on {self.name}")
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
            FragmentError: ``bad_request`` (invalid ops), ``capacity`` (more
                active qubits than the device holds), ``unsupported_gate``
                (not compilable for the device).
        """
        ops = tuple(ops)
        _logical_circuit(ops, num_qubits)  # validates names, arity, params, indices
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

    def _calibrated_gate_errors(self) -> list[tuple[str, tuple[int, ...], QuantumError]]:
        if self._gate_errors is None:
            from qiskit_aer.noise.device.models import basic_device_gate_errors

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                errors = [
                    (name, tuple(qubits), error)
                    for name, qubits, error in basic_device_gate_errors(target=self.target)
                    if name in self.native_gates
                ]
            self._gate_errors = errors
        return self._gate_errors

    def _calibrated_readout_errors(self) -> dict[int, ReadoutError]:
        if self._readout_errors is None:
            from qiskit_aer.noise.device.models import basic_device_readout_errors

            self._readout_errors = {
                int(qubits[0]): error for qubits, error in basic_device_readout_errors(target=self.target)
            }
        return self._readout_errors

    def noise_model(self, active: Sequence[int]) -> NoiseModel | None:
        """Gate noise for a fragment whose sorted active state qubits are ``active``.

        The calibrated errors (Aer's ``basic_device_gate_errors`` on the
        device target, what ``NoiseModel.from_backend`` uses) of every native
        gate on ``physical_qubits(len(active))``, re-keyed onto the state
        qubits: physical ``phys[j]`` -> state qubit ``active[j]``. Cached.

        Returns:
            The model, or None when the device model is noiseless.
        """
        if not self.noisy:
            return None
        key = tuple(active)
        if key in self._noise:
            return self._noise[key]
        phys = self.physical_qubits(len(key))
        to_state = {p: key[j] for j, p in enumerate(phys)}
        model = NoiseModel(basis_gates=list(self.native_gates))
        for name, qubits, error in self._calibrated_gate_errors():
            if all(q in to_state for q in qubits):
                model.add_quantum_error(error, name, [to_state[q] for q in qubits], warnings=False)
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
        errors = self._calibrated_readout_errors()
        on_device = min(len(key), len(self._order))
        phys = self.physical_qubits(on_device)
        mean = None
        if errors:
            mean = ReadoutError(np.mean([e.probabilities for e in errors.values()], axis=0))
        model = NoiseModel()
        for j, q in enumerate(key):
            error = errors.get(phys[j]) if j < on_device else mean
            if error is not None:
                model.add_readout_error(error, [q], warnings=False)
        with self._lock:
            self._readout.setdefault(key, model)
        return self._readout[key]

    # ----------------------------------------------------------------- advertisement

    def profile(self) -> NodeProfile:
        """The NodeProfile this device advertises (see :func:`device_profile`)."""
        one = [g for g in self.native_gates if gate_arity(g) == 1]
        two = [g for g in self.native_gates if gate_arity(g) == 2]
        e1 = _physical_entries(self.target, one)
        e2 = _physical_entries(self.target, two)
        meas = [(p.error, p.duration) for q, p in self.target["measure"].items()
                if q is not None and p is not None] if "measure" in self.target else []
        if self.noisy:
            fidelity = Fidelities(
                gate_1q=_fidelity(_mean([e for e, _ in e1])),
                gate_2q=_fidelity(_mean([e for e, _ in e2])),
                readout=_fidelity(_mean([e for e, _ in meas])),
            )
        else:
            fidelity = Fidelities(gate_1q=1.0, gate_2q=1.0, readout=1.0)
        defaults = GateTimes()
        times = GateTimes(
            gate_1q_us=_us(_mean([d for _, d in e1]), defaults.gate_1q_us),
            gate_2q_us=_us(_mean([d for _, d in e2]), defaults.gate_2q_us),
            readout_us=_us(_mean([d for _, d in meas]), defaults.readout_us),
        )
        return NodeProfile(
            name=self.name,
            native_gates=list(self.native_gates),
            qubits=max(1, min(self.max_fragment_qubits, _MAX_PROFILE_QUBITS)),
            fidelity=fidelity,
            gate_times=times,
            device=self.name,
            device_noise=self.noisy,
        )


def _us(seconds: float | None, default: float) -> float:
    return default if seconds is None else seconds * 1e6


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


def load_device(name: str, *, noise: bool = True) -> DeviceModel:
    """The :class:`DeviceModel` of device ``name`` (cached per canonical name and ``noise``).

    Args:
        name: e.g. ``"fake_manila"`` or ``"manila"``.
        noise: apply calibrated noise (False: the device's gates and coupling only).

    Raises:
        NodeConfigError: unknown device (message lists close matches and valid names).
    """
    return _load(_resolve(name), bool(noise))


@lru_cache(maxsize=32)
def _load(key: str, noise: bool) -> DeviceModel:
    return DeviceModel(_backends()[key], noise=noise)
