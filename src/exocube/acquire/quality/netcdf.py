"""NetCDF: the file opens and follows the CF conventions closely enough to be
ingested (Conventions attribute, units on coordinates and data variables,
parseable time units, latitude/longitude in range)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from exocube.acquire.quality import QualityReport

if TYPE_CHECKING:
    import netCDF4

LAT_UNITS = {"degrees_north", "degree_north", "degree_N", "degrees_N", "degreeN", "degreesN"}
LON_UNITS = {"degrees_east", "degree_east", "degree_E", "degrees_E", "degreeE", "degreesE"}


def validate_netcdf(path: Path, expected_variables: Sequence[str] = ()) -> QualityReport:
    """Quality of one NetCDF file."""
    import netCDF4  # heavy: imported when a NetCDF file is checked

    report = QualityReport()
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as exc:
        report.error("netcdf.open", f"not a readable NetCDF file: {exc}", penalty=1.0)
        return report
    with ds:
        _check_conventions(ds, report)
        for name, var in ds.variables.items():
            _check_variable(name, var, report)
        for name in expected_variables:
            if name not in ds.variables:
                report.error("netcdf.variable", f"expected variable {name!r} is missing; "
                             f"present: {sorted(ds.variables)}", penalty=0.5)
    return report


def _check_conventions(ds: netCDF4.Dataset, report: QualityReport) -> None:
    conventions = getattr(ds, "Conventions", "")
    if "CF" not in str(conventions):
        report.flag("cf.conventions",
                    f"global attribute Conventions={conventions!r} does not name CF",
                    penalty=0.05)


def _check_variable(name: str, var: netCDF4.Variable, report: QualityReport) -> None:
    units = getattr(var, "units", None)
    is_coord = var.dimensions == (name,)
    if units is None and var.dtype.kind in "fiu":
        report.flag("cf.units", f"variable {name!r} has no units attribute", penalty=0.02)
        return
    units = str(units or "")
    if (is_coord and name.lower() in ("lat", "latitude")) or units in LAT_UNITS:
        _check_range(name, var, -90.0, 90.0, report)
    elif (is_coord and name.lower() in ("lon", "longitude")) or units in LON_UNITS:
        _check_range(name, var, -360.0, 360.0, report)
    elif " since " in units:
        import netCDF4

        try:
            netCDF4.num2date(0, units, getattr(var, "calendar", "standard"))
        except ValueError as exc:
            report.error("cf.time", f"variable {name!r} has unparseable time units "
                         f"{units!r}: {exc}", penalty=0.3)


def _check_range(
    name: str, var: netCDF4.Variable, lo: float, hi: float, report: QualityReport
) -> None:
    values = np.ma.filled(np.ma.masked_invalid(var[:].astype(float)), np.nan)
    if values.size and (np.nanmin(values) < lo or np.nanmax(values) > hi):
        report.error("cf.range", f"coordinate {name!r} spans {np.nanmin(values)}.."
                     f"{np.nanmax(values)}, outside [{lo}, {hi}]", penalty=0.3)
