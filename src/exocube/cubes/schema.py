"""The canonical cube schema: names, dims, dtypes, and the checks run before writing.

A store's *layout* (grid, time handling) is fixed when the store is created and
recorded in ``store.json``; every later ingest must use the same layout. A
processed run (:class:`RunCube`) is checked against the layout before any byte
of it is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from exocube.errors import InputDataError, StoreError
from exocube.grid import CF_META, FIELDS_2D, FIELDS_3D, Grid
from exocube.params import ALL_NAMES

SCHEMA_VERSION = "1.0"
DERIVED_PARAMS: tuple[str, ...] = ("gravity_m_s2", "tidally_locked", "r_gas_j_kg_k")
RUN_PARAMS: tuple[str, ...] = ALL_NAMES + DERIVED_PARAMS
# run parameters added after schema 1.0: a store version without one (made before it
# existed) holds runs with the parameter's default, exocube.params.OPTIONAL_DEFAULTS
LATER_PARAMS: tuple[str, ...] = ("pch4_bar",)
STAT_NAMES: tuple[str, ...] = ("mean", "std", "min", "max")
# a source file's equilibrium flag and diagnostics (the ExoPlaSim driver's global
# attributes, exocube.gcm.equilibrium), kept in the run's summary for ``validate``
EQUILIBRIUM_ATTRS: tuple[str, ...] = (
    "equilibrated", "toa_net_flux_w_m2", "ts_drift_k_per_year", "ts_global_mean_k",
    "years_evaluated", "max_toa_imbalance_w_m2", "max_ts_drift_k_per_year")
# blosc block of new stores: a whole chunk of the default grid (zstd's per-block set-up
# dominates at blosc's default block size for clevel 1); stores without it use blosc's 0
BLOSC_BLOCKSIZE = 1 << 20
REGRID_METHOD = (
    "bilinear in latitude and longitude (periodic longitude; polewards of the outermost "
    "source latitude the outermost row is used); identity when the source grid equals the "
    "store grid"
)
VERTICAL_METHOD = (
    "linear in log-pressure from the source levels (sigma or hybrid levels converted with "
    "each run's own surface pressure; hus: its logarithm linear in log-pressure between "
    "positive values); between the lowest source level and the surface ta "
    "is interpolated towards ts and other fields keep the lowest valid level's value; NaN "
    "below the surface (plev > ps) and above the source's top level; zg given on "
    "non-pressure levels is recomputed hydrostatically with the run's gravity and gas "
    "constant from its lowest given level"
)


@dataclass(frozen=True)
class Layout:
    """What every run in one store shares: the grid and how time was handled."""

    plev: tuple[float, ...]
    lat: tuple[float, ...]
    lon: tuple[float, ...]
    ntime: int
    time_mean_last: int | None = None
    compressor: dict[str, Any] = field(
        default_factory=lambda: {"cname": "zstd", "clevel": 1, "shuffle": "shuffle",
                                 "blocksize": BLOSC_BLOCKSIZE}
    )
    chunk_separator: str = "."  # of run-field chunk keys; "/" in stores made before it

    @property
    def chunk_key_encoding(self) -> dict[str, str]:
        """Zarr v3 chunk key encoding of the run fields (``ta/c.0.0.0.0.0`` for ".")."""
        return {"name": "default", "separator": self.chunk_separator}

    @classmethod
    def from_grid(cls, grid: Grid, ntime: int, time_mean_last: int | None) -> Layout:
        return cls(tuple(grid.plev), tuple(float(x) for x in grid.lat),
                   tuple(float(x) for x in grid.lon), ntime, time_mean_last)

    @property
    def shape3d(self) -> tuple[int, int, int, int]:
        """(time, plev, lat, lon) of one run's 3-D field."""
        return (self.ntime, len(self.plev), len(self.lat), len(self.lon))

    @property
    def time_reduction(self) -> str:
        if self.time_mean_last is None:
            return f"none: all {self.ntime} time steps of each run kept"
        return f"mean over the last {self.time_mean_last} time steps of each run"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @cached_property
    def json_text(self) -> str:
        """``to_json`` as canonical JSON text (computed once per Layout object)."""
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Layout:
        return cls(plev=tuple(doc["plev"]), lat=tuple(doc["lat"]), lon=tuple(doc["lon"]),
                   ntime=int(doc["ntime"]), time_mean_last=doc["time_mean_last"],
                   compressor=dict(doc["compressor"]),
                   chunk_separator=doc.get("chunk_separator", "/"))

    def digest(self) -> str:
        """A short hash of the layout, part of every run's storage key."""
        return hashlib.sha256(self.json_text.encode()).hexdigest()[:12]

    def check_same(self, other: Layout) -> None:
        """Raise StoreError naming the first difference between two layouts."""
        mine, theirs = self.to_json(), other.to_json()
        for key in mine:
            if not _equal(mine[key], theirs[key]):
                raise StoreError(
                    f"the store was created with {key}={_short(mine[key])} but this ingest "
                    f"asks for {key}={_short(theirs[key])}; ingest with the store's settings "
                    "or into a new store"
                )


def _equal(a: object, b: object) -> bool:
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and bool(np.allclose(np.asarray(a, float), np.asarray(b, float)))
    return a == b


def _short(value: object) -> str:
    if isinstance(value, tuple | list) and len(value) > 4:
        return f"[{value[0]}, ..., {value[-1]}] ({len(value)} values)"
    return repr(value)


@dataclass
class RunCube:
    """One run on the store's grid, ready to write: fields, parameters, provenance."""

    run_id: str
    source: str
    fields: dict[str, NDArray[np.float32]]
    params: dict[str, float]
    attrs: dict[str, Any] = field(default_factory=dict)


def check_run(run: RunCube, layout: Layout) -> None:
    """Validate a processed run against the layout before it is written."""
    for name in FIELDS_3D + FIELDS_2D:
        if name not in run.fields:
            raise InputDataError(f"{run.source}: processed run lacks {name!r}")
        arr = run.fields[name]
        expected = layout.shape3d if name in FIELDS_3D else (
            layout.shape3d[0], *layout.shape3d[2:])
        if arr.shape != expected or arr.dtype != np.float32:
            raise InputDataError(
                f"{run.source}: {name} has shape {arr.shape} dtype {arr.dtype}, the store "
                f"needs {expected} float32 (time, plev, lat, lon)"
            )
    ps = run.fields["ps"]
    if not np.all(np.isfinite(ps)) or np.any(ps <= 0):
        raise InputDataError(
            f"{run.source}: surface pressure ps has {int(np.sum(~np.isfinite(ps)))} non-finite "
            "and some non-positive values after processing; every column needs a finite ps > 0"
        )
    missing = [p for p in RUN_PARAMS if p not in run.params]
    if missing:
        raise InputDataError(f"{run.source}: run {run.run_id!r} lacks parameters {missing}")


def field_attrs(name: str) -> dict[str, str]:
    standard_name, units = CF_META[name]
    return {"standard_name": standard_name, "units": units}
