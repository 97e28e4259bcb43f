"""CF-convention lookups: variables by ``standard_name``, coordinates by role,
and what kind of vertical coordinate a dimension carries."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from exocube.cubes.sources.aliases import AliasTable
from exocube.cubes.sources.netcdf import NcData
from exocube.cubes.sources.units import CONVERSIONS

STANDARD_NAMES: dict[str, tuple[str, ...]] = {
    "ta": ("air_temperature",),
    "ua": ("eastward_wind",),
    "va": ("northward_wind",),
    "hus": ("specific_humidity",),
    "zg": ("geopotential_height",),
    "ps": ("surface_air_pressure",),
    "ts": ("surface_temperature",),
}
LAT_UNITS = {"degrees_north", "degree_north", "degrees_N", "degree_N", "degreesN"}
LON_UNITS = {"degrees_east", "degree_east", "degrees_E", "degree_E", "degreesE"}
PRESSURE_UNITS = {k for k, v in CONVERSIONS.items() if v[0] == "Pa"}
SIGMA_NAME = "atmosphere_sigma_coordinate"
HYBRID_NAMES = ("atmosphere_hybrid_sigma_pressure_coordinate",)


def find_by_standard_name(ds: NcData, name: str) -> str | None:
    """The data variable whose ``standard_name`` matches canonical ``name``, if any."""
    wanted = STANDARD_NAMES[name]
    for var_name, var in ds.data_vars.items():
        if var.attrs.get("standard_name") in wanted:
            return str(var_name)
    return None


def find_by_alias(ds: NcData, name: str, tables: list[AliasTable]
                  ) -> tuple[str, AliasTable] | None:
    """The first variable named by an alias table for canonical ``name``, with that table."""
    for table in tables:
        for alias in table.variables.get(name, ()):
            if alias in ds.data_vars:
                return alias, table
    return None


def find_coordinate(ds: NcData, role: str, tables: list[AliasTable]) -> str | None:
    """A 1-D variable acting as the ``lat``, ``lon`` or ``time`` coordinate."""
    units_set = {"lat": LAT_UNITS, "lon": LON_UNITS}.get(role, set())
    standard = {"lat": "latitude", "lon": "longitude", "time": "time"}[role]
    for name, var in ds.variables.items():
        if var.ndim != 1:
            continue
        if var.attrs.get("standard_name") == standard or var.attrs.get("units") in units_set:
            return str(name)
        if role == "time" and re.search(r"\bsince\b", str(var.attrs.get("units", ""))):
            return str(name)
    fallback = {"lat": ("lat", "latitude"), "lon": ("lon", "longitude"), "time": ("time",)}[role]
    for table in tables:
        fallback = fallback + table.coordinate_names(role)
    for name in fallback:
        if name in ds.variables and ds[name].ndim == 1 and name in ds[name].dims:
            return name
    return None


def is_pressure_coordinate(var: xr.Variable) -> bool:
    return (var.attrs.get("standard_name") == "air_pressure"
            or str(var.attrs.get("units", "")).strip() in PRESSURE_UNITS - {""})


def is_sigma_coordinate(name: str, var: xr.Variable, tables: list[AliasTable]) -> bool:
    if var.attrs.get("standard_name") == SIGMA_NAME:
        return True
    named = any(name in t.coordinate_names("sigma") for t in tables)
    values = np.asarray(var.values, dtype=float)
    return named and bool(np.all((values >= 0) & (values <= 1)))


def is_hybrid_coordinate(var: xr.Variable) -> bool:
    return var.attrs.get("standard_name") in HYBRID_NAMES


def formula_terms(var: xr.Variable) -> dict[str, str]:
    """Parse a CF ``formula_terms`` attribute such as ``"ap: hyam b: hybm ps: ps"``."""
    text = str(var.attrs.get("formula_terms", ""))
    return dict(re.findall(r"(\w+):\s*(\w+)", text))
