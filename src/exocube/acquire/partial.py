"""Partial downloads: ``<name>.part`` plus a JSON sidecar ``<name>.part.json``.

The sidecar (:class:`Sidecar`) records what the bytes in the ``.part`` file are
(URL, ETag or FTP MDTM, Last-Modified, expected size, hash algorithm, and once
checked their size and hashes), so a later process can resume them with
``Range``/``If-Range`` (FTP: ``REST``) or throw them away. A file only ever
reaches its final name through :func:`os.replace` after its size and hashes
were checked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exocube.acquire.units import size_problem
from exocube.errors import ChecksumError, InputDataError

log = logging.getLogger(__name__)

HASH_BLOCK = 1 << 20
WRITE_BYTES = 16 << 10  # see PartWriter.write_chunks


@dataclass(frozen=True)
class Expected:
    """What a file must be: any of size, sha256 and a published MD5."""

    size: int | None = None
    sha256: str | None = None
    md5: str | None = None


NOTHING_EXPECTED = Expected()

_TEXT = (str, type(None))
# what each sidecar value may be; "size": a byte count (units.size_problem) or None
_FIELD_KINDS: dict[str, tuple[type, ...] | str] = {
    "url": (str,), "etag": _TEXT, "last_modified": _TEXT, "hash": _TEXT, "sha256": _TEXT,
    "md5": _TEXT, "resumed": (bool,), "verified": (bool,),
    "expected_size": "size", "size": "size",
}
# written by exocube until 2026-11-23 (False for files below acquire.resume_min_bytes);
# nothing writes it now. Read for old sidecars: False means "not resumable".
_LEGACY_RESUMABLE = "resumable"


@dataclass(frozen=True)
class Sidecar:
    """What the bytes of a ``.part`` file are, saved beside it as ``<name>.part.json``.

    ``etag``/``last_modified`` are the validators a resume must match (FTP keeps
    the file's ``MDTM`` in ``last_modified``); ``expected_size`` the file's size
    as announced or planned; ``hash`` the algorithms being computed
    (``sha256`` or ``sha256+md5``); ``resumed`` whether the part continues an
    earlier attempt's bytes; ``verified``, ``sha256``, ``md5`` and ``size`` are
    set once the whole file passed its checks (a crash before the rename then
    re-hashes instead of downloading again).
    """

    url: str
    etag: str | None = None
    last_modified: str | None = None
    expected_size: int | None = None
    hash: str | None = None
    resumed: bool = False
    verified: bool = False
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Sidecar:
        """The sidecar in ``text``, read back from disk where anything may have edited
        it: :class:`~exocube.errors.InputDataError` naming the field and value unless
        it is a JSON object with a string ``url`` and only the fields above, each of
        its type (sizes: whole byte counts, see :func:`~exocube.acquire.units.size_problem`).
        An old sidecar's ``resumable: false`` loads as a sidecar without validators."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputDataError(f"the sidecar is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise InputDataError(f"the sidecar is a JSON {type(raw).__name__}, not an object")
        legacy = raw.pop(_LEGACY_RESUMABLE, True)
        unknown = sorted(set(raw) - set(_FIELD_KINDS))
        if unknown:
            raise InputDataError(f"the sidecar has unknown fields {unknown}")
        if "url" not in raw:
            raise InputDataError("the sidecar has no url")
        for key, value in raw.items():
            why = _field_problem(_FIELD_KINDS[key], value)
            if why:
                raise InputDataError(f"the sidecar's {key} {value!r:.40} {why}")
        if legacy is not True:
            if legacy is not False:
                raise InputDataError(f"the sidecar's resumable {legacy!r:.40} is not a bool")
            raw.update(etag=None, last_modified=None)
        return cls(**raw)

    def validator(self) -> str | None:
        """A strong ETag or the Last-Modified date, for ``If-Range``; else ``None``."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    def verified_as(self, hashes: Hashes) -> Sidecar:
        """This sidecar once the part's bytes, hashed as ``hashes``, passed their checks."""
        return dataclasses.replace(
            self, verified=True, sha256=hashes.sha256.hexdigest(), size=hashes.size,
            md5=hashes.md5.hexdigest() if hashes.md5 else None)


def _field_problem(kind: tuple[type, ...] | str, value: Any) -> str:
    """Why ``value`` cannot be a sidecar field of ``kind`` (``""`` if it can)."""
    if kind == "size":
        return "" if value is None else size_problem(value)
    return "" if isinstance(value, kind) else f"is a {type(value).__name__}"


class Hashes:
    """sha256 always; MD5 too when the source publishes one."""

    def __init__(self, with_md5: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if with_md5 else None
        self.size = 0

    def update_all(self, chunks: Sequence[bytes]) -> None:
        """``update`` with each chunk in order."""
        for chunk in chunks:
            self.update(chunk)

    def update(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        self.size += len(data)

    def update_from_file(self, path: Path, length: int) -> None:
        """Hash the first ``length`` bytes of ``path`` (the part kept for a resume)."""
        with path.open("rb") as fh:
            left = length
            while left:
                block = fh.read(min(HASH_BLOCK, left))
                if not block:
                    break
                self.update(block)
                left -= len(block)


def check(hashes: Hashes, expected: Expected, what: str) -> None:
    """Raise :class:`ChecksumError` unless size and hashes match ``expected``."""
    if expected.size is not None and hashes.size != expected.size:
        raise ChecksumError(
            f"{what}: size {hashes.size} bytes, expected {expected.size}; "
            "the transfer was cut short or the file changed on the server"
        )
    got = hashes.sha256.hexdigest()
    if expected.sha256 and got != expected.sha256.lower():
        raise ChecksumError(f"{what}: sha256 {got}, expected {expected.sha256}")
    if expected.md5 and hashes.md5 is not None:
        md5 = hashes.md5.hexdigest()
        if md5 != expected.md5.lower():
            raise ChecksumError(
                f"{what}: MD5 {md5} does not match the published MD5 {expected.md5}; "
                "the source's index or the file is wrong. Report it to the archive"
            )


class PartFile:
    """The ``.part`` file and sidecar that stand in for ``final`` until it is verified."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        self.sidecar = final.with_name(final.name + ".part.json")

    def meta(self, url: str) -> Sidecar | None:
        """The sidecar, if it and the part exist, it describes ``url``, it is valid
        (:meth:`Sidecar.from_json`) and the part is no larger than the size it
        expects. A sidecar that is not valid, or whose part is too large, is
        logged as a warning: its part is not trusted and the file is fetched from zero."""
        if not self.part.exists():
            return None
        try:
            meta = Sidecar.from_json(self.sidecar.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None  # no sidecar (a file where its folder would be: none either)
        except InputDataError as exc:
            log.warning("%s: %s; the part is not trusted and the file is fetched from zero",
                        self.sidecar, exc)
            return None
        if meta.url != url:
            return None
        expected = meta.expected_size
        if expected is not None and self.offset() > expected:
            log.warning("%s: the part is larger than the expected %d bytes; the part is not "
                        "trusted and the file is fetched from zero", self.sidecar, expected)
            return None
        return meta

    def offset(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def save_meta(self, meta: Sidecar) -> None:
        """Write the sidecar atomically."""
        self.sidecar.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(meta.to_json())
        os.replace(tmp, self.sidecar)

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)

    def open(self, offset: int) -> PartWriter:
        """A writer positioned at ``offset`` (the part is truncated there).

        At offset 0 the part is created afresh rather than truncated: on ext4 a
        truncate to size 0 marks the file for a flush of all its dirty pages on
        close (``auto_da_alloc``), 0.4 s per GiB here (``benchmarks/acquire.py``).
        """
        self.part.parent.mkdir(parents=True, exist_ok=True)
        if offset and self.part.exists():
            fh = self.part.open("r+b", buffering=0)
            fh.truncate(offset)
            fh.seek(offset)
            return PartWriter(fh)
        self.part.unlink(missing_ok=True)
        return PartWriter(self.part.open("wb", buffering=0))

    def promote(self, target: Path | None = None) -> Path:
        """Rename the verified part to ``target`` (default: its final name)."""
        target = target or self.final
        if target.parent != self.part.parent:
            target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.part, target)
        self.sidecar.unlink(missing_ok=True)
        return target


class PartWriter:
    """Appends blocks to an open part file, unbuffered: a written block is on disk
    (in the page cache) even if the process is killed right after."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def write(self, block: bytes, hashes: Hashes | None = None) -> None:
        self.write_chunks((block,))
        if hashes is not None:
            hashes.update(block)

    def write_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Append ``chunks`` in order, :data:`WRITE_BYTES` per ``write`` call.

        Small writes make the kernel fill the page cache with small folios; a
        1 MiB write asks for large ones, and on the benchmark machine (a VM,
        Linux 6.18, ext4) filling those was measured 2-3x slower whenever
        another process's file had just been freed (``dd bs=1M`` after
        ``curl``: 0.5-1.3 GB/s; ``bs=16K``: 2.9 GB/s). curl writes 16 KiB too.
        """
        fd = self.fh.fileno()
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view[:WRITE_BYTES]):]

    def close(self, sync: bool) -> None:
        if sync:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        self.fh.close()
