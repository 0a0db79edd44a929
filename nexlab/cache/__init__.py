"""The build cache: the filesystem a reproducible build makes before it writes the agent.

An entry is that ext4 image (sparse) and its ``entry.json`` (the inputs it was
made from, its CRC-32, and a digest of the JSON itself), in one directory named
by its key, the digest of everything that shapes it but the agent
(``nexlab.builder.reproducible.cached``). Entries are written to a temporary
directory and renamed into place, so a half-written one is never found under
its key; one that fails its digests on use is removed and rebuilt, never used.
"""

from nexlab.cache.store import Cache, CacheEntry, CorruptEntryError, cache_root

__all__ = ["Cache", "CacheEntry", "CorruptEntryError", "cache_root"]
