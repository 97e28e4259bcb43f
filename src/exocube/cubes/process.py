"""One source run onto the store layout: sort and regrid horizontally, remap
vertically, reduce time, and cast to float32."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from exocube.cubes import horizontal, vertical
from exocube.cubes.schema import EQUILIBRIUM_ATTRS, Layout, RunCube
from exocube.cubes.sources import SourceRun, VerticalLevels
from exocube.errors import InputDataError
from exocube.grid import FIELDS_3D

Array = NDArray[np.float64]


def build_run(src: SourceRun, layout: Layout, run_id: str, params: dict[str, float]) -> RunCube:
    """The run on the store grid, float32, dims (time, plev, lat, lon)."""
    src = _place_horizontally(src, layout)
    fields = _remap_vertically(src, layout, params)
    fields = _reduce_time(fields, src, layout)
    cube = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in fields.items()}
    plev = np.asarray(layout.plev)
    below = np.broadcast_to(plev[None, :, None, None] > cube["ps"][:, None], cube["ta"].shape)
    for name in FIELDS_3D:
        if not cube[name].flags.writeable:
            cube[name] = cube[name].copy()
        np.putmask(cube[name], below, np.float32(np.nan))
    attrs = {"format": src.format, "time_units": src.time_units, "ntime_source": int(src.time.size),
             "vertical": src.levels["ta"].kind, "zg_levels": src.levels["zg"].kind,
             **equilibrium_attrs(src.attrs, src.path)}
    return RunCube(run_id=run_id, source=src.path, fields=cube, params=params, attrs=attrs)


TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes"}, {"0", "false", "no"}


def equilibrium_attrs(attrs: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The file's ``equilibrated`` flag (as bool) and equilibrium diagnostics (float,
    ``None`` when NaN), or nothing when the file has no ``equilibrated`` attribute."""
    if "equilibrated" not in attrs:
        return {}
    out: dict[str, Any] = {"equilibrated": _flag(attrs["equilibrated"], path)}
    for name in EQUILIBRIUM_ATTRS[1:]:
        if name in attrs:
            out[name] = _diagnostic(attrs[name], name, path)
    return out


def _flag(value: Any, path: str) -> bool:
    raw = np.asarray(value)
    if raw.size == 1 and raw.dtype.kind in "biuf" and float(raw.item()) in (0.0, 1.0):
        return bool(raw.item())
    if raw.size == 1 and raw.dtype.kind in "US" and str(raw.item()).strip().lower() in (
            TRUE_WORDS | FALSE_WORDS):
        return str(raw.item()).strip().lower() in TRUE_WORDS
    raise InputDataError(
        f"{path}: global attribute equilibrated = {_shown(raw)} is not 0/1 or true/false; "
        "fix or delete the attribute and ingest again")


def _diagnostic(value: Any, name: str, path: str) -> float | None:
    raw = np.asarray(value)
    if raw.size != 1 or raw.dtype.kind not in "biuf":
        raise InputDataError(
            f"{path}: global attribute {name} = {_shown(raw)} is not a single number; "
            "fix or delete the attribute and ingest again")
    number = float(raw.item())
    return None if math.isnan(number) else number


def _shown(raw: np.ndarray) -> str:
    return repr(raw.item() if raw.size == 1 else raw.tolist())


def _place_horizontally(src: SourceRun, layout: Layout) -> SourceRun:
    lat_order, lon_order, lat, lon = horizontal.canonical_order(src.lat, src.lon)

    sorted_already = (np.array_equal(lat_order, np.arange(lat_order.size))
                      and np.array_equal(lon_order, np.arange(lon_order.size)))

    def order(a: Array) -> Array:
        return a if sorted_already else a[..., lat_order, :][..., lon_order]

    dst_lat, dst_lon = np.asarray(layout.lat), np.asarray(layout.lon)
    regrid = not horizontal.same_grid(lat, lon, dst_lat, dst_lon)
    lat_w = horizontal.lat_interp_weights(lat, dst_lat)
    lon_w = horizontal.lon_interp_weights(lon, dst_lon)

    def place(a: Array) -> Array:
        a = order(a)
        return horizontal.apply(a, lat_w, lon_w) if regrid else a

    fields = {k: place(v) for k, v in src.fields.items()}
    levels = {k: VerticalLevels(v.kind, v.a, v.b, None if v.p3d is None else place(v.p3d))
              for k, v in src.levels.items()}
    return SourceRun(src.path, dst_lat, dst_lon, src.time, src.time_units, fields, levels,
                     src.attrs, src.format)


def _remap_vertically(src: SourceRun, layout: Layout, params: dict[str, float]
                      ) -> dict[str, Array]:
    plev = np.asarray(layout.plev)
    ps, ts = src.fields["ps"], src.fields["ts"]
    out = {"ps": ps, "ts": ts}
    main = src.levels["ta"]
    identity = _on_store_levels(main, plev)
    p = None if identity else main.pressure(ps)
    for name in ("ta", "ua", "va", "hus"):
        if identity:
            out[name] = src.fields[name]
        else:
            out[name] = vertical.remap_field(p, src.fields[name], ps, plev,
                                             ts if name == "ta" else None,
                                             geometric=name == "hus")
    zlev = src.levels["zg"]
    if _on_store_levels(zlev, plev):
        out["zg"] = src.fields["zg"]
    else:
        p = main.pressure(ps) if p is None else p
        pz = zlev.pressure(ps)
        p_a, z_a = vertical.lowest_given_level(pz, src.fields["zg"], ps)
        out["zg"] = vertical.hydrostatic_zg(
            p, src.fields["ta"], src.fields["hus"], ps, ts, np.minimum(p_a, ps), z_a, plev,
            params["gravity_m_s2"], params["r_gas_j_kg_k"])
    return out


def _on_store_levels(levels: VerticalLevels, plev: Array) -> bool:
    return (levels.kind == "pressure" and levels.a.shape == plev.shape
            and bool(np.allclose(levels.a, plev, rtol=1e-6)))


def _reduce_time(fields: dict[str, Array], src: SourceRun, layout: Layout) -> dict[str, Array]:
    order = np.argsort(src.time, kind="stable")
    if not np.array_equal(order, np.arange(order.size)):
        fields = {k: v[order] for k, v in fields.items()}
    nt = src.time.size
    if layout.time_mean_last is None:
        if nt != layout.ntime:
            raise InputDataError(
                f"{src.path}: has {nt} time steps but the store keeps {layout.ntime} per run; "
                "ingest files with the same number of steps, or use --time-mean-last N"
            )
        return fields
    n = layout.time_mean_last
    if nt < n:
        raise InputDataError(f"{src.path}: has {nt} time steps, fewer than --time-mean-last {n}")
    return {k: _nan_mean(v[-n:]) for k, v in fields.items()}


def _nan_mean(a: Array) -> Array:
    finite = np.isfinite(a)
    count = finite.sum(axis=0)
    total = np.where(finite, a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)[None]


