"""Fault injection into a service node (FR-013 support; wire contract :mod:`qb2.protocol.control`).

Faults come from three places, all as :class:`qb2.protocol.control.FaultSpec`:

- the config file: ``[node] faults = [{kind = "latency", latency_s = 0.5, after_s = 10}]``
  (or ``QB2_NODE__FAULTS`` as JSON);
- the command line: ``qb2 node --fault latency:0.5@10+30`` (repeatable; syntax in
  :func:`parse_fault`);
- the control protocol :data:`qb2.protocol.ids.CONTROL_PROTOCOL_ID` at run time
  (client: :func:`send_fault`).

Times are relative to the moment a fault is set (config and CLI faults: when
the node starts listening): a fault is *pending* for ``after_s`` seconds, then
*active* for ``duration_s`` seconds (None: until cleared), then gone.

Effects (:class:`FaultInjector`): ``latency`` delays each execute answer by
``latency_s`` (active latencies add up); ``drop`` makes the daemon reset an
execute stream unanswered with probability ``probability``; ``crash`` exits the
process with code 137 when it becomes active; ``degrade`` multiplies the
node's fidelities by ``factor`` (active factors multiply), which the daemon
re-advertises at once and applies to its rebuilt noise model; ``clear``
removes every fault.

This module imports nothing from ``coordinator/``: the coordinator and the
experiment harness may import :func:`send_fault` and :func:`request_response`.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TypeVar

import trio
from pydantic import BaseModel, ValidationError

from qb2.protocol.control import ControlResponse, FaultSpec
from qb2.protocol.ids import CONTROL_PROTOCOL_ID
from qb2.service_node.errors import NodeError

if TYPE_CHECKING:
    from libp2p.abc import IHost

__all__ = [
    "CRASH_EXIT_CODE",
    "DropRequest",
    "FaultInjector",
    "FaultSyntaxError",
    "format_fault",
    "parse_fault",
    "request_response",
    "send_fault",
]

log = logging.getLogger("qb2.node.faults")

#: Exit status of a node killed by a ``crash`` fault (what SIGKILL gives a shell: 128 + 9).
CRASH_EXIT_CODE = 137

M = TypeVar("M", bound=BaseModel)


class DropRequest(Exception):
    """Raised by :meth:`FaultInjector.before_execute`: drop this request (reset the stream, no answer)."""


class FaultSyntaxError(NodeError, ValueError):
    """A ``--fault`` value does not follow the syntax of :func:`parse_fault`; the message says why."""


_SYNTAX = "KIND[:VALUE][@AFTER][+DURATION]: latency:SECONDS, drop:PROBABILITY, crash, degrade:FACTOR"
_SPEC_RE = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<value>[^@+]*))?(?:@(?P<after>[^+]*))?(?:\+(?P<duration>.*))?$")
_VALUE_FIELD = {"latency": "latency_s", "drop": "probability", "degrade": "factor"}


def _number(text: str | None, what: str, raw: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise FaultSyntaxError(f"fault {raw!r}: {what} {text!r} is not a number ({_SYNTAX})") from None
    if not math.isfinite(value):
        raise FaultSyntaxError(f"fault {raw!r}: {what} must be finite, got {text!r}")
    return value


def parse_fault(text: str) -> FaultSpec:
    """Parse one ``--fault`` value: ``KIND[:VALUE][@AFTER][+DURATION]``.

    - ``latency:SECONDS[@AFTER][+DURATION]`` e.g. ``latency:0.5``, ``latency:0.2@10+30``;
    - ``drop:PROBABILITY[@AFTER][+DURATION]`` e.g. ``drop:1``, ``drop:0.3@5``;
    - ``crash[@AFTER]`` e.g. ``crash``, ``crash@20`` (no value, no duration);
    - ``degrade:FACTOR[@AFTER][+DURATION]`` e.g. ``degrade:0.9@10``.

    ``AFTER`` and ``DURATION`` are seconds (see the module docstring).

    Raises:
        FaultSyntaxError: unknown kind, missing or extra value, a number that
            does not parse, or a value out of range (the message names it).
    """
    raw = text
    match = _SPEC_RE.match(text.strip())
    if match is None:
        raise FaultSyntaxError(f"fault {raw!r} does not match {_SYNTAX}")
    kind, value, after, duration = match.group("kind", "value", "after", "duration")
    fields: dict[str, float] = {}
    if kind == "crash":
        if value is not None:
            raise FaultSyntaxError(f"fault {raw!r}: crash takes no value (use crash or crash@AFTER)")
        if duration is not None:
            raise FaultSyntaxError(f"fault {raw!r}: crash takes no duration (use crash or crash@AFTER)")
    elif kind in _VALUE_FIELD:
        if value is None or value == "":
            raise FaultSyntaxError(f"fault {raw!r}: {kind} needs a value, e.g. {kind}:{_EXAMPLE[kind]}")
        fields[_VALUE_FIELD[kind]] = _number(value, _VALUE_FIELD[kind], raw)
    elif kind == "clear":
        raise FaultSyntaxError(f"fault {raw!r}: clear is only accepted over the control protocol")
    else:
        raise FaultSyntaxError(f"fault {raw!r}: unknown kind {kind!r}; choose latency, drop, crash or degrade")
    if after is not None:
        fields["after_s"] = _number(after, "after_s", raw)
    if duration is not None:
        fields["duration_s"] = _number(duration, "duration_s", raw)
    try:
        return FaultSpec(kind=kind, **fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FaultSyntaxError(f"fault {raw!r}: {where} = {first.get('input')!r}: {first['msg']}") from None


_EXAMPLE = {"latency": "0.5", "drop": "0.5", "degrade": "0.9"}


def format_fault(spec: FaultSpec) -> str:
    """The ``--fault`` text of ``spec`` (inverse of :func:`parse_fault`).

    Raises:
        ValueError: ``spec.kind`` is ``"clear"``, which has no CLI form.
    """
    if spec.kind == "clear":
        raise ValueError("a clear fault has no --fault form")
    text = spec.kind
    if spec.kind in _VALUE_FIELD:
        text += f":{getattr(spec, _VALUE_FIELD[spec.kind])!r}"
    if spec.after_s:
        text += f"@{spec.after_s!r}"
    if spec.duration_s is not None and spec.kind != "crash":
        text += f"+{spec.duration_s!r}"
    return text


@dataclass(frozen=True)
class _Placed:
    spec: FaultSpec
    set_at: float  # trio clock seconds

    @property
    def begins(self) -> float:
        return self.set_at + self.spec.after_s

    @property
    def ends(self) -> float:
        return math.inf if self.spec.duration_s is None else self.begins + self.spec.duration_s


class FaultInjector:
    """The faults configured on one node and their effects.

    Times come from ``clock`` (default :func:`trio.current_time`, seconds), so
    the injector must be used inside ``trio.run`` unless a clock is given.

    Args:
        clock: current time in seconds.
        rng: source of randomness for ``drop`` (seed it for reproducible runs).
        exit: called with :data:`CRASH_EXIT_CODE` when a crash fault becomes
            active; default :func:`os._exit` (no cleanup, like a real crash).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        exit: Callable[[int], NoReturn] = os._exit,
    ) -> None:
        self._clock = clock or trio.current_time
        self._rng = rng or random.Random()
        self._exit = exit
        self._placed: list[_Placed] = []
        self._changed = trio.Event()
        self.dropped = 0
        self.delayed = 0

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _prune(self, now: float) -> None:
        self._placed = [p for p in self._placed if p.ends > now]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def add(self, spec: FaultSpec) -> None:
        """Set a fault (``clear`` removes every fault instead).

        A ``crash`` with ``after_s == 0`` exits the process at once, inside
        this call; a later crash fires from :meth:`run`.
        """
        if spec.kind == "clear":
            self.clear()
            return
        log.warning("fault set", extra={"fault": format_fault(spec), "after_s": spec.after_s,
                                        "duration_s": spec.duration_s})
        if spec.kind == "crash" and spec.after_s == 0:
            self._crash()
            return
        self._placed.append(_Placed(spec, self._clock()))
        self._notify()

    def clear(self) -> None:
        """Remove every fault (fidelities return to the profile's)."""
        self._placed.clear()
        log.warning("faults cleared")
        self._notify()

    def configured(self, now: float | None = None) -> list[FaultSpec]:
        """Faults pending or active (not yet ended), in the order they were set."""
        now = self._now(now)
        self._prune(now)
        return [p.spec for p in self._placed]

    def active(self, now: float | None = None) -> list[FaultSpec]:
        """Faults in effect at ``now`` (default: the clock)."""
        now = self._now(now)
        return [p.spec for p in self._placed if p.begins <= now < p.ends]

    def fidelity_factor(self, now: float | None = None) -> float:
        """Product of the active ``degrade`` factors (1.0 when none), in (0, 1]."""
        return math.prod(s.factor for s in self.active(now) if s.kind == "degrade")

    def latency_s(self, now: float | None = None) -> float:
        """Sum of the active ``latency`` delays in seconds."""
        return sum(s.latency_s for s in self.active(now) if s.kind == "latency")

    def next_transition(self, now: float | None = None) -> float | None:
        """The next clock time after ``now`` at which a fault begins or ends, or None."""
        now = self._now(now)
        times = [t for p in self._placed for t in (p.begins, p.ends) if now < t < math.inf]
        return min(times, default=None)

    async def wait_transition(self) -> None:
        """Return when a fault is set or cleared, or the next one begins or ends."""
        changed = self._changed
        now = self._clock()
        deadline = self.next_transition(now)
        with trio.move_on_after(math.inf if deadline is None else max(0.0, deadline - now)):
            await changed.wait()

    async def before_execute(self) -> None:
        """Apply the active faults to one execute request, before it runs.

        Sleeps for the active latency (a real delay, :func:`trio.sleep`).

        Raises:
            DropRequest: an active ``drop`` fault fired (probability ``probability``);
                the caller resets the stream without answering.
        """
        active = self.active()
        for spec in active:
            if spec.kind == "drop" and self._rng.random() < spec.probability:
                self.dropped += 1
                raise DropRequest(f"drop fault (probability {spec.probability})")
        delay = sum(s.latency_s for s in active if s.kind == "latency")
        if delay > 0:
            self.delayed += 1
            await trio.sleep(delay)

    async def run(self) -> None:
        """Fire crash faults when they become active; run forever in the node's nursery."""
        while True:
            now = self._clock()
            fired = [p for p in self._placed if p.spec.kind == "crash" and p.begins <= now]
            if fired:
                self._placed = [p for p in self._placed if p not in fired]
                self._crash()
            self._prune(now)
            await self.wait_transition()

    def _crash(self) -> None:
        log.error("crash fault: exiting", extra={"exit_code": CRASH_EXIT_CODE})
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:  # best effort: we are crashing
                pass
        self._exit(CRASH_EXIT_CODE)


async def request_response(
    host: IHost,
    peer_id: str,
    protocol_id: str,
    request: BaseModel,
    response_model: type[M],
    *,
    timeout_s: float = 10.0,
    max_payload: int = 0,
) -> M:
    """One request frame out, one response frame back, on a new stream to ``peer_id``
    (:func:`qb2.daemon.streams.request` without payloads; returns the response header).

    The host must already be connected to the peer (or know its addresses).
    Suits :data:`qb2.protocol.ids.RESERVE_PROTOCOL_ID` and
    :data:`qb2.protocol.ids.CONTROL_PROTOCOL_ID` (empty payloads).

    Args:
        timeout_s: bound on the whole exchange, in seconds.
        max_payload: largest response payload accepted, in bytes.

    Raises:
        trio.TooSlowError: no response within ``timeout_s``.
        qb2.protocol.framing.FrameError: the stream closed or reset before a valid response.
        Exception: whatever libp2p raises when it cannot open the stream.
    """
    from qb2.daemon import streams  # here: parse_fault is imported before the CLI's heavy imports (libp2p)

    response, _ = await streams.request(host, peer_id, protocol_id, request, response_model,
                                        timeout_s=timeout_s, max_payload=max_payload)
    return response


async def send_fault(host: IHost, peer_id: str, spec: FaultSpec, *, timeout_s: float = 10.0) -> ControlResponse:
    """Inject ``spec`` into the node ``peer_id`` over :data:`qb2.protocol.ids.CONTROL_PROTOCOL_ID`.

    Returns:
        The node's answer: ``accepted`` and the faults now configured.

    Raises:
        trio.TooSlowError: no answer within ``timeout_s`` seconds.
        qb2.protocol.framing.FrameError: the stream ended first (an immediate
            ``crash`` may end the process before its answer arrives).
    """
    return await request_response(host, peer_id, CONTROL_PROTOCOL_ID, spec, ControlResponse, timeout_s=timeout_s)

