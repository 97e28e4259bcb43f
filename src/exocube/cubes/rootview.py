"""The latest version as a plain Zarr hierarchy at a local store's root.

``xarray.open_zarr(STORE)`` (or ``zarr.open_group(STORE)``) then opens the
newest version without exocube: the root holds a copy of the version's
consolidated ``zarr.json`` and small arrays (coordinates, parameters,
statistics), and chunk ``<var>/c.<i>...`` of every run field is a hard link to
chunk ``<var>/c.0...`` of run ``i``'s immutable group, so the view costs no
space for the data. Runs are only appended to versions, so run ``i`` is the same
in every later version and a new version links only its new runs.

Order of writes: links of the new runs (beyond the old arrays' shape, so unseen
by a reader of the old view), the small arrays, then the root ``zarr.json``
(temporary name, fsync, rename). A reader that opens the root while a commit
rewrites the small arrays can get a decoding error and should open it again;
:func:`exocube.cubes.open_store` reads immutable versions and never sees this.
A view left behind by a crash is brought up to date by the next ingest, even one
that adds nothing.

S3 stores have no hard links (a server-side copy would double the store's size),
so their root holds no view; read them with :func:`exocube.cubes.open_store`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from exocube.cubes.schema import Layout
from exocube.cubes.store import MANIFEST_DOC, StoreLocation
from exocube.grid import FIELDS_2D, FIELDS_3D

log = logging.getLogger(__name__)
ROOT_DOC = "zarr.json"


def published_version(root: Path) -> str | None:
    """The version id the root view shows, or ``None`` when there is none."""
    try:
        doc = json.loads((root / ROOT_DOC).read_bytes())
    except FileNotFoundError:
        return None
    return doc.get("attributes", {}).get("version_id")


def publish_latest(loc: StoreLocation, layout: Layout, manifest: dict[str, Any],
                   previous: dict[str, Any] | None) -> None:
    """Make the root show ``manifest``'s version; ``previous`` is the version it shows now
    (its runs are linked already), ``None`` to link every run."""
    if not loc.is_local:
        return
    root = Path(loc.url)
    start = len(previous["runs"]) if previous else 0
    _link_runs(root, layout, manifest["runs"], start)
    _copy_small_arrays(root, manifest["version_id"])
    loc.sync()  # links and small arrays before the metadata that shows them
    _replace_file(root / "versions" / manifest["version_id"] / ROOT_DOC, root / ROOT_DOC,
                  durable=True)
    log.info("store %s: root view shows version %s", loc.url, manifest["version_id"])


def chunk_name(name: str, index: int, sep: str) -> str:
    """The chunk key of run ``index`` of run field ``name`` (all other chunk indices 0)."""
    zeros = ["0"] * (4 if name in FIELDS_3D else 3)
    return f"{name}/" + sep.join(["c", str(index), *zeros])


def _link_runs(root: Path, layout: Layout, runs: list[dict[str, Any]], start: int) -> None:
    sep = layout.chunk_separator
    for index in range(start, len(runs)):
        group = root / "runs" / runs[index]["key"]
        for name in FIELDS_3D + FIELDS_2D:
            source = group / chunk_name(name, 0, sep)
            if source.exists():  # an absent chunk reads as fill values in both views
                _link(source, root / chunk_name(name, index, sep))


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` atomically (a copy where links are refused)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.link(source, tmp)
    except OSError as exc:  # a filesystem without hard links: same bytes, more space
        log.info("hard link refused (%s); copying %s", exc, source)
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _copy_small_arrays(root: Path, version_id: str) -> None:
    """Every object of ``versions/<id>/`` but the manifest and the root metadata."""
    folder = root / "versions" / version_id
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(folder)
            if str(rel) in (MANIFEST_DOC, ROOT_DOC):
                continue
            _replace_file(path, root / rel, durable=False)


def _replace_file(source: Path, target: Path, *, durable: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(source.read_bytes())
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, target)
