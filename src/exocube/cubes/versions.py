"""Immutable store versions: manifests, the latest pointer, commits, catalogue rows.

A version is ``versions/<id>/``: consolidated Zarr metadata, the small arrays
(run ids, parameters, statistics) and ``manifest.json``. It becomes part of
the history when ``claims/<parent>.json`` naming it is created, exclusively:
each version has at most one child, so concurrent ingests cannot fork or lose
versions (the loser is told to re-run). Run chunks live in ``runs/<key>/`` groups
that are written once and shared by every version that holds the run, so a
new version costs a few kilobytes however large the store is, and an older
version reads exactly as it did. ``latest.json`` names the newest version.
"""

from __future__ import annotations

import logging
import secrets
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import sqlalchemy as sa
import xarray as xr
from zarr.codecs import BloscCodec
from zarr.storage import MemoryStore

from exocube import __version__
from exocube.catalog import Dataset, DatasetFile, session_scope
from exocube.cubes import rootview
from exocube.cubes import stats as stats_mod
from exocube.cubes.schema import (
    REGRID_METHOD,
    RUN_PARAMS,
    SCHEMA_VERSION,
    STAT_NAMES,
    VERTICAL_METHOD,
    Layout,
    field_attrs,
)
from exocube.cubes.store import LATEST_DOC, MANIFEST_DOC, StoreLocation, VersionStore
from exocube.errors import StoreError
from exocube.grid import FIELDS_2D, FIELDS_3D
from exocube.params import OPTIONAL_DEFAULTS, SPECS

log = logging.getLogger(__name__)
RUN_ARRAYS = frozenset(FIELDS_3D + FIELDS_2D)


def new_version_id() -> str:
    """A sortable, unique version id: UTC time plus random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def latest_id(loc: StoreLocation) -> str | None:
    """The newest version: ``latest.json``, then along the claim chain (which is ahead of it
    only when an ingest stopped between claiming its version and updating the pointer)."""
    doc = loc.read_json(LATEST_DOC)
    vid = None if doc is None else str(doc["version_id"])
    while (claim := loc.read_json(claim_path(vid))) is not None:
        vid = str(claim["version_id"])
    return vid


def claim_path(parent: str | None) -> str:
    return f"claims/{parent or 'root'}.json"


def read_manifest(loc: StoreLocation, version_id: str) -> dict[str, Any]:
    doc = loc.read_json(f"versions/{version_id}/{MANIFEST_DOC}")
    if doc is None:
        raise StoreError(
            f"store {loc.url} has no version {version_id!r}; list versions with "
            "`exocube validate --help` or open the latest with version=None"
        )
    return doc


def head_manifest(loc: StoreLocation) -> dict[str, Any] | None:
    vid = latest_id(loc)
    return None if vid is None else read_manifest(loc, vid)


def commit(loc: StoreLocation, layout: Layout, parent: dict[str, Any] | None,
           new_runs: list[dict[str, Any]], database_url: str) -> dict[str, Any]:
    """Write a new version holding ``parent``'s runs plus ``new_runs``; return its manifest."""
    current = latest_id(loc)
    parent_id = None if parent is None else parent["version_id"]
    if current != parent_id:
        raise StoreError(
            f"store {loc.url} moved from version {parent_id} to {current} while this ingest "
            "ran (another ingest committed first); re-run the ingest to add the remaining files"
        )
    new_runs = sorted(new_runs, key=lambda r: r["run_id"])
    stats = stats_mod.combine_all(([parent["stats"]] if parent else [])
                                  + [run["stats"] for run in new_runs])
    manifest = {
        "version_id": new_version_id(),
        "parent": parent_id,
        "created": datetime.now(UTC).isoformat(),
        "schema_version": SCHEMA_VERSION,
        "code_version": __version__,
        "runs": (parent["runs"] if parent else []) + [_run_entry(r) for r in new_runs],
        "added": [r["run_id"] for r in new_runs],
        "stats": stats,
    }
    _write_zarr(loc, layout, manifest)
    loc.sync()  # the new runs' groups and the version's arrays, before the manifest names them
    loc.write_json(f"versions/{manifest['version_id']}/{MANIFEST_DOC}", manifest)
    if not loc.create_exclusive(claim_path(parent_id), {"version_id": manifest["version_id"]}):
        raise StoreError(
            f"another ingest committed a version on top of {parent_id} of {loc.url} at the "
            "same moment; re-run this ingest to add the remaining files"
        )
    record_version(database_url, loc.url, manifest, new_runs, layout)
    loc.write_json(LATEST_DOC, {"version_id": manifest["version_id"]})
    refresh_root_view(loc, layout)
    log.info("store %s: version %s with %d runs (%d added)", loc.url, manifest["version_id"],
             len(manifest["runs"]), len(new_runs))
    return manifest


def refresh_root_view(loc: StoreLocation, layout: Layout) -> None:
    """Make a local store's root show the latest version to plain Zarr readers
    (:mod:`exocube.cubes.rootview`); nothing to do when it does already, or on S3."""
    if not loc.is_local:
        return
    vid = latest_id(loc)
    shown = rootview.published_version(Path(loc.url))
    if vid is None or shown == vid:
        return
    previous = loc.read_json(f"versions/{shown}/{MANIFEST_DOC}") if shown else None
    rootview.publish_latest(loc, layout, read_manifest(loc, vid), previous)


def _run_entry(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "key", "sha256", "file", "format", "params")
    return {k: run[k] for k in keys}


def _write_zarr(loc: StoreLocation, layout: Layout, manifest: dict[str, Any]) -> None:
    """The version's Zarr metadata and small arrays: made in memory, then written as files
    (the version id is new, so nothing is overwritten; the manifest comes after)."""
    ds, encoding = template(layout, manifest)
    memory = MemoryStore()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        ds.to_zarr(memory, mode="w-", compute=False, consolidated=True, zarr_format=3,
                   encoding=encoding)
    loc.put_many(f"versions/{manifest['version_id']}",
                 {key: buf.to_bytes() for key, buf in memory._store_dict.items()})


def compressor(layout: Layout) -> BloscCodec:
    c = layout.compressor
    return BloscCodec(cname=c["cname"], clevel=c["clevel"], shuffle=c["shuffle"],
                      blocksize=c.get("blocksize", 0))


def template(layout: Layout, manifest: dict[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """The version as a Dataset: run fields as never-computed placeholders, the rest in memory."""
    runs = manifest["runs"]
    n = len(runs)
    nt, nz, ny, nx = layout.shape3d
    variables: dict[str, xr.Variable] = {}
    encoding: dict[str, Any] = {}
    for name in FIELDS_3D + FIELDS_2D:
        shape = (n, nt, nz, ny, nx) if name in FIELDS_3D else (n, nt, ny, nx)
        dims = ("run", "time", "plev", "lat", "lon") if name in FIELDS_3D else (
            "run", "time", "lat", "lon")
        chunks = (1, *shape[1:])
        # one dask chunk per array: never computed, and a small graph for to_zarr
        variables[name] = xr.Variable(dims, da.zeros(shape, chunks=shape, dtype=np.float32),
                                      attrs=field_attrs(name))
        encoding[name] = {"chunks": chunks, "compressors": (compressor(layout),),
                          "_FillValue": np.float32(np.nan),
                          "chunk_key_encoding": layout.chunk_key_encoding}
    for pname in RUN_PARAMS:  # runs committed before an optional parameter: its default
        values = np.array([float({**OPTIONAL_DEFAULTS, **r["params"]}[pname]) for r in runs],
                          dtype=np.float64)
        variables[pname] = xr.Variable(("run",), values, attrs=_param_attrs(pname))
    variables.update(_stats_variables(manifest["stats"]))
    ds = xr.Dataset(variables, coords=_coords(layout, [r["run_id"] for r in runs]))
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": "exocube climate cube store",
        "schema_version": SCHEMA_VERSION,
        "version_id": manifest["version_id"],
        "parent_version": manifest["parent"] or "",
        "code_version": manifest["code_version"],
        "created": manifest["created"],
        "horizontal_regrid_method": REGRID_METHOD,
        "vertical_remap_method": VERTICAL_METHOD,
        "time_reduction": layout.time_reduction,
        "statistics": "per variable and level over finite points of all runs: "
                      "<var>_mean, <var>_std (population), <var>_min, <var>_max",
    }
    return ds, encoding


def _coords(layout: Layout, run_ids: list[str]) -> dict[str, xr.Variable]:
    time_attrs = ({"long_name": "index of the time step kept from each run", "units": "1"}
                  if layout.time_mean_last is None else
                  {"long_name": f"mean over the last {layout.time_mean_last} time steps",
                   "units": "1"})
    return {
        "run": xr.Variable(("run",), np.array(run_ids, dtype=object),
                           {"long_name": "run id"}),
        "time": xr.Variable(("time",), np.arange(layout.ntime, dtype=np.int64), time_attrs),
        "plev": xr.Variable(("plev",), np.array(layout.plev),
                            {"standard_name": "air_pressure", "units": "Pa", "positive": "down",
                             "axis": "Z"}),
        "lat": xr.Variable(("lat",), np.array(layout.lat),
                           {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "lon": xr.Variable(("lon",), np.array(layout.lon),
                           {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    }


def _param_attrs(name: str) -> dict[str, str]:
    if name in SPECS:
        return {"units": SPECS[name].units, "long_name": SPECS[name].long_name}
    return {"gravity_m_s2": {"units": "m s-2", "long_name": "surface gravity"},
            "tidally_locked": {"units": "1", "long_name": "1 if tidally locked, else 0"},
            "r_gas_j_kg_k": {"units": "J kg-1 K-1", "long_name": "specific gas constant of air"},
            }[name]


def _stats_variables(stats: dict[str, Any]) -> dict[str, xr.Variable]:
    out = {}
    for name in FIELDS_3D + FIELDS_2D:
        values = stats_mod.final(stats[name])
        for stat in STAT_NAMES:
            data = values[stat] if name in FIELDS_3D else values[stat][0]
            dims = ("plev",) if name in FIELDS_3D else ()
            out[f"{name}_{stat}"] = xr.Variable(
                dims, np.asarray(data, np.float64),
                {"units": field_attrs(name)["units"],
                 "long_name": f"{stat} of {name} over valid points"})
    return out


def ensure_recorded(loc: StoreLocation, layout: Layout, version_id: str | None,
                    database_url: str) -> None:
    """Record ``version_id`` and its ancestors in the catalogue if a crash left them out
    (between claiming a version and writing its catalogue rows)."""
    while version_id is not None:
        with session_scope(database_url) as session:
            if dataset_row(session, loc.url, version_id) is not None:
                return
        manifest = read_manifest(loc, version_id)
        added = set(manifest["added"])
        log.warning("recording version %s of %s in the catalogue (missing after a crash)",
                    version_id, loc.url)
        record_version(database_url, loc.url, manifest,
                       [r for r in manifest["runs"] if r["run_id"] in added], layout)
        version_id = manifest["parent"]


def record_version(database_url: str, store_uri: str, manifest: dict[str, Any],
                   new_runs: list[dict[str, Any]], layout: Layout) -> None:
    """Catalogue rows: the version, its parent, and the files it added with their sha256."""
    with session_scope(database_url) as session:
        row = Dataset(
            store_uri=store_uri, version_id=manifest["version_id"],
            parent_version=manifest["parent"], schema_version=SCHEMA_VERSION,
            code_version=manifest["code_version"], n_runs=len(manifest["runs"]),
            attrs={"added_runs": manifest["added"], "time_reduction": layout.time_reduction},
        )
        session.add(row)
        session.flush()
        for run in new_runs:
            session.add(DatasetFile(dataset_id=row.id, path=run["file"], sha256=run["sha256"],
                                    run_id=run["run_id"]))


def open_store(url: str, version: str | None = None,
               storage_options: dict[str, Any] | None = None) -> xr.Dataset:
    """Open a cube store version (the latest when ``version`` is ``None``), lazily.

    ``url`` is a local path or ``s3://bucket/prefix``; S3 options come from the settings.
    """
    return open_version(StoreLocation.parse(url, storage_options), version)


def list_versions(url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Version ids of the store, oldest first (from the newest manifest's parent chain)."""
    loc = StoreLocation.parse(url, storage_options)
    chain, vid = [], latest_id(loc)
    while vid:
        chain.append(vid)
        vid = read_manifest(loc, vid)["parent"]
    return chain[::-1]


def open_version(loc: StoreLocation, version: str | None = None) -> xr.Dataset:
    """Open ``version`` (latest when ``None``) of the store as a lazy Dataset."""
    vid = version or latest_id(loc)
    if vid is None:
        raise StoreError(f"{loc.url} holds no cube store version yet; create one with "
                         "`exocube ingest FILES --store URL`")
    manifest = read_manifest(loc, vid)
    store = VersionStore(loc.zarr_store(read_only=True), vid,
                         tuple(r["key"] for r in manifest["runs"]), RUN_ARRAYS)
    return xr.open_zarr(store, consolidated=True, zarr_format=3)


def dataset_row(session: sa.orm.Session, store_uri: str, version_id: str) -> Dataset | None:
    return session.scalars(sa.select(Dataset).where(
        Dataset.store_uri == store_uri, Dataset.version_id == version_id)).one_or_none()


