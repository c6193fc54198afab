"""Configuration (FR-011): file, then QB2_ environment; precise errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from qb2.coordinator.config import ConfigError, load_settings
from qb2.service_node.config import NodeConfigError, load_node_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QB2_CONFIG", raising=False)


def test_example_config_loads_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).parents[1] / "config.example.toml"
    monkeypatch.setenv("QB2_API__PORT", "8811")
    settings = load_settings(example)
    assert settings.api.port == 8811
    assert settings.compiler.max_fragment_qubits == 4
    assert load_node_settings("ion-like").node.native_gates == ["rx", "ry", "rz", "rzz"]


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[api]\nport = 'abc'\n", "api.port = 'abc'"),
        ("[api]\nport = 70000\n", "api.port = 70000"),
        ("[discovery]\nregistry_ttl_s = -1\n", "discovery.registry_ttl_s = -1"),
        ("[compiler]\nlink_fidelity = 1.5\n", "compiler.link_fidelity = 1.5"),
        ("[api]\nprot = 1\n", "api.prot"),
        ("log_level = 'LOUD'\n", "log_level = 'LOUD'"),
        ("[api\n", "config file"),
    ],
)
def test_invalid_config_names_the_key_and_value(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert needle in str(info.value)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_node_profile_errors() -> None:
    with pytest.raises(NodeConfigError, match="unknown node profile"):
        load_node_settings("quantum-toaster")
    with pytest.raises(NodeConfigError, match="node.qubits = 0"):
        load_node_settings("ibm-like", qubits=0)


def test_state_limits_must_fit_in_a_frame(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("[compiler]\ndensity_matrix_max_qubits = 13\n")
    with pytest.raises(ConfigError, match="compiler.density_matrix_max_qubits: its largest state is 1024 MiB"):
        load_settings(path)


def test_coordinator_start_with_bad_config_prints_the_key_not_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text("[runtime]\nmax_concurrent_jobs = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QB2_")}
    done = subprocess.run([sys.executable, "-m", "qb2.coordinator", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "runtime.max_concurrent_jobs = 0" in done.stderr and "Traceback" not in done.stderr
    node = subprocess.run([sys.executable, "-m", "qb2.client.cli", "node", "--profile", "nope"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert node.returncode == 2 and "unknown node profile" in node.stderr and "Traceback" not in node.stderr
