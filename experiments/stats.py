"""Summary statistics shared by the benchmarks and the harness report."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` in [0, 100] of a non-empty sequence (the smallest value with at least
    ``q`` percent of the values at or below it; no interpolation).

    Raises:
        IndexError: ``values`` is empty.
    """
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
