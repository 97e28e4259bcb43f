"""Read a whole NetCDF file into memory, decoded exactly as ``xarray.open_dataset`` does.

``xarray.open_dataset(...).load()`` spends most of its time on lazy-loading
machinery (file manager, locks, lazily indexed wrappers, pandas indexes) that a
reader which wants every variable at once does not need. Here netCDF4 reads the
raw values and attributes of the root group (no automatic masking or scaling,
no char-to-string conversion, as xarray's netCDF4 backend sets it), and
xarray's own CF decoder (``xarray.conventions.decode_cf_variables``) applies
``_FillValue``/``missing_value`` -> NaN, ``scale_factor``/``add_offset``,
character-array concatenation and the ``coordinates`` attribute, with
``decode_times=False`` and ``decode_timedelta=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import xarray as xr

from exocube.errors import InputDataError


@dataclass
class NcData:
    """A decoded file: its variables, which of them are coordinates, and global attributes."""

    variables: dict[str, xr.Variable]
    coord_names: frozenset[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    data_vars: Mapping[str, xr.Variable] = field(init=False)

    def __post_init__(self) -> None:
        """``data_vars``: the variables that are not coordinates, as in ``xarray.Dataset``."""
        self.data_vars = {n: v for n, v in self.variables.items() if n not in self.coord_names}

    def __getitem__(self, name: str) -> xr.Variable:
        return self.variables[name]


def read_netcdf(path: str | Path, content: bytes | None = None) -> NcData:
    """Every variable of ``path``'s root group, CF-decoded, in memory.

    ``content``: the file's bytes when the caller has read them already (netCDF-C
    then opens them in memory instead of reading the file again).
    """
    if content is None and not Path(path).is_file():
        raise InputDataError(f"{path}: no such file")
    try:
        with netCDF4.Dataset(str(path), "r", memory=content) as nc:
            raw = {str(name): _raw_variable(var) for name, var in nc.variables.items()}
            attrs = dict(nc.__dict__)
        decoded, attrs, coord_names = xr.conventions.decode_cf_variables(
            raw, attrs, decode_times=False, decode_timedelta=False)
        for var in decoded.values():
            var.load()  # the decoder is lazy: apply it once, here
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputDataError(f"{path}: not a readable NetCDF file ({exc})") from exc
    dims = {d for v in decoded.values() for d in v.dims}
    coords = frozenset(coord_names) & decoded.keys() | (dims & decoded.keys())
    # xarray's order: data variables, then coordinates, each in file order
    ordered = {n: v for n, v in decoded.items() if n not in coords}
    ordered.update((n, v) for n, v in decoded.items() if n in coords)
    return NcData(ordered, coords, dict(attrs))


def _raw_variable(var: netCDF4.Variable) -> xr.Variable:
    var.set_auto_maskandscale(False)
    var.set_auto_chartostring(False)
    data = np.asarray(var[...])
    attrs = dict(var.__dict__)
    if data.dtype.kind == "S" and "_FillValue" in attrs:  # as xarray's netCDF4 backend
        attrs["_FillValue"] = np.bytes_(attrs["_FillValue"])
    return xr.Variable(var.dimensions, data, attrs, {"dtype": var.dtype})
