"""Structured JSON logs, one object per line, for both daemons (FR-012), and rate-limited refusal lines.

Correlation ids (``job_id``, ``fragment_id``, ``peer_id``, ``request_id``) are
passed as ``extra={...}`` and appear as top-level keys.
"""

from __future__ import annotations

import logging
import sys
import time

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


class RateLimitedLog:
    """Log repeated refusals without flooding: the first per key at WARNING, then at most one per ``interval_s``.

    A suppressed line is counted and its count reported (``suppressed``) with
    the next line logged for that key. At most ``max_keys`` keys are
    remembered (the oldest is forgotten first), so a flood of fresh peer IDs
    costs bounded memory.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0, max_keys: int = 4096) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, ...], tuple[float, int]] = {}

    def warning(self, key: tuple[str, ...], message: str, extra: dict[str, object]) -> bool:
        """Log ``message`` at WARNING unless ``key`` was logged less than ``interval_s`` seconds ago.

        Returns:
            True when the line was written, False when it was suppressed (counted).
        """
        now = time.monotonic()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.interval_s:
            self._last[key] = (seen[0], seen[1] + 1)
            return False
        if seen is None and len(self._last) >= self.max_keys:
            self._last.pop(next(iter(self._last)))
        self._last.pop(key, None)
        self._last[key] = (now, 0)
        self.logger.warning(message, extra={**extra, "suppressed": seen[1] if seen else 0})
        return True
