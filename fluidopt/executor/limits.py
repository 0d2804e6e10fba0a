"""The engine's batch-limits part: the deployment's caps on one iteration.

A policy plans its batches under these caps; the engine checks every iteration against
them and raises :class:`~fluidopt.errors.PolicyError` when a policy exceeds one (a broken
contract, not a scheduling event).
"""

from __future__ import annotations

from fluidopt.errors import PolicyError


class BatchLimits:
    """``max_batch`` sequences and ``max_tokens`` new tokens per iteration (``None``: no cap).

    New tokens are prefill tokens plus one per decoding member.
    """

    __slots__ = ("max_batch", "max_tokens")

    def __init__(self, max_batch: int | None, max_tokens: int | None) -> None:
        self.max_batch = max_batch
        self.max_tokens = max_tokens

    def allows(self, batch: int, new_tokens: int) -> bool:
        """Whether an iteration of ``batch`` members and ``new_tokens`` new tokens fits the caps."""
        return not (
            (self.max_batch is not None and batch > self.max_batch)
            or (self.max_tokens is not None and new_tokens > self.max_tokens)
        )

    def check(self, policy: str, batch: int, new_tokens: int) -> None:
        """Raise PolicyError naming ``policy`` and the cap it exceeded."""
        if self.max_batch is not None and batch > self.max_batch:
            raise PolicyError(f"{policy}: batch of {batch} exceeds the deployment's max_batch {self.max_batch}")
        if self.max_tokens is not None and new_tokens > self.max_tokens:
            raise PolicyError(f"{policy}: {new_tokens} new tokens exceed the deployment's max_tokens {self.max_tokens}")
