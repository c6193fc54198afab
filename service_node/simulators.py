"""The simulator a node runs on (FR-016): Aer on the CPU, or Aer on an NVIDIA GPU.

``NodeProfile.executor`` (``--executor``) names it; the node advertises it, and
:func:`check_executor` turns it into the Aer device the executor's
simulations use (``aer_device`` of :func:`qb2.service_node.executor.apply_gates`).
``aer-gpu`` needs the GPU build of Aer (``pip install qiskit-aer-gpu``) and an
NVIDIA GPU; :func:`gpu_available` says whether this machine has both.
"""

from __future__ import annotations

from functools import lru_cache

from qb2.service_node.settings import NodeConfigError

__all__ = ["EXECUTORS", "check_executor", "gpu_available"]

#: Executors a node can advertise: Aer on the CPU, Aer on an NVIDIA GPU (needs qiskit-aer-gpu).
EXECUTORS = ("aer", "aer-gpu")


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
