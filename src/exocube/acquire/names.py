"""Safe relative paths for names that come from the remote side.

Index lines, listing hrefs, product file names and manifest entries are chosen
by a server exocube does not control. Every such name passes through
:func:`safe_relpath` before it becomes a :attr:`PlannedFile.relpath
<exocube.acquire.plan.PlannedFile.relpath>`, the only place a file's location
below the destination is decided, and :func:`inside` checks the joined path
once more where the destination turns it into a file or an S3 key.

The rule, for local directories and S3 prefixes alike: percent-decode until
the name no longer changes (at most :data:`MAX_DECODE_ROUNDS` rounds), then
refuse a name that is empty or longer than :data:`MAX_RELPATH_BYTES`, is
absolute, starts with a drive letter, holds a backslash, a NUL or another
control character, has an empty segment (``a//b``, a leading or trailing
``/``), a segment made only of dots (``.``, ``..``, ``...``), a segment longer
than :data:`MAX_SEGMENT_BYTES`, the quarantine folder as its first segment,
or a last segment ending like a partial download's files (``.part``,
``.part.json``), which would overwrite another file's part or sidecar. The
same checks apply to the name's Unicode compatibility form (NFKC), so that
look-alikes such as ``\u2024\u2024`` (one dot leader) or ``\uff0e\uff0e\uff0f``
(fullwidth dots and slash) are refused too: a tool or file system that
normalises names would turn them into ``../``.
Nothing is silently rewritten: a name is either used as decoded or refused
with :class:`~exocube.errors.UnsafeNameError` naming it and the reason.

:func:`collisions` finds the names of one plan that would land on the same
file or where another needs a directory. Names are compared as a case-insensitive
or normalising file system (macOS, Windows, SMB) would: NFKC, case-folded,
trailing dots and spaces of each segment dropped (:func:`fold`).
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Sequence
from urllib.parse import unquote

from exocube.errors import UnsafeNameError

QUARANTINE = "_quarantine"
MAX_DECODE_ROUNDS = 3
# NAME_MAX is 255 bytes; the part file's sidecar adds ".part.json.tmp" (14 bytes)
MAX_SEGMENT_BYTES = 240
MAX_RELPATH_BYTES = 1000  # S3 keys hold at most 1024 bytes, prefix and quarantine included
DRIVE = re.compile(r"[A-Za-z]:")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
RESERVED_SUFFIXES = (".part", ".part.json", ".part.json.tmp")


def safe_relpath(name: str, *, source: str = "") -> str:
    """``name`` percent-decoded and checked to be a plain relative path; see the module."""
    decoded = _decode(name, source)
    reason = _unsafe(decoded)
    compat = unicodedata.normalize("NFKC", decoded)
    if not reason and compat != decoded and _unsafe(compat):
        reason = f"its Unicode compatibility form (NFKC) {compat!r} is unsafe: {_unsafe(compat)}"
    if reason:
        raise UnsafeNameError(name, reason, source)
    return decoded


def inside(root: str, relpath: str) -> str:
    """``root/relpath`` after checking ``relpath`` and that the joined path, normalised,
    stays below ``root`` (``root`` a local directory or an ``s3://`` prefix)."""
    rel = safe_relpath(relpath)
    joined = posixpath.normpath(f"{root}/{rel}")
    base = posixpath.normpath(root or "/")
    if root.startswith("s3://"):
        joined, base = f"{root}/{rel}", root  # normpath would fold the "//" of the scheme
    if not joined.startswith(base.rstrip("/") + "/"):
        raise UnsafeNameError(relpath, f"it leaves the destination {root}")
    return joined


def _decode(name: str, source: str) -> str:
    current = name
    for _ in range(MAX_DECODE_ROUNDS):
        try:
            decoded = unquote(current, errors="strict")
        except UnicodeDecodeError:
            raise UnsafeNameError(name, "its percent-escapes are not UTF-8", source) from None
        if decoded == current:
            return current
        current = decoded
    raise UnsafeNameError(
        name, f"it is still percent-encoded after {MAX_DECODE_ROUNDS} rounds of decoding",
        source)


def _unsafe(name: str) -> str:
    """Why ``name`` (decoded) cannot be a relative path below the destination; ``""`` if fine."""
    if not name:
        return "it is empty"
    if len(name.encode()) > MAX_RELPATH_BYTES:
        return f"it is longer than {MAX_RELPATH_BYTES} bytes"
    if CONTROL.search(name):
        return "it contains a NUL or another control character"
    if "\\" in name:
        return "it contains a backslash (a path separator on Windows and some servers)"
    if name.startswith("/"):
        return "it is an absolute path"
    if DRIVE.match(name):
        return "it starts with a drive letter"
    segments = name.split("/")
    for seg in segments:
        if not seg:
            return "it has an empty segment ('//' or a trailing '/')"
        if not seg.strip("."):
            return f"it has a segment {seg!r} made only of dots"
        if len(seg.encode()) > MAX_SEGMENT_BYTES:
            return f"it has a segment longer than {MAX_SEGMENT_BYTES} bytes"
    if segments[0].casefold() == QUARANTINE:
        return f"its first segment is the quarantine folder {QUARANTINE!r}"
    if segments[-1].casefold().endswith(RESERVED_SUFFIXES):
        return "it ends like a partial download's file (.part, .part.json)"
    return ""


def collisions(relpaths: Sequence[str]) -> dict[int, str]:
    """``{index: reason}`` for each name that would land on a file an earlier name
    of ``relpaths`` takes (compared case-insensitively), or on a directory an
    earlier name needs, or that needs as a directory an earlier name's file."""
    files: dict[str, str] = {}
    dirs: dict[str, str] = {}
    out: dict[int, str] = {}
    for i, rel in enumerate(relpaths):
        key = fold(rel)
        parents = [key.rsplit("/", n)[0] for n in range(1, key.count("/") + 1)]
        clash = files.get(key) or dirs.get(key) or next(
            (files[p] for p in parents if p in files), None)
        if clash is not None:
            out[i] = f"its name {rel!r} collides with {clash!r}, planned before it"
            continue
        files[key] = rel
        for p in parents:
            dirs.setdefault(p, rel)
    return out


def fold(relpath: str) -> str:
    """The form under which two names land on one file somewhere: NFKC, case-folded,
    each segment without trailing dots and spaces (Windows and SMB drop them)."""
    folded = unicodedata.normalize("NFKC", relpath).casefold()
    return "/".join(seg.rstrip(". ") for seg in folded.split("/"))
