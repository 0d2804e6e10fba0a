"""The engine's KV-allocator part: how much KV-cache memory the residents hold.

``TokenKV`` is the accounting of the system model: a resident holds exactly its footprint
(prompt tokens processed + tokens generated) and the end-of-iteration sum over residents
must stay ≤ C. The engine keeps the running total (``kv``, tokens) and asks this part
whether an iteration fits and how many iterations of a stretch fit.

``BlockKV`` allocates in blocks of b tokens (paged attention): a resident holds
⌈max(footprint, prompt)/b⌉·b tokens — the whole prompt is reserved on admission, the
decode tokens take a new block every b tokens. The engine then keeps each resident's
holding (``held``) and the total of the holdings.
"""

from __future__ import annotations

import numpy as np


class TokenKV:
    """Exact token accounting: capacity C tokens, a resident holds its footprint."""

    __slots__ = ("capacity",)

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)

    def room(self, used: int, grow: int) -> int:
        """Iterations that fit when the usage ``used`` grows by ``grow`` ≥ 1 tokens each."""
        return (self.capacity - used) // grow


class BlockKV(TokenKV):
    """Block-granular allocation: holdings are multiples of ``block`` tokens, total ≤ C."""

    __slots__ = ("block",)

    def __init__(self, capacity: int, block: int) -> None:
        super().__init__(capacity)
        self.block = int(block)

    def hold(self, footprint: np.ndarray, prompt: np.ndarray) -> np.ndarray:
        """Tokens held by residents with these footprints and (effective) prompts."""
        b = self.block
        return -(-np.maximum(footprint, prompt) // b) * b

    def usable(self) -> int:
        """The largest holding that fits: C rounded down to whole blocks, tokens."""
        return self.capacity // self.block * self.block
