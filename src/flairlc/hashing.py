"""File digests: the SHA-256 that ties a map job, an import or a fine-tuning to the file it read."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read at a time.
READ_BLOCK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in blocks of :data:`READ_BLOCK_BYTES`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(READ_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
