"""One run: generate it and write its file, or check and reuse the file already there.

This module is what Dask workers import, so it stays light: no catalogue, no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import netCDF4

from exocube.errors import InputDataError
from exocube.gcm.generator import generate
from exocube.gcm.netcdf import read_attrs, sha256_of, source, write_run
from exocube.grid import Grid
from exocube.params import ALL_NAMES, OPTIONAL_DEFAULTS
from exocube.planet import Planet, derive


@dataclass(frozen=True)
class RunSpec:
    """One run to generate: its id and its validated parameter vector."""

    run_id: str
    params: dict[str, float]


@dataclass(frozen=True)
class RunRecord:
    """One run's file and the parameters (with derived quantities) it was made from."""

    run_id: str
    path: Path
    sha256: str
    parameters: dict[str, float]
    generated: bool


def generate_one(spec: RunSpec, out_dir: Path, grid: Grid, phase_bins: int) -> RunRecord:
    """Generate and write one run, or check and reuse its existing file."""
    planet = derive(spec.params)
    path = out_dir / f"{spec.run_id}.nc"
    exists = path.exists()
    if exists:
        check_existing(path, planet, grid, phase_bins)
    else:
        write_run(generate(planet, grid, phase_bins), path, spec.run_id)
    return RunRecord(spec.run_id, path, sha256_of(path), catalogue_parameters(planet),
                     generated=not exists)


def generate_batch(
    specs: Sequence[RunSpec], out_dir: str, grid: Grid, phase_bins: int
) -> list[RunRecord]:
    """A Dask task: several runs, so that scheduling overhead stays small."""
    return [generate_one(s, Path(out_dir), grid, phase_bins) for s in specs]


def catalogue_parameters(planet: Planet) -> dict[str, float]:
    """The parameter vector and the derived quantities, as stored in the catalogue."""
    return {**{n: planet.params[n] for n in ALL_NAMES}, **planet.derived_attrs()}


def check_existing(path: Path, planet: Planet, grid: Grid, phase_bins: int) -> None:
    """Refuse to reuse a file made from other parameters, grid or phase bins."""
    attrs = {**OPTIONAL_DEFAULTS, **read_attrs(path)}  # older files: optional defaults
    wanted: dict[str, object] = {n: planet.params[n] for n in ALL_NAMES}
    wanted.update(phase_bins=phase_bins, source=source())
    found = _grid_of(path)
    for key, value in wanted.items():
        if key not in attrs or attrs[key] != value:
            _mismatch(path, key, attrs.get(key), value)
    if found != (grid.nlat, grid.nlon, tuple(grid.plev)):
        _mismatch(path, "grid", found, (grid.nlat, grid.nlon, tuple(grid.plev)))


def _grid_of(path: Path) -> tuple[int, int, tuple[float, ...]]:
    with netCDF4.Dataset(path, "r") as ds:
        plev = tuple(float(p) for p in ds["plev"][:])
        return len(ds.dimensions["lat"]), len(ds.dimensions["lon"]), plev


def _mismatch(path: Path, key: str, found: object, wanted: object) -> None:
    raise InputDataError(
        f"{path} already exists but has {key}={found!r} where this ensemble has {wanted!r} "
        "(a different --runs, --seed, grid or generator version?). Delete the file or "
        "write to another --out directory."
    )
