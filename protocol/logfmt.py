"""Structured JSON logs, one object per line, for both daemons (FR-012).

Correlation ids (``job_id``, ``fragment_id``, ``peer_id``, ``request_id``) are
passed as ``extra={...}`` and appear as top-level keys.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO", *, component: str) -> None:
    """Send JSON log lines to stderr; ``component`` tags every line (``coordinator``, ``node``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields={"component": component},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # libp2p logs every stream reset at WARNING; keep our own lines readable.
    logging.getLogger("libp2p").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("qiskit").setLevel(max(logging.WARNING, root.level))  # per-pass timings at INFO
