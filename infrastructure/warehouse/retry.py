"""How every SQL warehouse retries an operation that failed for a passing reason."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter.

    Jitter, so that workers that failed together do not retry together. ``sleep``
    and ``rng`` are injected so a test can count the waits without waiting.
    """

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based)."""
        return self.rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**retry))
