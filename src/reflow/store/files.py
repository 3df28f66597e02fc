"""Large results as files beside the database, so a big value does not bloat every query.

A result whose encoded bytes pass the store's `inline_limit` is written to a file named by its
SHA-256 under the store's results folder (`reflow.db` keeps them in `reflow-results/`), and
its row holds a reference: encoding `file:json` or `file:pickle`, and `{"file", "sha256",
"size"}` as JSON. The file is written (to a temporary name, synced, then renamed) before the
row is committed, so a committed row never names a missing file (a file already there is
touched instead, which keeps `Pruning.collect_result_files` from taking it). Reading checks
the digest: a file changed since it was written is refused; a pickle inside is checked again
by its HMAC when decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from reflow.store.results import Encoded, UntrustedResultError
from reflow.store.sql import StoreError

PREFIX = "file:"
INLINE_LIMIT = 1 << 20
"""Results of more bytes than this (1 MiB) go to files, by default."""


class ResultFiles:
    """A folder of content-addressed result files."""

    def __init__(self, folder: Path, inline_limit: int) -> None:
        if inline_limit < 0:
            raise ValueError(f"inline_limit is a number of bytes, 0 or more; got {inline_limit}")
        self.folder = folder
        self.inline_limit = inline_limit

    def put(self, encoding: str, data: bytes) -> tuple[str, bytes]:
        """Write `data` to its file (if it is not there yet); the row's (encoding, blob)."""
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest[:2]}/{digest}"
        path = self.folder / name
        if not _touched(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{digest}.{os.getpid()}.partial")
            with open(partial, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        reference = {"file": name, "sha256": digest, "size": len(data)}
        return PREFIX + encoding, json.dumps(reference).encode()

    def load(self, encoding: str, reference: bytes) -> Encoded:
        """The result a row's reference names, its digest checked."""
        about = json.loads(reference)
        path = self.folder / about["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"a stored result is kept in {path}, which is missing: was the folder "
                f"{self.folder} moved or cleaned? Put it back beside the database"
            ) from None
        if hashlib.sha256(data).hexdigest() != about["sha256"]:
            raise UntrustedResultError(
                f"the result file {path} changed after it was written (its SHA-256 does not "
                "match the store's): refusing to load it"
            )
        return Encoded(encoding.removeprefix(PREFIX), data)  # type: ignore[arg-type]


def _touched(path: Path) -> bool:
    """Mark an existing file as just used (a collector spares files younger than its grace
    period, and puts back one touched while it looked); False when there is no such file."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True
