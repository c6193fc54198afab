"""The service-node daemon: a simulated QPU on libp2p (FR-001, FR-006).

One trio process holds the libp2p host, publishes the node's advertisement on
the GossipSub topic every ``advert_interval_s`` (and at once on change), keeps
a connection to each bootstrap peer, and serves three stream protocols:

- :data:`qb2.protocol.ids.EXECUTE_PROTOCOL_ID`: fragment executions (FR-006).
  Simulation runs in worker threads so the host keeps answering while a
  fragment computes. A request carrying ``reservation_id`` consumes that
  window in the ledger (an unknown or ended id is logged, the fragment runs).
- :data:`qb2.protocol.ids.RESERVE_PROTOCOL_ID`: reserve / release execution
  windows in the node's event-sourced ledger (FR-005,
  :mod:`qb2.service_node.ledger`); capacity = ``node.max_concurrent_fragments``;
  windows that ended, or were not consumed ``node.reservation_grace_s``
  seconds after their start, expire (checked every second; each logged).
- :data:`qb2.protocol.ids.CONTROL_PROTOCOL_ID`: fault injection
  (:mod:`qb2.service_node.faults`).

All three apply the same admission rules (FR-019, FR-014): in ``closed``
membership (the default) only the node's coordinators may send requests —
the ``/p2p/`` peers of ``p2p.bootstrap``, the coordinator named in
``p2p.join_token`` and ``p2p.allowed_peers`` (:func:`admitted_peers`); a
refusal is answered and logged (rate-limited per peer and protocol). The
request frame must arrive within ``p2p.frame_timeout_s``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import multiaddr
import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service
from pydantic import BaseModel

from qb2.daemon import streams
from qb2.daemon.host import load_or_create_identity, make_host, make_pubsub
from qb2.daemon.logfmt import RateLimitedLog
from qb2.protocol.advert import Fidelities, ServiceAdvertisement
from qb2.protocol.control import ControlResponse, FaultSpec
from qb2.protocol.execute import ExecuteError, ExecuteRequest, ExecuteResponse
from qb2.protocol.framing import DEFAULT_MAX_HEADER, FrameError, read_frame
from qb2.protocol.ids import ADVERT_TOPIC, CONTROL_PROTOCOL_ID, EXECUTE_PROTOCOL_ID, RESERVE_PROTOCOL_ID
from qb2.protocol.membership import bootstrap_peer_ids, check_own_join_token
from qb2.protocol.reservation import LedgerEvent, OperationSummary, ReserveRequest, ReserveResponse
from qb2.service_node.config import NodeSettings
from qb2.service_node.faults import DropRequest, FaultInjector, format_fault
from qb2.service_node.handler import NodeSimulator, handle_execute
from qb2.service_node.ledger import ReservationLedger, estimate_success

log = logging.getLogger("qb2.node")

M = TypeVar("M", bound=BaseModel)

#: Largest reserve / control request header, in bytes (they carry no payload).
_SMALL_FRAME = 64 * 1024


def admitted_peers(settings: NodeSettings, peer_id: str, *, now: float | None = None) -> frozenset[str] | None:
    """The peers a node serves execute / reserve / control requests for (FR-019).

    Args:
        settings: the node's settings (``p2p.membership``, ``bootstrap``, ``join_token``, ``allowed_peers``).
        peer_id: the node's own base58 peer ID (its join token must name it).
        now: Unix seconds for the token's expiry check (default: now).

    Returns:
        None in ``open`` membership (every peer is served); otherwise the base58
        peer IDs of the bootstrap multiaddrs' ``/p2p/`` parts, of the
        coordinator that issued ``join_token`` and of ``allowed_peers``
        (possibly empty: then the node serves nobody).

    Raises:
        qb2.protocol.membership.JoinTokenError: ``join_token`` is malformed, not for
            ``peer_id``, not signed by the coordinator it names, or expired.
    """
    p2p = settings.p2p
    coordinators = set(bootstrap_peer_ids(p2p.bootstrap)) | set(p2p.allowed_peers)
    if p2p.join_token is not None:  # checked in open mode too: a bad token is a configuration error
        coordinators.add(check_own_join_token(p2p.join_token, peer_id, now=now).coordinator)
    return None if p2p.membership == "open" else frozenset(coordinators)


class ServiceNode:
    """A running node. Create with :meth:`run`; fields are for introspection.

    Raises:
        qb2.protocol.membership.JoinTokenError: the configured join token is invalid (see :func:`admitted_peers`).
    """

    def __init__(self, settings: NodeSettings, host: IHost, pubsub: Pubsub) -> None:
        self.settings = settings
        self.host = host
        self.pubsub = pubsub
        self.peer_id = host.get_id().to_base58()
        #: peers whose requests are served; None: any peer (open membership), FR-019
        self.coordinators = admitted_peers(settings, self.peer_id)
        self._refusals = RateLimitedLog(log)
        self.qpu = NodeSimulator.from_profile(self.peer_id, settings.node)
        self._limiter = trio.CapacityLimiter(settings.node.max_concurrent_fragments)
        self._sequence = 0
        self.executed = 0
        self.faults = FaultInjector()
        #: fidelity factor the current ``qpu`` was built with (1.0: the profile's fidelities)
        self.fidelity_factor = 1.0
        self.ledger = ReservationLedger(settings.node.max_concurrent_fragments, estimator=self.estimate_success,
                                        grace_s=settings.node.reservation_grace_s, on_event=_log_expiry)

    @property
    def fidelity(self) -> Fidelities:
        """The fidelities the node simulates and advertises now (the profile's, degraded by faults)."""
        return self.qpu.profile.fidelity

    def estimate_success(self, operation: OperationSummary) -> float:
        """Estimated success probability of ``operation`` on this node now (see :func:`estimate_success`)."""
        return estimate_success(operation.gates, self.fidelity)

    def advertisement(self) -> ServiceAdvertisement:
        """The node's current advertisement (a new sequence number each call)."""
        self._sequence += 1
        profile = self.settings.node
        return ServiceAdvertisement(
            node_id=self.peer_id,
            name=profile.name,
            native_gates=tuple(profile.native_gates),
            fidelity=self.fidelity,
            qubit_range={"min": 1, "max": profile.qubits},
            availability="available",
            timestamp=time.time(),
            sequence=self._sequence,
            addrs=tuple(str(a) for a in self.host.get_addrs()),
            gate_times=profile.gate_times,
            executor=profile.executor,
            # FR-016: a device node's coupling map in placement order; synthetic nodes are all-to-all
            coupling_map=None if self.qpu.device is None else self.qpu.device.advertised_coupling(profile.qubits),
            join_token=self.settings.p2p.join_token,  # FR-019: how the coordinator admits this node
        )

    async def _admit(
        self,
        stream: INetStream,
        what: str,
        model: type[M],
        refuse: Callable[[str], BaseModel],
        *,
        max_header: int = DEFAULT_MAX_HEADER,
        max_payload: int = 0,
    ) -> tuple[M, bytes] | None:
        """Apply the admission rules shared by every protocol and read the request frame.

        Refuses a peer that is not one of the node's coordinators
        (:attr:`coordinators`, FR-019) and a frame that is malformed, oversized
        or not complete within ``p2p.frame_timeout_s`` seconds: it then answers
        ``refuse(reason)`` and returns None. A refused peer is logged at WARNING
        the first time, then at most once a minute per peer and protocol.
        """
        remote = stream.muxed_conn.peer_id.to_base58()
        if self.coordinators is not None and remote not in self.coordinators:
            self._refusals.warning((remote, what), f"refused {what} request", {
                "peer_id": remote,
                "reason": "not an admitted coordinator (p2p.bootstrap, join token, p2p.allowed_peers)"})
            await _reply(stream, refuse(f"peer {remote} is not allowed to send {what} requests here"), b"")
            return None
        try:
            with trio.fail_after(self.settings.p2p.frame_timeout_s):
                return await read_frame(stream, model, max_header=max_header, max_payload=max_payload)
        except (FrameError, trio.TooSlowError) as exc:
            reason = str(exc) or "no complete request frame in time"
            log.warning(f"rejected {what} frame", extra={"peer_id": remote, "reason": reason})
            await _reply(stream, refuse(reason), b"")
            return None

    async def handle_stream(self, stream: INetStream) -> None:
        """Serve one execution request on ``stream`` and close it.

        Applies active faults first (latency; drop resets the stream unanswered)
        and consumes the request's ``reservation_id`` in the ledger when present.
        """
        def refuse(reason: str) -> ExecuteResponse:
            return ExecuteResponse(node_id=self.peer_id, ok=False, error=ExecuteError(code="bad_request", message=reason))

        max_payload = self.settings.p2p.max_frame_mib * 1024 * 1024
        admitted = await self._admit(stream, "execute", ExecuteRequest, refuse, max_payload=max_payload)
        if admitted is None:
            return
        request, payload = admitted
        ids = {"job_id": request.job_id, "fragment_id": request.fragment_id}
        try:
            await self.faults.before_execute()
        except DropRequest as exc:
            log.warning("dropped execute request", extra={**ids, "reason": str(exc)})
            await streams.reset(stream)
            return
        for reservation_id in request.reservation_ids:  # a segment consumes every member's window
            if self.ledger.consume(reservation_id):
                log.info("reservation consumed", extra={**ids, "reservation_id": reservation_id})
            else:
                status = self.ledger.status(reservation_id) or "unknown"
                log.warning("execute without a valid reservation; running it anyway",
                            extra={**ids, "reservation_id": reservation_id, "reservation_status": status})
        log.info("executing fragment", extra={**ids, "kind": request.kind, "ops": len(request.ops)})
        started = time.perf_counter()
        header, out = await trio.to_thread.run_sync(
            handle_execute, self.qpu, request, payload, limiter=self._limiter, abandon_on_cancel=True
        )
        self.executed += 1
        log.info(
            "fragment done",
            extra={**ids, "ok": header.ok, "elapsed_s": round(time.perf_counter() - started, 6),
                   "error": header.error.message if header.error else None},
        )
        await _reply(stream, header, out)

    async def handle_reserve(self, stream: INetStream) -> None:
        """Serve one reserve or release request (:mod:`qb2.protocol.reservation`) on ``stream``.

        A release answers ``granted=True`` when the window was active and is
        now released, else ``granted=False`` with the reason.
        """
        def refuse(reason: str) -> ReserveResponse:
            return ReserveResponse(node_id=self.peer_id, reservation_id="", granted=False, reason=reason)

        admitted = await self._admit(stream, "reserve", ReserveRequest, refuse, max_header=_SMALL_FRAME)
        if admitted is None:
            return
        request, _ = admitted
        ids = {"job_id": request.job_id, "fragment_id": request.fragment_id, "reservation_id": request.reservation_id}
        if request.action == "reserve":
            response = self.ledger.reserve(request, self.peer_id)
            log.info("reservation granted" if response.granted else "reservation rejected",
                     extra={**ids, "start": request.start, "end": request.end, "reason": response.reason,
                            "next_start": response.next_start})
        else:
            released = self.ledger.release(request.reservation_id)
            status = self.ledger.status(request.reservation_id)
            response = ReserveResponse(
                node_id=self.peer_id, reservation_id=request.reservation_id, granted=released,
                reason=None if released else f"reservation is {status or 'unknown'}, not active",
            )
            log.info("reservation released" if released else "release refused", extra={**ids, "reason": response.reason})
        await _reply(stream, response, b"")

    async def handle_control(self, stream: INetStream) -> None:
        """Serve one fault-injection request (:mod:`qb2.protocol.control`) on ``stream``.

        An immediate crash (``after_s == 0``) is answered first, then the process exits.
        """
        def refuse(reason: str) -> ControlResponse:
            return ControlResponse(node_id=self.peer_id, accepted=False, active=self.faults.configured(), reason=reason)

        admitted = await self._admit(stream, "control", FaultSpec, refuse, max_header=_SMALL_FRAME)
        if admitted is None:
            return
        spec, _ = admitted
        remote = stream.muxed_conn.peer_id.to_base58()
        if not self.settings.node.accept_control:
            log.warning("refused control request", extra={"peer_id": remote, "reason": "accept_control is off"})
            await _reply(stream, refuse("fault injection is disabled on this node; start it with --accept-control"), b"")
            return
        log.warning("control request", extra={"peer_id": remote, "fault": spec.kind if spec.kind == "clear"
                                              else format_fault(spec)})
        if spec.kind == "crash" and spec.after_s == 0:
            active = [*self.faults.configured(), spec]
            await _reply(stream, ControlResponse(node_id=self.peer_id, accepted=True, active=active), b"")
            self.faults.add(spec)  # exits the process
            return
        self.faults.add(spec)
        await _reply(stream, ControlResponse(node_id=self.peer_id, accepted=True, active=self.faults.configured()), b"")

    async def publish_advertisement(self) -> None:
        """Publish the current advertisement once (logged, not raised, when no peer listens yet)."""
        try:
            await self.pubsub.publish(ADVERT_TOPIC, self.advertisement().model_dump_json(exclude_none=True).encode())
        except Exception as exc:  # no peers yet: the periodic advertiser retries
            log.debug("advertisement not published", extra={"reason": repr(exc)})

    async def follow_faults(self) -> None:
        """Rebuild the simulated QPU and re-advertise at once whenever the degrade factor changes."""
        while True:
            factor = self.faults.fidelity_factor()
            if factor != self.fidelity_factor:
                base = self.settings.node.fidelity
                degraded = Fidelities(gate_1q=base.gate_1q * factor, gate_2q=base.gate_2q * factor,
                                      readout=base.readout * factor)
                profile = self.settings.node.model_copy(update={"fidelity": degraded})
                # NodeSimulator is frozen: build a new one (a new noise model); running fragments keep the old one.
                # A device node keeps its calibrated noise; only its advertised fidelities change.
                self.qpu = await trio.to_thread.run_sync(NodeSimulator.from_profile, self.peer_id, profile)
                self.fidelity_factor = factor
                log.warning("fidelities changed by fault", extra={"factor": factor, **degraded.model_dump()})
                await self.publish_advertisement()
            await self.faults.wait_transition()

    async def expire_forever(self, interval_s: float = 1.0) -> None:
        """Expire stale reservation windows (ended, or unconsumed ``node.reservation_grace_s``
        seconds after their start) every ``interval_s`` seconds (FR-005); each is logged."""
        while True:
            self.ledger.expire()
            await trio.sleep(interval_s)

    async def advertise_forever(self) -> None:
        """Publish the advertisement every ``advert_interval_s`` seconds."""
        while True:
            await self.publish_advertisement()
            await trio.sleep(self.settings.discovery.advert_interval_s)

    async def keep_bootstrap_connections(self) -> None:
        """Dial every bootstrap multiaddr; redial whenever the connection is gone."""
        peers = [info_from_p2p_addr(multiaddr.Multiaddr(a)) for a in self.settings.p2p.bootstrap]
        while True:
            for info in peers:
                if info.peer_id in self.host.get_connected_peers():
                    continue
                try:
                    # py-libp2p blocks a peer for 60 s after a failed dial; a restarting
                    # coordinator must be redialled as soon as it is back (FR-010).
                    self.host.get_network().unblock_peer(info.peer_id)
                    with trio.fail_after(10):
                        await self.host.connect(info)
                    log.info("connected to bootstrap peer", extra={"peer_id": info.peer_id.to_base58()})
                    with trio.move_on_after(5):
                        await self.pubsub.wait_for_subscription(info.peer_id, ADVERT_TOPIC, timeout=5.0)
                    await self.pubsub.publish(ADVERT_TOPIC, self.advertisement().model_dump_json(exclude_none=True).encode())
                except Exception as exc:
                    log.warning("bootstrap dial failed", extra={"peer_id": info.peer_id.to_base58(), "reason": repr(exc)})
            await trio.sleep(min(1.0, self.settings.discovery.advert_interval_s))


def _log_expiry(event: LedgerEvent) -> None:
    """Log every ``expired`` ledger event, whichever command appended it (FR-005)."""
    if event.kind == "expired":
        log.info("reservation expired", extra={"reservation_id": event.reservation_id, "job_id": event.job_id,
                                               "fragment_id": event.fragment_id, "reason": event.reason})


async def _reply(stream: INetStream, header: BaseModel, payload: bytes) -> None:
    """Answer on ``stream`` and close it (:func:`qb2.daemon.streams.respond`; a failure logged here)."""
    await streams.respond(stream, header, payload, logger=log)


async def run_node(
    settings: NodeSettings,
    *,
    ready_file: Path | None = None,
    task_status: trio.TaskStatus[ServiceNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a service node until cancelled.

    Args:
        ready_file: if given, ``{"peer_id", "addrs"}`` JSON is written there once
            the node listens (how ``qb2 up`` and the tests learn ephemeral ports).
        task_status: for ``nursery.start``; receives the :class:`ServiceNode`.
    """
    key_pair = load_or_create_identity(settings.state_dir / "identity.key")
    host = make_host(key_pair)
    pubsub, router = make_pubsub(host, settings.discovery.gossip_heartbeat_s)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(host.run(listen_addrs=[multiaddr.Multiaddr(settings.p2p.listen)]))
        for service in (pubsub, router):
            await stack.enter_async_context(background_trio_service(service))
        await pubsub.wait_until_ready()
        node = ServiceNode(settings, host, pubsub)
        host.set_stream_handler(TProtocol(EXECUTE_PROTOCOL_ID), node.handle_stream)
        host.set_stream_handler(TProtocol(RESERVE_PROTOCOL_ID), node.handle_reserve)
        host.set_stream_handler(TProtocol(CONTROL_PROTOCOL_ID), node.handle_control)
        addrs = [str(a) for a in host.get_addrs()]
        if node.coordinators is None:
            log.warning("open mesh: any peer may send execute, reserve and control requests to this node "
                        "(p2p.membership = \"open\"; FR-019)", extra={"peer_id": node.peer_id})
        elif not node.coordinators:
            log.warning("no coordinator admitted: this node refuses every request; give it --bootstrap, "
                        "--join-token or p2p.allowed_peers", extra={"peer_id": node.peer_id})
        else:
            log.info("serving admitted coordinators", extra={"peer_id": node.peer_id,
                                                             "coordinators": sorted(node.coordinators)})
        log.info("node listening", extra={"peer_id": node.peer_id, "addrs": addrs, "node_name": settings.node.name})
        if ready_file is not None:
            _write_atomically(ready_file, json.dumps({"peer_id": node.peer_id, "addrs": addrs}))
        async with trio.open_nursery() as nursery:
            for spec in settings.node.faults:  # after_s counts from now; crash@0 exits here
                node.faults.add(spec)
            nursery.start_soon(node.faults.run)
            nursery.start_soon(node.follow_faults)
            nursery.start_soon(node.expire_forever)
            nursery.start_soon(node.advertise_forever)
            nursery.start_soon(node.keep_bootstrap_connections)
            task_status.started(node)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
