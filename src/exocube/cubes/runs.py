"""Run groups: one immutable Zarr group per ingested run, ``runs/<key>/``.

A group holds the run's seven fields as arrays of shape (1, time, [plev,]
lat, lon) in a single chunk each, encoded exactly like the version arrays
that point at them. ``summary.json`` is written last; a group without it is
incomplete and is rewritten by the next ingest.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.storage import MemoryStore

from exocube.cubes.schema import Layout, RunCube
from exocube.cubes.stats import run_stats
from exocube.cubes.store import SUMMARY_DOC, StoreLocation
from exocube.cubes.versions import compressor
from exocube.grid import FIELDS_2D, FIELDS_3D

DIMS_3D = ("run", "time", "plev", "lat", "lon")
DIMS_2D = ("run", "time", "lat", "lon")
SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def run_key(sha256: str, layout: Layout) -> str:
    """Storage key of a run: the source file's hash and the layout it was processed for."""
    return f"{sha256}-{layout.digest()}"


def metadata_documents(layout: Layout) -> dict[str, bytes]:
    """The group's and arrays' ``zarr.json`` documents, made by zarr itself once per layout.

    They are the same for every run of a store (only the data differ), so each run
    group is written as these documents plus one encoded chunk per array.
    """
    return _documents(layout.json_text)


@lru_cache(maxsize=4)
def _documents(layout_json: str) -> dict[str, bytes]:
    layout = Layout.from_json(json.loads(layout_json))
    store = MemoryStore()
    group = zarr.open_group(store, mode="w", zarr_format=3)
    for name in FIELDS_3D + FIELDS_2D:
        shape = (1, *run_shape(name, layout))
        group.create_array(name, shape=shape, chunks=shape, dtype=np.float32,
                           compressors=(compressor(layout),), fill_value=np.float32(np.nan),
                           chunk_key_encoding=layout.chunk_key_encoding,
                           dimension_names=DIMS_3D if name in FIELDS_3D else DIMS_2D)
    return {key: buf.to_bytes() for key, buf in store._store_dict.items()}


def run_shape(name: str, layout: Layout) -> tuple[int, ...]:
    nt, nz, ny, nx = layout.shape3d
    return (nt, nz, ny, nx) if name in FIELDS_3D else (nt, ny, nx)


def encode_chunk(data: np.ndarray, layout: Layout) -> bytes:
    """The bytes zarr stores for a one-chunk array: little-endian C order, then blosc."""
    c = layout.compressor
    codec = _codec(c["cname"], c["clevel"], c["shuffle"], c.get("blocksize", 0))
    return bytes(codec.encode(np.ascontiguousarray(data, dtype="<f4")))


@lru_cache(maxsize=8)
def _codec(cname: str, clevel: int, shuffle: str, blocksize: int) -> Blosc:
    return Blosc(cname=cname, clevel=clevel, shuffle=SHUFFLE[shuffle], blocksize=blocksize)


def read_summary(loc: StoreLocation, key: str) -> dict[str, Any] | None:
    return loc.read_json(f"runs/{key}/{SUMMARY_DOC}")


def write_run_group(loc: StoreLocation, key: str, cube: RunCube, layout: Layout,
                    summary: dict[str, Any]) -> dict[str, Any]:
    """Write the run's arrays, then its summary (with statistics); return the summary."""
    objects = dict(metadata_documents(layout))
    for name in FIELDS_3D + FIELDS_2D:
        sep = layout.chunk_separator
        chunk_key = f"{name}/c{sep}" + sep.join(["0"] * (len(run_shape(name, layout)) + 1))
        objects[chunk_key] = encode_chunk(cube.fields[name], layout)
    loc.put_many(f"runs/{key}", objects)
    summary = {**summary, "stats": run_stats(cube.fields), "attrs": cube.attrs}
    loc.write_json(f"runs/{key}/{SUMMARY_DOC}", summary, durable=False, indent=None)
    return summary
