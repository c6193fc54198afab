"""The root of qb2's exceptions, and the protocol's own (FR-014).

Every error qb2 raises on purpose derives from :class:`Qb2Error`, through one
base per package, so a caller can catch "anything qb2 refused" without
catching a bug (``TypeError``, ``KeyError`` ...). Errors about bad input also
derive from ``ValueError`` where they did before, so existing ``except
ValueError`` clauses keep working.

The hierarchy (each base lives in its package's ``errors`` module)::

    Qb2Error
    ├── ProtocolError              qb2.protocol.errors: a message breaks the wire contract
    │   ├── FrameError             framing: a frame is malformed, too large or cut short
    │   ├── AdvertisementRejected  advert: an advertisement fails validation (also ValueError)
    │   └── JoinTokenError         membership: a join token is invalid (also ValueError)
    ├── CompilerError              qb2.compiler.errors
    │   ├── QasmValidationError    invalid OpenQASM, with line and column (also ValueError)
    │   │   └── LimitExceededError an ingestion bound was exceeded
    │   └── InfeasiblePlanError    no plan satisfies the constraints (also ValueError)
    ├── NodeError                  qb2.service_node.errors
    │   ├── NodeConfigError        invalid node settings or profile
    │   ├── ExecutionError         a fragment cannot run (maps onto ExecuteError codes)
    │   ├── LedgerError            a reservation command is refused (also ValueError)
    │   └── FaultSyntaxError       a --fault spec does not parse (also ValueError)
    ├── CoordinatorError           qb2.coordinator.errors
    │   ├── ConfigError            invalid coordinator settings
    │   ├── SubmissionRejected     a job is refused at admission (HTTP status + ErrorInfo)
    │   ├── InvocationError        a node could not be reached or did not answer
    │   ├── NodeAnswerError        a node answered, but not with a usable result
    │   ├── FragmentFailed         a fragment failed after its attempts
    │   └── QueueFull              the job queue is at capacity
    └── ClientError                qb2.client.errors
        ├── ApiError               the coordinator answered with an error body
        └── QB2JobError            a Qiskit job ended FAILED or CANCELLED (also qiskit JobError)
"""

from __future__ import annotations


class Qb2Error(Exception):
    """Base of every exception qb2 raises on purpose (see the module docstring for the tree)."""


class ProtocolError(Qb2Error):
    """A message does not follow the wire contract (:mod:`qb2.protocol`)."""
