"""Simulated quantum states as frame payloads.

A state travels as raw little-endian complex128 bytes in C order: a vector of
``2**n`` amplitudes, or a ``2**n x 2**n`` density matrix. Qubit ``k`` is bit
``k`` of the basis index (Qiskit's little-endian convention).
"""

from __future__ import annotations

import numpy as np

from qb2.protocol.execute import Representation

_DTYPE = np.dtype("<c16")


def state_nbytes(representation: Representation, num_qubits: int) -> int:
    """Payload size in bytes of a state of ``num_qubits`` qubits."""
    dim = 1 << num_qubits
    return _DTYPE.itemsize * (dim * dim if representation == "density_matrix" else dim)


def pack_state(state: np.ndarray) -> bytes:
    """Serialise a statevector or density matrix to payload bytes."""
    return np.ascontiguousarray(state, dtype=_DTYPE).tobytes()


def unpack_state(payload: bytes, representation: Representation, num_qubits: int) -> np.ndarray:
    """Rebuild a state from payload bytes.

    Returns:
        shape ``(2**n,)`` for a statevector, ``(2**n, 2**n)`` for a density matrix.

    Raises:
        ValueError: the payload length does not match the declared shape.
    """
    expected = state_nbytes(representation, num_qubits)
    if len(payload) != expected:
        raise ValueError(
            f"state payload is {len(payload)} bytes; a {num_qubits}-qubit "
            f"{representation} needs {expected}"
        )
    flat = np.frombuffer(payload, dtype=_DTYPE).copy()
    dim = 1 << num_qubits
    return flat.reshape((dim, dim)) if representation == "density_matrix" else flat


def zero_state(representation: Representation, num_qubits: int) -> np.ndarray:
    """|0...0> of ``num_qubits`` qubits in the given representation."""
    dim = 1 << num_qubits
    if representation == "density_matrix":
        state = np.zeros((dim, dim), dtype=_DTYPE)
        state[0, 0] = 1.0
    else:
        state = np.zeros(dim, dtype=_DTYPE)
        state[0] = 1.0
    return state
