"""The CF-1.8 NetCDF file of one generated run (the contract ingest reads).

One file ``<out>/<run_id>.nc`` (NetCDF-4, uncompressed) per run:

- dims ``(time, plev, lat, lon)``; ``plev`` [Pa] descending (surface first,
  ``standard_name=air_pressure``, ``positive=down``), ``lat`` [degrees_north]
  ascending, ``lon`` [degrees_east] in [0, 360), ``time`` in ``days since
  2000-01-01 00:00:00`` (bin centres within one phase period);
- ``ta, ua, va, hus, zg`` (time, plev, lat, lon) and ``ps, ts`` (time, lat, lon),
  float32, ``standard_name``/``units`` from :data:`exocube.grid.CF_META`, NaN
  below the ground (``_FillValue`` NaN);
- global attributes ``Conventions="CF-1.8"``, ``source``, ``run_id``, every
  parameter of :data:`exocube.params.ALL_NAMES` (float), and the derived
  ``gravity_m_s2``, ``semi_major_axis_au``, ``equilibrium_temperature_k``,
  ``tidally_locked`` (0/1), ``r_gas_j_kg_k`` (and a few more, see
  ``docs/generator.md``).

The file is written under a temporary name in the same directory and renamed,
so a file with the final name is complete. Nothing time-dependent is written:
the same run gives a byte-identical file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import netCDF4
import numpy as np

from exocube import __version__
from exocube.gcm.generator import Climate
from exocube.grid import CF_META, FIELDS_2D, FIELDS_3D
from exocube.params import ALL_NAMES

GENERATOR_NAME = "exocube-generator"
GENERATOR_VERSION = "1.0"
TIME_UNITS = "days since 2000-01-01 00:00:00"
CALENDAR = "proleptic_gregorian"
LONG_NAMES = {
    "ta": "air temperature", "ua": "eastward wind", "va": "northward wind",
    "hus": "specific humidity", "zg": "geopotential height", "ps": "surface air pressure",
    "ts": "surface temperature",
}


def source() -> str:
    """The ``source`` attribute: generator name and versions."""
    return f"{GENERATOR_NAME} {GENERATOR_VERSION} (exocube {__version__})"


def global_attrs(climate: Climate, run_id: str) -> dict[str, object]:
    """Global attributes of a run file, in the order they are written."""
    planet = climate.planet
    attrs: dict[str, object] = {
        "Conventions": "CF-1.8",
        "title": f"exocube built-in generator run {run_id}",
        "source": source(),
        "run_id": run_id,
        "references": "docs/generator.md; Guillot 2010 A&A 520 A27; Koll 2022 ApJ 924 134",
    }
    attrs.update({name: float(planet.params[name]) for name in ALL_NAMES})
    attrs.update(planet.derived_attrs())
    attrs.update({k: float(v) for k, v in climate.diagnostics.items()})
    attrs["phase_bins"] = int(climate.time_days.size)
    attrs["phase_period_days"] = float(climate.phase_period_days)
    return attrs


def write_run(climate: Climate, path: Path, run_id: str) -> None:
    """Write ``climate`` to ``path`` atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write(climate, tmp, run_id)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write(climate: Climate, path: Path, run_id: str) -> None:
    grid = climate.grid
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.set_fill_off()  # every value is written, so HDF5 need not pre-fill
        for name, value in global_attrs(climate, run_id).items():
            ds.setncattr(name, _attr_value(value))
        _coord(ds, "time", climate.time_days, standard_name="time", units=TIME_UNITS,
               calendar=CALENDAR, axis="T", long_name="time (phase-bin centre)")
        _coord(ds, "plev", grid.plev_array, standard_name="air_pressure", units="Pa",
               positive="down", axis="Z")
        _coord(ds, "lat", grid.lat, standard_name="latitude", units="degrees_north", axis="Y")
        _coord(ds, "lon", grid.lon, standard_name="longitude", units="degrees_east", axis="X")
        method = "time: mean" if climate.time_days.size == 1 else "time: point"
        for name in FIELDS_3D:
            _field(ds, name, ("time", "plev", "lat", "lon"), climate.fields[name], method)
        for name in FIELDS_2D:
            _field(ds, name, ("time", "lat", "lon"), climate.fields[name], method)


def _attr_value(value: object) -> object:
    if isinstance(value, bool | int) and not isinstance(value, float):
        return np.int32(value)
    if isinstance(value, float):
        return np.float64(value)
    return value


def _coord(ds: netCDF4.Dataset, name: str, values: np.ndarray, **attrs: str) -> None:
    ds.createDimension(name, values.size)
    var = ds.createVariable(name, "f8", (name,))
    var.setncatts(attrs)
    var[:] = values


def _field(
    ds: netCDF4.Dataset, name: str, dims: tuple[str, ...], data: np.ndarray, cell_method: str
) -> None:
    standard_name, units = CF_META[name]
    var = ds.createVariable(name, "f4", dims, fill_value=np.float32(np.nan))
    var.setncatts({"standard_name": standard_name, "units": units,
                   "long_name": LONG_NAMES[name], "cell_methods": cell_method})
    var.set_auto_mask(False)
    var[:] = data


def read_attrs(path: Path) -> dict[str, object]:
    """Global attributes of an existing run file."""
    with netCDF4.Dataset(path, "r") as ds:
        return {name: ds.getncattr(name) for name in ds.ncattrs()}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
