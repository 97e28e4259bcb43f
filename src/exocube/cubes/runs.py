"""Run groups: one immutable Zarr group per ingested run, ``runs/<key>/``.

A group holds the run's seven fields as arrays of shape (1, time, [plev,]
lat, lon) in a single chunk each, encoded exactly like the version arrays
that point at them. ``summary.json`` is written last; a group without it is
incomplete and is rewritten by the next ingest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from exocube.cubes.schema import Layout, RunCube
from exocube.cubes.stats import run_stats
from exocube.cubes.store import SUMMARY_DOC, StoreLocation
from exocube.cubes.versions import compressor
from exocube.grid import FIELDS_2D, FIELDS_3D

DIMS_3D = ("run", "time", "plev", "lat", "lon")
DIMS_2D = ("run", "time", "lat", "lon")


def file_sha256(path: str | Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def run_key(sha256: str, layout: Layout) -> str:
    """Storage key of a run: the source file's hash and the layout it was processed for."""
    return f"{sha256}-{layout.digest()}"


def read_summary(loc: StoreLocation, key: str) -> dict[str, Any] | None:
    return loc.read_json(f"runs/{key}/{SUMMARY_DOC}")


def write_run_group(loc: StoreLocation, key: str, cube: RunCube, layout: Layout,
                    summary: dict[str, Any]) -> dict[str, Any]:
    """Write the run's arrays, then its summary (with statistics); return the summary."""
    group = zarr.open_group(loc.zarr_store(f"runs/{key}"), mode="w", zarr_format=3)
    codec = compressor(layout)
    for name in FIELDS_3D + FIELDS_2D:
        data = cube.fields[name][None]
        arr = group.create_array(
            name, shape=data.shape, chunks=data.shape, dtype=np.float32, compressors=(codec,),
            fill_value=np.float32(np.nan),
            dimension_names=DIMS_3D if name in FIELDS_3D else DIMS_2D,
        )
        arr[...] = data
    summary = {**summary, "stats": run_stats(cube.fields), "attrs": cube.attrs}
    loc.write_json(f"runs/{key}/{SUMMARY_DOC}", summary)
    return summary
