"""The SQLite store's in-process copy of namespaces' vectors, bounded by memory.

A :class:`~memshelf.stores.vectors.VectorBlock` only copies rows of the
``vectors`` table, so dropping one loses nothing: the next search of its
namespace reads it again. So a block whose namespace loses its last vector is
dropped at once (5,000 emptied namespaces held 262 MB when they were kept),
and past ``max_bytes`` the least recently searched blocks go first. The block
a search has read last always stays, even alone over the bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

from memshelf.errors import ConfigurationError
from memshelf.stores.vectors import VectorBlock

DEFAULT_VECTOR_CACHE_BYTES = 1 << 30  # 1 GiB: ~700k vectors of 384 dims
_BLOCK_OVERHEAD = 1024  # the Python objects around an (even empty) block, about


class BlockCache(Mapping[str, VectorBlock]):
    """Encoded namespace -> its cached block, least recently used first."""

    def __init__(self, max_bytes: int = DEFAULT_VECTOR_CACHE_BYTES) -> None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
            raise ConfigurationError(
                f"vector_cache_bytes must be a whole number of bytes >= 0, got {max_bytes!r}; "
                f"the default is {DEFAULT_VECTOR_CACHE_BYTES:,} (MEMSHELF_VECTOR_CACHE_MB)."
            )
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[str, VectorBlock] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self.nbytes = 0  # what the cached blocks hold, as last measured

    def __getitem__(self, ns: str) -> VectorBlock:
        return self._blocks[ns]

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def use(self, ns: str) -> VectorBlock | None:
        """The cached block of ``ns`` (now the most recently used), or None.

        Re-measured, as a search may have given it an approximate index since."""
        block = self._blocks.get(ns)
        if block is not None:
            self._blocks.move_to_end(ns)
            self._measure(ns)
        return block

    def add(self, ns: str, block: VectorBlock) -> None:
        """Cache a freshly read block (kept even when empty: reading it again costs a query)."""
        self._blocks[ns] = block
        self._blocks.move_to_end(ns)
        self._measure(ns)

    def changed(self, ns: str, emptied: bool = True) -> None:
        """Re-measure a block that writes patched; drop it once it holds no vector."""
        block = self._blocks.get(ns)
        if block is None:
            return
        if emptied and len(block) == 0:
            self.pop(ns)
        else:
            self._measure(ns)

    def pop(self, ns: str) -> None:
        if self._blocks.pop(ns, None) is not None:
            self.nbytes -= self._sizes.pop(ns)

    def clear(self) -> None:
        self._blocks.clear()
        self._sizes.clear()
        self.nbytes = 0

    def _measure(self, ns: str) -> None:
        size = self._blocks[ns].nbytes + _BLOCK_OVERHEAD
        self.nbytes += size - self._sizes.get(ns, 0)
        self._sizes[ns] = size
        while self.nbytes > self.max_bytes and len(self._blocks) > 1:
            self.pop(next(iter(self._blocks)))  # never the newest: the one just read
