"""The engine's batch-limits part: the deployment's caps on one iteration.

A policy plans its batches under these caps; the engine checks every iteration against
them and raises :class:`~fluidopt.errors.PolicyError` when a policy exceeds one (a broken
contract, not a scheduling event).
"""

from __future__ import annotations

from fluidopt.errors import PolicyError


class BatchLimits:
    """``max_batch`` sequences and ``max_tokens`` tokens per iteration (``None``: no cap).

    New tokens are prefill tokens plus one per decoding member; that sum is what counts
    against ``max_tokens``. With ``padded`` the prefilling members count instead, padded to
    the longest chunk: (prefilling members) × (their largest chunk); decoding members do
    not count (Vidur's vLLM scheduler pads a batch of prompts this way and bounds decode
    batches by the batch size alone).
    """

    __slots__ = ("max_batch", "max_tokens", "padded")

    def __init__(self, max_batch: int | None, max_tokens: int | None, padded: bool = False) -> None:
        self.max_batch = max_batch
        self.max_tokens = max_tokens
        self.padded = padded

    def counted(self, new_tokens: int, prefilling: int = 0, longest: int = 0) -> int:
        """Tokens the iteration counts against ``max_tokens`` (``prefilling`` members whose
        largest chunk is ``longest``)."""
        return prefilling * longest if self.padded else new_tokens

    def allows(self, batch: int, new_tokens: int, prefilling: int = 0, longest: int = 0) -> bool:
        """Whether an iteration of ``batch`` members and ``new_tokens`` new tokens fits the caps."""
        return not (
            (self.max_batch is not None and batch > self.max_batch)
            or (self.max_tokens is not None and self.counted(new_tokens, prefilling, longest) > self.max_tokens)
        )

    def check(self, policy: str, batch: int, new_tokens: int, prefilling: int = 0, longest: int = 0) -> None:
        """Raise PolicyError naming ``policy`` and the cap it exceeded."""
        if self.max_batch is not None and batch > self.max_batch:
            raise PolicyError(f"{policy}: batch of {batch} exceeds the deployment's max_batch {self.max_batch}")
        if self.max_tokens is not None:
            tokens = self.counted(new_tokens, prefilling, longest)
            if tokens > self.max_tokens:
                what = f"{prefilling} × {longest} padded prefill tokens" if self.padded else f"{tokens} new tokens"
                raise PolicyError(f"{policy}: {what} exceed the deployment's max_tokens {self.max_tokens}")
