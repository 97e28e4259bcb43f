"""IRIS Earth Model Collaboration reference models (domain: planetary_interiors).

1-D reference Earth models (PREM, AK135-F, IASP91 ...) as the IRIS EMC
publishes them: one comma-separated table per model under
``<base>/<MODEL>/<FILE>.csv`` (e.g. ``PREM/PREM_1s.csv``: radius and depth in
km, density in g/cm^3, ``Vpv Vph Vsv Vsh`` in km/s, ``eta``, ``Q-mu``,
``Q-kappa``; no header row, rows from the surface inward, each discontinuity
given twice at the same radius). Each configured model names its path, its
column names and how many header lines to skip.

Validation parses every row as numbers, checks ranges per known column (a
density or P velocity of 0 cannot be right; an unusual value is flagged), that
radius and depth are monotonic and consistent (``radius + depth`` = surface
radius), that the top of the model is at the configured surface radius
(6371 km), that ``Vp^2 >= 4/3 Vs^2`` (a non-negative bulk modulus), and, when
the model reaches the centre, that its density integrates to the planet's mass.
Density decreasing with depth is flagged.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import numpy as np

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.errors import ConfigError

NAME = "iris_emc"
DOMAIN = "planetary_interiors"
DESCRIPTION = "IRIS EMC reference Earth models (PREM, AK135-F ...) as CSV tables"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only

INF = math.inf
VP_NAMES = ("Vp", "Vpv", "Vph")
VS_NAMES = ("Vs", "Vsv", "Vsh")


@dataclass(frozen=True)
class Bounds:
    """Impossible outside ``physical`` (open at ``lo`` when ``lo_open``), unusual
    outside ``typical``."""

    physical: tuple[float, float]
    typical: tuple[float, float]
    lo_open: bool = False


# Units of the IRIS EMC tables: km, g/cm^3, km/s.
BOUNDS: dict[str, Bounds] = {
    "radius": Bounds((0, INF), (0, 7000)),
    "depth": Bounds((0, INF), (0, 7000)),
    "density": Bounds((0, INF), (0.9, 14.0), lo_open=True),
    **{n: Bounds((0, INF), (1.4, 14.0), lo_open=True) for n in VP_NAMES},
    **{n: Bounds((0, INF), (0, 8.0)) for n in VS_NAMES},
    "eta": Bounds((0, INF), (0.8, 1.2), lo_open=True),
    "Q-mu": Bounds((0, INF), (0, 1e5)),
    "Q-kappa": Bounds((0, INF), (50, 1e5), lo_open=True),
}


def base_url(opts: AcquireOptions) -> str:
    return opts.iris_emc.base_url


def model_path(path: str) -> str:
    """A model's path below the base URL, checked to stay below it."""
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.name:
        raise ConfigError(f"acquire.iris_emc.models: path {path!r} must be relative to the "
                          "base URL without '..', e.g. 'PREM/PREM_1s.csv'")
    return str(p)


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.iris_emc
    base = o.base_url.rstrip("/")
    checks = {"surface_radius_km": o.surface_radius_km,
              "radius_tolerance_km": o.radius_tolerance_km,
              "planet_mass_kg": o.planet_mass_kg, "mass_tolerance": o.mass_tolerance}
    files = []
    for m in o.models:
        path = model_path(m.path)
        files.append(PlannedFile(
            source=NAME, domain=DOMAIN, relpath=f"{NAME}/{path}", url=f"{base}/{quote(path)}",
            media_type="text/csv", kind="earth_model",
            meta={"columns": list(m.columns), "header_lines": m.header_lines, **checks}))
    await ctx.fill_sizes(files)
    return files


def read_model(path: Path, columns: list[str], header_lines: int) -> dict[str, np.ndarray]:
    """The table's columns as float arrays; ``ValueError`` naming the line on bad input."""
    out: list[list[float]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if lineno <= header_lines or not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) != len(columns):
                raise ValueError(f"line {lineno} has {len(row)} fields, expected "
                                 f"{len(columns)} ({', '.join(columns)})")
            try:
                out.append([float(v) for v in row])
            except ValueError:
                raise ValueError(f"line {lineno}: not all fields are numbers: {row}") from None
    table = np.array(out, dtype=float).reshape(len(out), len(columns))
    return {name: table[:, i] for i, name in enumerate(columns)}


def validate(path: Path, item: PlannedFile) -> QualityReport:
    report = QualityReport()
    try:
        cols = read_model(path, item.meta["columns"], item.meta["header_lines"])
    except (ValueError, OSError, UnicodeDecodeError, csv.Error) as exc:
        report.error("emc.parse", f"cannot read the model table: {exc}", penalty=1.0)
        return report
    nrows = len(next(iter(cols.values())))
    if nrows < 2:
        report.error("emc.rows", f"{nrows} rows; a model needs at least 2", penalty=1.0)
        return report
    _check_ranges(cols, report)
    radius = _radius(cols, item.meta["surface_radius_km"])
    if radius is None:
        report.error("emc.schema", "no 'radius' or 'depth' column", penalty=1.0)
        return report
    _check_monotonic(cols, report)
    _check_surface(cols, radius, item.meta, report)
    _check_moduli(cols, report)
    _check_density_order(cols, radius, report)
    _check_mass(cols, radius, item.meta, report)
    return report


def _check_ranges(cols: dict[str, np.ndarray], report: QualityReport) -> None:
    for name, values in cols.items():
        b = BOUNDS.get(name)
        if b is None:
            continue
        lo, hi = b.physical
        bad = (values <= lo if b.lo_open else values < lo) | (values > hi) | ~np.isfinite(values)
        if bad.any():
            rows = np.flatnonzero(bad)
            report.error("emc.range", f"column {name!r}: {bad.sum()} values outside the "
                         f"physical range {'(' if b.lo_open else '['}{lo}, {hi}], e.g. "
                         f"{values[rows[:3]].tolist()} at rows {rows[:3].tolist()}",
                         penalty=0.6, column=name)
        tlo, thi = b.typical
        odd = ~bad & ((values < tlo) | (values > thi))
        if odd.any():
            report.flag("emc.range", f"column {name!r}: {odd.sum()} values outside the typical "
                        f"range [{tlo}, {thi}] (kept: may be genuine), e.g. "
                        f"{values[odd][:3].tolist()}", penalty=0.01, column=name)


def _radius(cols: dict[str, np.ndarray], surface: float) -> np.ndarray | None:
    if "radius" in cols:
        return cols["radius"]
    if "depth" in cols:
        return surface - cols["depth"]
    return None


def _check_monotonic(cols: dict[str, np.ndarray], report: QualityReport) -> None:
    """Radius never increases (depth never decreases) along the rows, or the reverse
    for tables written centre outward; equal values mark a discontinuity."""
    for name in ("radius", "depth"):
        if name not in cols:
            continue
        v = cols[name]
        step = np.diff(v)
        sign = np.sign(v[-1] - v[0]) or 1.0
        wrong = np.flatnonzero(step * sign < 0)
        if wrong.size:
            i = int(wrong[0]) + 1
            report.error("emc.order", f"column {name!r} is not monotonic: row {i} has "
                         f"{v[i]:g} after {v[i - 1]:g} ({wrong.size} steps out of order)",
                         penalty=0.6, column=name, row=i)


def _check_surface(
    cols: dict[str, np.ndarray], radius: np.ndarray, meta: dict, report: QualityReport
) -> None:
    surface, tol = meta["surface_radius_km"], meta["radius_tolerance_km"]
    top = float(radius.max())
    if abs(top - surface) > tol:
        report.error("emc.surface", f"the model's top is at radius {top:g} km, expected "
                     f"{surface:g} +- {tol:g} km (wrong units, e.g. metres, or another "
                     "planet: set acquire.iris_emc.surface_radius_km)", penalty=0.6)
    if "radius" in cols and "depth" in cols:
        off = np.abs(cols["radius"] + cols["depth"] - top)
        if (off > 0.5).any():
            i = int(np.argmax(off))
            report.error("emc.depth", f"radius + depth differs from the top radius {top:g} km "
                         f"by {off[i]:g} km at row {i}", penalty=0.3, row=i)


def _check_moduli(cols: dict[str, np.ndarray], report: QualityReport) -> None:
    """A non-negative bulk modulus needs ``Vp^2 >= 4/3 Vs^2`` at every row."""
    for vp_name, vs_name in zip(VP_NAMES, VS_NAMES, strict=True):
        if vp_name not in cols or vs_name not in cols:
            continue
        vp, vs = cols[vp_name], cols[vs_name]
        bad = vp**2 < (4.0 / 3.0) * vs**2 - 1e-9
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            report.error("emc.moduli", f"{vp_name}^2 < 4/3 {vs_name}^2 (negative bulk "
                         f"modulus) at {bad.sum()} rows, e.g. row {i}: {vp_name}={vp[i]:g}, "
                         f"{vs_name}={vs[i]:g}", penalty=0.5, row=i)


def _check_density_order(
    cols: dict[str, np.ndarray], radius: np.ndarray, report: QualityReport
) -> None:
    if "density" not in cols:
        return
    n = len(radius)
    order = np.arange(n) if radius[0] >= radius[-1] else np.arange(n)[::-1]  # surface first
    inverted = np.flatnonzero(np.diff(cols["density"][order]) < -1e-6)
    if inverted.size:
        i = int(order[inverted[0] + 1])
        report.flag("emc.density_order", f"density decreases with depth at {inverted.size} "
                    f"places, e.g. row {i} at radius {radius[i]:g} km (kept: may be genuine)",
                    penalty=0.02, row=i)


def mass_kg(radius_km: np.ndarray, density_gcc: np.ndarray) -> float:
    """``4 pi integral(rho r^2 dr)`` by the trapezoid rule; discontinuities (repeated
    radii) contribute nothing of their own."""
    order = np.argsort(radius_km, kind="stable")
    r = radius_km[order] * 1e3
    rho = density_gcc[order] * 1e3
    f = rho * r**2
    return float(4.0 * math.pi * np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(r)))


def _check_mass(
    cols: dict[str, np.ndarray], radius: np.ndarray, meta: dict, report: QualityReport
) -> None:
    expected = meta["planet_mass_kg"]
    if expected is None or "density" not in cols:
        return
    if radius.min() > meta["radius_tolerance_km"]:
        report.flag("emc.centre", f"the model stops at radius {radius.min():g} km (does not "
                    "reach the centre): mass not checked", penalty=0.01)
        return
    mass = mass_kg(radius, cols["density"])
    rel = abs(mass - expected) / expected
    if rel > meta["mass_tolerance"]:
        report.flag("emc.mass", f"the density profile integrates to {mass:.4e} kg, "
                    f"{rel:.1%} from the expected {expected:.4e} kg", penalty=0.1,
                    mass_kg=mass)
