"""Read one GCM NetCDF file into SI numpy fields on the file's own grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from exocube.cubes.sources import cf
from exocube.cubes.sources.aliases import AliasTable, alias_tables
from exocube.cubes.sources.netcdf import NcData, read_netcdf
from exocube.cubes.sources.units import to_si
from exocube.errors import InputDataError
from exocube.grid import CF_META, FIELDS_2D, FIELDS_3D

SOURCES = ("auto", "cf", "exoplasim", "rocke3d")


@dataclass
class VerticalLevels:
    """Where a field's levels sit: ``p = a + b * ps`` [Pa], or an explicit 3-D pressure."""

    kind: str  # "pressure", "sigma", "hybrid" or "pressure_3d"
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    p3d: NDArray[np.float64] | None = None

    def pressure(self, ps: NDArray[np.float64]) -> NDArray[np.float64]:
        """Pressure [Pa] of every level, shape (time, lev, lat, lon) or broadcastable."""
        if self.p3d is not None:
            return self.p3d
        return self.a[None, :, None, None] + self.b[None, :, None, None] * ps[:, None]


@dataclass
class SourceRun:
    """One file's fields in SI units, dims (time, lev, lat, lon) / (time, lat, lon)."""

    path: str
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    time: NDArray[np.float64]
    time_units: str
    fields: dict[str, NDArray[np.float64]]
    levels: dict[str, VerticalLevels]  # per 3-D field
    attrs: dict[str, Any] = field(default_factory=dict)
    format: str = "cf"


def read_source(path: str | Path, source: str = "auto",
                content: bytes | None = None) -> SourceRun:
    """Open ``path`` (or its bytes ``content``, already read) and map its variables to the
    canonical names, in SI units."""
    if source not in SOURCES:
        raise InputDataError(f"unknown source format {source!r}; use one of {SOURCES}")
    return _map(read_netcdf(path, content), str(path), _tables_for(source))


def _tables_for(source: str) -> list[AliasTable]:
    tables = alias_tables()
    if source == "auto":
        return list(tables.values())
    return [] if source == "cf" else [tables[source]]


def _map(ds: NcData, path: str, tables: list[AliasTable]) -> SourceRun:
    coords = {role: cf.find_coordinate(ds, role, tables) for role in ("lat", "lon", "time")}
    for role, what in (("lat", "latitude (standard_name latitude or units degrees_north)"),
                       ("lon", "longitude (standard_name longitude or units degrees_east)")):
        if coords[role] is None:
            raise InputDataError(
                f"{path}: no {what} coordinate variable, so the grid cannot be placed; "
                "add 1-D lat/lon coordinate variables to the file"
            )
    names, fmt = _variable_names(ds, path, tables)
    dims = {role: ds[c].dims[0] for role, c in coords.items() if c is not None}
    fields: dict[str, NDArray[np.float64]] = {}
    level_dims: dict[str, str] = {}
    for canon, (var_name, table) in names.items():
        fields[canon], vdim = _field(ds, path, canon, var_name, table, dims)
        if vdim is not None:
            level_dims[canon] = vdim
    _check_surface_pressure(fields["ps"], path, names["ps"][0])
    levels = _levels(ds, path, level_dims, dims, tables)
    time = (np.asarray(ds[coords["time"]].values, dtype=np.float64) if coords["time"]
            else np.zeros(1))
    time_units = str(ds[coords["time"]].attrs.get("units", "")) if coords["time"] else ""
    return SourceRun(
        path=path, lat=np.asarray(ds[coords["lat"]].values, np.float64),
        lon=np.asarray(ds[coords["lon"]].values, np.float64), time=time, time_units=time_units,
        fields=fields, levels=levels, attrs=dict(ds.attrs), format=fmt,
    )


def _variable_names(ds: NcData, path: str, tables: list[AliasTable]
                    ) -> tuple[dict[str, tuple[str, AliasTable | None]], str]:
    names: dict[str, tuple[str, AliasTable | None]] = {}
    formats = set()
    for canon in FIELDS_3D + FIELDS_2D:
        by_cf = cf.find_by_standard_name(ds, canon)
        if by_cf is not None:
            names[canon] = (by_cf, _table_naming(by_cf, canon, tables))
            continue
        found = cf.find_by_alias(ds, canon, tables)
        if found is None:
            aliases = sorted({a for t in tables for a in t.variables.get(canon, ())})
            raise InputDataError(
                f"{path}: no variable for {canon!r} ({CF_META[canon][0]}): none has "
                f"standard_name {CF_META[canon][0]!r} and none is named {aliases}; "
                f"variables present: {sorted(map(str, ds.data_vars))}"
            )
        names[canon] = found
        formats.add(found[1].name)
    return names, ("+".join(sorted(formats)) if formats else "cf")


def _table_naming(var_name: str, canon: str, tables: list[AliasTable]) -> AliasTable | None:
    for table in tables:
        if var_name in table.variables.get(canon, ()):
            return table
    return None


def _field(ds: NcData, path: str, canon: str, var_name: str, table: AliasTable | None,
           dims: dict[str, str]) -> tuple[NDArray[np.float64], str | None]:
    var = ds[var_name]
    units = var.attrs.get("units")
    if units is None and table is not None:
        units = table.units.get(canon)
    if units is None:
        raise InputDataError(
            f"{path}: variable {var_name!r} ({canon}) has no units attribute; add one "
            f"(expected {CF_META[canon][1]!r} or a convertible unit)"
        )
    values = to_si(var.values, str(units), CF_META[canon][1], f"{path}: variable {var_name!r}")
    want_3d = canon in FIELDS_3D
    extra = [d for d in var.dims if d not in dims.values()]
    if len(extra) != (1 if want_3d else 0) or dims["lat"] not in var.dims \
            or dims["lon"] not in var.dims:
        raise InputDataError(
            f"{path}: variable {var_name!r} has dims {var.dims}; {canon} needs "
            f"(time, {'level, ' if want_3d else ''}lat, lon) with lat dim {dims['lat']!r} "
            f"and lon dim {dims['lon']!r}"
        )
    order = [d for d in (dims.get("time"), *extra, dims["lat"], dims["lon"]) if d in var.dims]
    data = np.transpose(values, [var.dims.index(d) for d in order])
    if "time" not in dims or dims["time"] not in var.dims:
        data = data[None]
    return data, (extra[0] if want_3d else None)


def _check_surface_pressure(ps: NDArray[np.float64], path: str, var_name: str) -> None:
    bad = ~np.isfinite(ps) | (ps <= 0)
    if bad.any():
        raise InputDataError(
            f"{path}: surface pressure {var_name!r} has {int(bad.sum())} of {ps.size} values "
            "that are NaN, infinite or not positive; every column needs a valid surface "
            "pressure for vertical remapping and the below-ground mask"
        )


def _levels(ds: NcData, path: str, level_dims: dict[str, str], dims: dict[str, str],
            tables: list[AliasTable]) -> dict[str, VerticalLevels]:
    main = {level_dims[n] for n in ("ta", "ua", "va", "hus")}
    if len(main) != 1:
        raise InputDataError(
            f"{path}: ta, ua, va and hus lie on different vertical dims {sorted(main)}; "
            "they must share one set of levels"
        )
    cache: dict[str, VerticalLevels] = {}
    for vdim in level_dims.values():
        if vdim not in cache:
            cache[vdim] = _level_kind(ds, path, vdim, dims, tables)
    return {name: cache[vdim] for name, vdim in level_dims.items()}


def _level_kind(ds: NcData, path: str, vdim: str, dims: dict[str, str],
                tables: list[AliasTable]) -> VerticalLevels:
    coord = ds.variables.get(vdim)
    if coord is not None and cf.is_hybrid_coordinate(coord):
        return _hybrid(ds, path, vdim, coord)
    if coord is not None and cf.is_pressure_coordinate(coord):
        p = to_si(coord.values, str(coord.attrs.get("units", "Pa")), "Pa",
                  f"{path}: vertical coordinate {vdim!r}")
        return VerticalLevels("pressure", p, np.zeros_like(p))
    if coord is not None and cf.is_sigma_coordinate(vdim, coord, tables):
        sigma = np.asarray(coord.values, np.float64)
        return VerticalLevels("sigma", np.zeros_like(sigma), sigma)
    p3d = _pressure_3d(ds, path, vdim, dims, tables)
    if p3d is not None:
        return VerticalLevels("pressure_3d", np.empty(0), np.empty(0), p3d)
    raise InputDataError(
        f"{path}: cannot tell what the vertical dimension {vdim!r} is: it is not a pressure "
        "coordinate (units Pa/hPa or standard_name air_pressure), not sigma (standard_name "
        f"{cf.SIGMA_NAME}), not hybrid, and no 3-D pressure variable (e.g. p_3d) spans it"
    )


def _hybrid(ds: NcData, path: str, vdim: str, coord: xr.Variable) -> VerticalLevels:
    terms = cf.formula_terms(coord)
    try:
        b = np.asarray(ds[terms["b"]].values, np.float64)
        if "ap" in terms:
            ap = ds[terms["ap"]]
            a = to_si(ap.values, str(ap.attrs.get("units", "Pa")), "Pa", f"{path}: {terms['ap']}")
        else:
            p0 = ds[terms["p0"]]
            a = np.asarray(ds[terms["a"]].values, np.float64) * to_si(
                p0.values, str(p0.attrs.get("units", "Pa")), "Pa", f"{path}: {terms['p0']}")
    except KeyError as exc:
        raise InputDataError(
            f"{path}: hybrid coordinate {vdim!r} has formula_terms "
            f"{coord.attrs.get('formula_terms')!r} naming a missing variable {exc}; CF needs "
            "'ap: A b: B ps: PS' or 'a: A b: B p0: P0 ps: PS'"
        ) from None
    return VerticalLevels("hybrid", a, b)


def _pressure_3d(ds: NcData, path: str, vdim: str, dims: dict[str, str],
                 tables: list[AliasTable]) -> NDArray[np.float64] | None:
    candidates = [n for t in tables for n in t.coordinate_names("pressure_3d")]
    candidates += [str(n) for n, v in ds.data_vars.items()
                   if v.attrs.get("standard_name") == "air_pressure" and v.ndim >= 3]
    for name in candidates:
        if name in ds.variables and vdim in ds[name].dims:
            var = ds[name]
            units = str(var.attrs.get("units", "hPa"))
            values = to_si(var.values, units, "Pa", f"{path}: variable {name!r}")
            order = [d for d in (dims.get("time"), vdim, dims["lat"], dims["lon"])
                     if d in var.dims]
            data = np.transpose(values, [var.dims.index(d) for d in order])
            return data if dims.get("time") in var.dims else data[None]
    return None
