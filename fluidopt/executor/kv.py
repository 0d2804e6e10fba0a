"""The engine's KV-allocator part: how much KV-cache memory the residents hold.

``TokenKV`` is the accounting of the system model: a resident holds exactly its footprint
(prompt tokens processed + tokens generated) and the end-of-iteration sum over residents
must stay ≤ C. The engine keeps the running total (``kv``, tokens) and asks this part
whether an iteration fits and how many iterations of a stretch fit.
"""

from __future__ import annotations


class TokenKV:
    """Exact token accounting: capacity C tokens, a resident holds its footprint."""

    __slots__ = ("capacity",)

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)

    def room(self, used: int, grow: int) -> int:
        """Iterations that fit when the usage ``used`` grows by ``grow`` ≥ 1 tokens each."""
        return (self.capacity - used) // grow
