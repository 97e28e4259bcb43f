"""Where a cube store lives and how its objects are read and written.

A store URL is a local path or ``s3://bucket/prefix``; S3 goes through
fsspec/s3fs with the settings' S3 options (endpoint URL, region). Objects:

- ``store.json``: schema version and the store's layout (grid, time handling);
- ``runs/<sha256>-<layout>/``: one small Zarr group per ingested run, written
  once and never changed (its ``summary.json`` is written last and marks it
  complete);
- ``versions/<id>/``: each version's Zarr metadata (consolidated), small arrays
  (coordinates, parameters, statistics) and ``manifest.json``;
- ``claims/<parent id>.json``: which version is the one child of a version,
  created exclusively (so history stays linear under concurrent ingests);
- ``latest.json``: the id of the newest version (a cache of the claim chain);
- local stores: ``zarr.json`` and the arrays beside it, the latest version for
  plain Zarr readers (:mod:`exocube.cubes.rootview`).

:class:`VersionStore` presents one version as an ordinary Zarr hierarchy:
chunk ``<var>/c.<i>...`` of a run-indexed array is read from run ``i``'s group.
"""

from __future__ import annotations

import ctypes
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import zarr
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore, LocalStore, WrapperStore

from exocube.config import get_settings
from exocube.errors import StoreError

STORE_DOC = "store.json"
LATEST_DOC = "latest.json"
SUMMARY_DOC = "summary.json"
MANIFEST_DOC = "manifest.json"


@dataclass(frozen=True)
class StoreLocation:
    """A store root: a local directory or an S3 prefix, with fsspec options."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str, storage_options: dict[str, Any] | None = None) -> StoreLocation:
        if url.startswith("s3://"):
            opts = storage_options if storage_options is not None else (
                get_settings().s3.storage_options())
            return cls(url.rstrip("/"), opts)
        if "://" in url and not url.startswith("file://"):
            raise StoreError(f"store URL {url!r} is neither a local path nor s3://bucket/prefix")
        return cls(str(Path(url.removeprefix("file://")).expanduser().resolve()), {})

    @property
    def is_local(self) -> bool:
        return not self.url.startswith("s3://")

    def join(self, *parts: str) -> str:
        return "/".join([self.url, *parts])

    def fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem("s3" if not self.is_local else "file", **self.storage_options)

    def zarr_store(self, subpath: str = "", read_only: bool = False) -> zarr.abc.store.Store:
        """A Zarr store rooted at ``subpath`` under the store root."""
        target = self.join(subpath) if subpath else self.url
        if self.is_local:
            return LocalStore(target, read_only=read_only)
        return FsspecStore.from_url(target, storage_options=self.storage_options,
                                    read_only=read_only)

    def read_json(self, path: str) -> dict[str, Any] | None:
        """A JSON document under the root, or ``None`` if it does not exist."""
        fs, full = self.fs(), self.join(path)
        try:
            with fs.open(full, "rb") as fh:
                return json.loads(fh.read())
        except FileNotFoundError:
            return None

    def write_json(self, path: str, doc: dict[str, Any], *, durable: bool = True,
                   indent: int | None = 1) -> None:
        """Write a JSON document atomically (temporary name then rename, or one S3 PUT).

        ``durable``: also fsync it before the rename, so it survives a power loss
        (a killed process loses nothing either way). Run summaries skip this and
        are made durable by the :meth:`sync` before the version that lists them.
        """
        data = json.dumps(doc, indent=indent, sort_keys=True).encode()
        full = self.join(path)
        if not self.is_local:
            with self.fs().open(full, "wb") as fh:
                fh.write(data)
            return
        Path(full).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{full}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, full)

    def sync(self) -> None:
        """Flush everything written under a local root to disk (no-op on S3, whose PUTs
        are durable when they return): one ``syncfs`` of the root's filesystem."""
        if self.is_local:
            sync_filesystem(self.url)

    def create_exclusive(self, path: str, doc: dict[str, Any]) -> bool:
        """Create a JSON document only if it does not exist yet (S3: conditional PUT).

        Returns ``False`` when another writer created it first.
        """
        data = json.dumps(doc, sort_keys=True).encode()
        full = self.join(path)
        if self.is_local:
            Path(full).parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.fs().open(full, "xb") as fh:
                fh.write(data)
        except FileExistsError:
            return False
        return True

    def put_many(self, prefix: str, objects: dict[str, bytes]) -> None:
        """Write several objects under ``prefix`` (no ordering between them)."""
        if not self.is_local:
            self.fs().pipe({self.join(prefix, k): v for k, v in objects.items()})
            return
        root = Path(self.join(prefix))
        make_dirs(root, objects)
        for key, data in objects.items():
            (root / key).write_bytes(data)

    def exists(self, path: str) -> bool:
        return bool(self.fs().exists(self.join(path)))


def make_dirs(root: Path, keys: Iterable[str]) -> None:
    """Create ``root`` and every directory the ``/``-separated ``keys`` need, each with
    one ``mkdir`` call (``mkdir(parents=True)`` per object repeats them)."""
    root.mkdir(parents=True, exist_ok=True)
    dirs = {"/".join(parts[:i]) for parts in (k.split("/") for k in keys)
            for i in range(1, len(parts))}
    for d in sorted(dirs, key=lambda d: d.count("/")):
        try:
            os.mkdir(root / d)
        except FileExistsError:
            continue


def sync_filesystem(path: str) -> None:
    """``syncfs(2)`` on the filesystem holding ``path`` (``os.sync`` where libc lacks it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "syncfs"):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise StoreError(f"syncfs of the store at {path} failed: {os.strerror(err)}")
    finally:
        os.close(fd)


class VersionStore(WrapperStore):
    """A read-only view of one version: metadata from ``versions/<id>/``, run chunks
    from each run's immutable group."""

    def __init__(self, store: zarr.abc.store.Store, version_id: str,
                 run_keys: tuple[str, ...], run_arrays: frozenset[str]) -> None:
        super().__init__(store)
        self.version_id = version_id
        self.run_keys = run_keys
        self.run_arrays = run_arrays

    def _with_store(self, store: zarr.abc.store.Store) -> VersionStore:
        return type(self)(store, self.version_id, self.run_keys, self.run_arrays)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._store, self.version_id, self.run_keys, self.run_arrays))

    def physical_key(self, key: str) -> str:
        """Where logical ``key`` of this version is stored under the store root.

        Run-field chunk ``<var>/c<s><i><s>0...`` (separator ``s``: "." or, in stores
        made before it, "/") is chunk ``<var>/c<s>0<s>0...`` of run ``i``'s group.
        """
        name, _, rest = key.partition("/")
        if name in self.run_arrays and rest[:2] in ("c.", "c/"):
            sep = rest[1]
            index, *others = rest[2:].split(sep)
            if int(index) < len(self.run_keys):
                chunk = sep.join(["c", "0", *others])
                return f"runs/{self.run_keys[int(index)]}/{name}/{chunk}"
        return f"versions/{self.version_id}/{key}"

    @property
    def read_only(self) -> bool:
        return True

    @property
    def supports_writes(self) -> bool:
        return False

    @property
    def supports_deletes(self) -> bool:
        return False

    @property
    def supports_listing(self) -> bool:
        return False

    def _check_writable(self) -> None:
        raise StoreError(f"version {self.version_id} is immutable; ingest to make a new one")

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        return await self._store.get(self.physical_key(key), prototype, byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        mapped = [(self.physical_key(k), r) for k, r in key_ranges]
        return await self._store.get_partial_values(prototype, mapped)

    async def exists(self, key: str) -> bool:
        return await self._store.exists(self.physical_key(key))

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def delete(self, key: str) -> None:
        self._check_writable()

    def list(self) -> AsyncIterator[str]:
        raise StoreError("a version store cannot be listed; open it with consolidated metadata")

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        return self.list()

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        return self.list()
