"""Configuration (FR-011): a TOML file, then ``QB2_`` environment overrides.

Precedence, highest first: explicit keyword arguments (CLI flags), environment
variables (``QB2_API__PORT=8800``; nested keys joined by ``__``), the TOML file
(``--config PATH`` or ``QB2_CONFIG``), then the defaults below.
``config.example.toml`` documents every key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from qb2.coordinator.errors import CoordinatorError
from qb2.daemon.settings import DiscoverySettings, P2PSettings, Qb2Settings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiSettings(_Section):
    """HTTP job API (FR-009, FR-014). ``port = 0`` picks a free ephemeral port.

    ``api_keys``: when non-empty, every request except health and metrics needs
    ``X-API-Key: <key>`` (or ``Authorization: Bearer <key>``); several keys allow
    rotation. ``rate_limit``: requests per client (API key, else IP address),
    in the ``limits`` notation such as ``"100/minute"``; empty disables it.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list)
    rate_limit: str = ""

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        if value:
            from limits import parse

            try:
                parse(value)
            except ValueError:
                raise ValueError("expected a rate such as '100/minute' or '5/second'") from None
        return value


class WeightSettings(_Section):
    """Default cost weights (FR-004); a job may override them in its submit request.

    Units of the weighted terms: latency per second, fidelity risk and
    entanglement per nat (``-ln`` fidelity), price per credit (see ``compiler/cost.py``).
    """

    latency: float = Field(default=1.0, ge=0.0)
    fidelity_risk: float = Field(default=1.0, ge=0.0)
    entanglement: float = Field(default=1.0, ge=0.0)
    price: float = Field(default=1.0, ge=0.0)


class CompilerSettings(_Section):
    """Planner options (FR-004); see :class:`compiler.PlannerOptions`."""

    weights: WeightSettings = WeightSettings()
    ebit_generation_s: float = Field(default=0.0, ge=0.0, description="seconds to generate one ebit")

    max_fragment_qubits: int = Field(default=4, ge=1, le=64)
    max_fragment_ops: int = Field(default=12, ge=1, le=100_000)
    link_fidelity: float = Field(default=0.99, gt=0.0, le=1.0)
    density_matrix_max_qubits: int = Field(default=8, ge=1, le=14)
    statevector_max_qubits: int = Field(default=24, ge=1, le=30)


class RuntimeSettings(_Section):
    """Job execution (FR-006)."""

    max_concurrent_jobs: int = Field(default=4, ge=1, le=256)
    execute_timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    max_attempts: int = Field(default=3, ge=1, le=20, description="invocations per fragment before fallback")
    execute_timeout_per_mib_s: float = Field(default=1.0, ge=0.0, le=600.0,
                                             description="added to execute_timeout_s per MiB of state sent")
    reserve_timeout_s: float = Field(default=5.0, gt=0.0, le=600.0, description="per reservation request")
    max_reservation_offers: int = Field(
        default=8, ge=0, le=64,
        description="later windows a busy node may offer per fragment before the fragment runs without one (FR-005)")
    release_timeout_s: float = Field(
        default=10.0, gt=0.0, le=600.0,
        description="seconds a finished, cancelled or failed job spends at most releasing its windows (FR-005)")
    metrics_snapshot_s: float = Field(default=60.0, gt=0.0, le=86400.0, description="metrics written to SQLite this often")
    backoff_base_s: float = Field(default=0.05, ge=0.0, le=60.0)
    backoff_max_s: float = Field(default=1.0, ge=0.0, le=600.0)
    max_fallbacks: int = Field(default=2, ge=0, le=20, description="re-plans without failed nodes per job")
    queue_capacity: int = Field(default=1000, ge=1, le=1_000_000)


class QualitySettings(_Section):
    """Quality monitoring (FR-008): link probes and the thresholds below which a node is degraded.

    ``probe_interval_s``: seconds between libp2p pings to each node (0 disables);
    ``probes``: pings per round (loss = failed / probes). Fidelities are in [0, 1].
    """

    probe_interval_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    probes: int = Field(default=3, ge=1, le=100)
    probe_timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    min_gate_1q: float = Field(default=0.0, ge=0.0, le=1.0)
    min_gate_2q: float = Field(default=0.0, ge=0.0, le=1.0)
    min_readout: float = Field(default=0.0, ge=0.0, le=1.0)
    max_rtt_s: float = Field(default=1.0, gt=0.0)
    max_loss: float = Field(default=0.5, ge=0.0, le=1.0)


class LimitSettings(_Section):
    """Input limits, checked while the circuit is ingested, never after (FR-014; see compiler/limits.py)."""

    max_qasm_bytes: int = Field(default=512 * 1024, ge=16)
    max_qubits: int = Field(default=64, ge=1, le=4096, description="declared qubits, counted at each declaration")
    max_clbits: int = Field(default=1024, ge=1, le=65536, description="declared classical bits")
    max_operations: int = Field(default=100_000, ge=1, le=10_000_000,
                                description="gates + measurements after expanding gate definitions; also the "
                                "budget of expansion steps")
    max_gate_nesting: int = Field(default=32, ge=1, le=1000, description="user gate definitions calling each other")
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, description="HTTP request body size")
    max_shots: int = Field(default=100_000, ge=1, le=1_000_000)
    default_shots: int = Field(default=1024, ge=1)


class Settings(Qb2Settings):
    """All qb2 settings; both daemons and the CLI read this one model."""

    model_config = SettingsConfigDict(
        env_prefix="QB2_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    data_dir: Path = Path("data")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    api: ApiSettings = ApiSettings()
    p2p: P2PSettings = P2PSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    compiler: CompilerSettings = CompilerSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    limits: LimitSettings = LimitSettings()
    quality: QualitySettings = QualitySettings()
    node: dict[str, Any] = Field(default_factory=dict, description="read by `qb2 node`, see qb2.service_node.config")

    @model_validator(mode="after")
    def _states_fit_in_a_frame(self) -> Settings:
        limit = self.p2p.max_frame_mib * 1024 * 1024
        dm = 16 * 4 ** self.compiler.density_matrix_max_qubits
        sv = 16 * 2 ** self.compiler.statevector_max_qubits
        for key, size in (("compiler.density_matrix_max_qubits", dm), ("compiler.statevector_max_qubits", sv)):
            if size > limit:
                raise ValueError(
                    f"{key}: its largest state is {size // 2**20} MiB but p2p.max_frame_mib is "
                    f"{self.p2p.max_frame_mib}; lower {key} or raise p2p.max_frame_mib"
                )
        return self


class ConfigError(CoordinatorError):
    """Invalid configuration; the message names the key, the value and what is allowed."""


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config_path`` (or ``$QB2_CONFIG``), the environment and ``overrides``.

    Raises:
        ConfigError: the file is missing or not TOML, or a value is invalid.
    """
    if config_path is not None:
        os.environ["QB2_CONFIG"] = str(config_path)
    path = os.environ.get("QB2_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"config file {path}: {exc}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        lines.append(f"{key}{shown}: {err['msg']}" if key else err["msg"].removeprefix("Value error, "))
    return "invalid configuration:\n  " + "\n  ".join(lines)
