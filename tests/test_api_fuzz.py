"""Property-based API test (FR-014): whatever the body, query or QASM, the API answers 2xx/4xx
with a structured error, never 5xx, and the coordinator keeps serving."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import httpx
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qb2.coordinator.api import create_app
from qb2.coordinator.config import load_settings
from qb2.coordinator.registry import Registry
from qb2.coordinator.service import CoordinatorService
from qb2.coordinator.store import JobStore
from tests.conftest import InProcessCluster

QASM_TOKENS = [
    "OPENQASM 2.0;", "OPENQASM 3.0;", 'include "qelib1.inc";', 'include "stdgates.inc";', "qreg q[3];",
    "qubit[2] q;", "creg c[3];", "bit[2] c;", "h q[0];", "cx q[0],q[1];", "cx q[0], q[0];", "rz(pi/3) q[1];",
    "u(0.1,0.2,0.3) q[2];", "measure q -> c;", "c = measure q;", "measure q[0] -> c[0];", "reset q[0];",
    "barrier q;", "gate g a { h a; }", "g q[1];", "if (c==1) x q[0];", "q[7];", "h q[-1];", "rx(theta) q[0];",
    "input float theta;", "}", "{", ";", "qreg q[100000];", "ccx q[0],q[1],q[2];", "mcx q[0];", "$0", "// c",
]
qasm_text = st.lists(st.sampled_from(QASM_TOKENS) | st.text(max_size=20), max_size=12).map("\n".join)
json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "qasm": qasm_text | json_scalar,
        "format": st.sampled_from(["qasm2", "qasm3", "qasm4", ""]) | json_scalar,
        "shots": st.integers(-5, 2_000_000) | json_scalar,
        "seed": st.integers(-(2**70), 2**70) | json_scalar,
        "name": json_scalar,
        "priority": st.sampled_from(["low", "urgent", "asap"]) | json_scalar,
        "tags": st.lists(st.text(max_size=10), max_size=20) | json_scalar,
        "extra": json_scalar,
    },
)
queries = st.dictionaries(st.sampled_from(["state", "tag", "limit", "offset", "created_after", "created_before"]),
                          st.text(max_size=25) | st.integers(-(2**70), 2**70).map(str), max_size=4)


class _App:
    """One in-process coordinator shared by all examples (real app, store and node handler)."""

    def __init__(self, tmp: Path) -> None:
        cluster = InProcessCluster(ideal=False)
        config = load_settings(data_dir=tmp)
        registry = Registry(1e9)
        for advert in cluster.adverts:
            registry.observe(advert.model_copy(update={"timestamp": time.time()}))
        self.service = CoordinatorService(config, registry, JobStore(tmp / "c.db"), cluster.invoke)
        self.app = create_app(self.service, "12D3KooWfuzz")


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, query=queries, job_id=st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s))
def test_no_input_makes_the_api_fail(tmp_path_factory, body, query, job_id) -> None:  # type: ignore[no-untyped-def]
    app = _shared(tmp_path_factory)

    job_id = quote(job_id, safe="")
    if job_id in (".", ".."):
        job_id = "dot"

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.app), base_url="http://qb2") as client:
            _check(await client.post("/api/v1/circuits/submit", json=body))
            _check(await client.get("/api/v1/jobs", params=query))
            for path in ("", "/result", "/plan", "/fragments", "/events"):
                _check(await client.get(f"/api/v1/jobs/{job_id}{path}"))
            _check(await client.post(f"/api/v1/jobs/{job_id}/cancel"))
            assert (await client.get("/api/v1/nodes")).status_code == 200

    trio.run(main)


_APP: list[_App] = []


def _shared(factory) -> _App:  # type: ignore[no-untyped-def]
    if not _APP:
        _APP.append(_App(factory.mktemp("fuzz")))
    return _APP[0]
