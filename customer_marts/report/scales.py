"""Linear scales and round axis ticks for the report's charts."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Linear:
    """Maps a data interval onto a pixel interval."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        span = (self.d1 - self.d0) or 1.0
        return self.r0 + (value - self.d0) * (self.r1 - self.r0) / span


def nice_step(low: float, high: float, count: int = 5) -> float:
    """A round step (1, 2 or 5 x 10^k) that cuts low..high into about `count` parts."""
    raw = (high - low) / count if high > low else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """The multiples of the round step within low..high."""
    step = nice_step(low, high, count)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [round(index * step, 10) for index in range(first, last + 1)]


def nice_domain(low: float, high: float, count: int = 5) -> tuple[float, float]:
    """low..high widened to multiples of the round step."""
    step = nice_step(low, high, count)
    return math.floor(low / step) * step, max(
        math.ceil(high / step), math.floor(low / step) + 1
    ) * step
