"""Reading dataset files line by line, plain or gzipped, with UTF-8 checks and SHA-256 of the content.

Checksums are always of the *decompressed* bytes, keyed by the relative path without `.gz`, so a
dataset has the same checksums whether it is stored plain or compressed.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import Iterator, Mapping, Optional

from harness.core.errors import DataError

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20


def find_file(folder: Path, relative: str) -> Optional[Path]:
    """`folder/relative` if it exists, else `folder/relative.gz`, else None (plain wins over .gz)."""
    plain = folder / relative
    if plain.is_file():
        return plain
    packed = folder / (relative + ".gz")
    return packed if packed.is_file() else None


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


class TextLines:
    """Iterates `(line number, text)` over a file; `sha256` is complete once iteration has ended.

    Each line is decoded as strict UTF-8 (an error names file and line) and loses its line ending;
    a BOM at the start of the file is dropped (it is not part of the first id).
    """

    def __init__(self, path: Path):
        self.path = path
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[tuple[int, str]]:
        try:
            with _open_binary(self.path) as handle:
                for lineno, raw in enumerate(handle, start=1):
                    self._hash.update(raw)
                    if lineno == 1 and raw.startswith(_BOM):
                        raw = raw[len(_BOM):]
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise DataError(f"{self.path}:{lineno}: not valid UTF-8 "
                                        f"({exc.reason} at byte {exc.start} of the line)") from None
                    yield lineno, text.rstrip("\r\n")
        except (OSError, EOFError, zlib.error) as exc:
            # gzip raises BadGzipFile (an OSError), EOFError on truncation, zlib.error on bad data.
            raise DataError(f"cannot read {self.path}: {exc}") from None


def content_sha256(path: Path) -> str:
    """SHA-256 of the file's decompressed bytes."""
    digest = hashlib.sha256()
    try:
        with _open_binary(path) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    return digest.hexdigest()


def read_sha256sums(path: Path) -> dict[str, str]:
    """Parse a `sha256sum` listing (`<hex>  <relative path>` per line) into {path: hex}."""
    sums: dict[str, str] = {}
    for lineno, line in TextLines(path):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{lineno}: expected '<sha256>  <file>', got {line!r}")
        sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def verify_sha256sums(folder: Path, expected: Mapping[str, str], relatives: list[str]) -> None:
    """Check the decompressed content of each `relatives` file in `folder` against `expected`."""
    for relative in relatives:
        path = find_file(folder, relative)
        if path is None:
            raise DataError(f"{folder / relative}: missing (listed files: {', '.join(expected)})")
        if relative not in expected:
            raise DataError(f"{path}: no checksum listed for {relative!r} in SHA256SUMS")
        actual = content_sha256(path)
        if actual != expected[relative]:
            raise DataError(f"{path}: checksum mismatch (sha256 {actual}, expected "
                            f"{expected[relative]}); the file is corrupt or was modified")
