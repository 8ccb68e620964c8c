"""Capped exponential backoff with jitter: the only way cai waits for something to come up."""

from __future__ import annotations

import random

import msgspec


class Backoff(msgspec.Struct, kw_only=True):
    """Delays ``initial, initial*factor, ...`` capped at ``cap``, each scaled by a random
    factor in ``[1 - jitter, 1 + jitter]`` so many waiters don't retry in lock-step."""

    initial: float = 0.05
    cap: float = 1.0
    factor: float = 2.0
    jitter: float = 0.2
    attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        self.attempt = 0
