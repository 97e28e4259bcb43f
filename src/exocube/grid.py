"""The canonical climate-cube grid: pressure levels, latitudes, longitudes.

Pressure levels are in Pa, surface first (descending pressure). Latitudes are
cell centres in degrees_north, ascending; longitudes cell centres in
degrees_east in [0, 360). The default is 32 lat x 64 lon x 20 levels, the
levels log-spaced from 2e5 Pa (2 bar) to 1e2 Pa (1 hPa); a level with a
pressure above a run's surface pressure is below ground and holds NaN.

A new store's levels are chosen when it is created, in the ``--levels`` text
(:func:`parse_levels`), pressures in Pa:

- ``log:P_BOTTOM:P_TOP:N``: ``N`` levels log-spaced from ``P_BOTTOM`` (the lowest,
  highest-pressure level) to ``P_TOP``, e.g. ``log:2e5:1e2:20`` (the default grid's);
- ``P1,P2,...``: the levels themselves, in any order, e.g. ``5e5,3e5,1e5,5e4,1e4,1e3``.

The store keeps them surface first (descending). A run's levels outside them are
not refused: store levels below a run's surface (``plev > ps``) and above its
model top are NaN, which readers treat as masked (see docs/cube_store.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from exocube.errors import ConfigError, InputDataError


def _log_levels(p_bottom: float, p_top: float, n: int) -> NDArray[np.float64]:
    return np.geomspace(p_bottom, p_top, n)


@dataclass(frozen=True)
class Grid:
    """A regular lat-lon grid with fixed pressure levels."""

    nlat: int = 32
    nlon: int = 64
    plev: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(p) for p in _log_levels(2.0e5, 1.0e2, 20))
    )

    def __post_init__(self) -> None:
        if self.nlat < 2 or self.nlon < 4:
            raise ConfigError(f"grid needs nlat >= 2 and nlon >= 4, got nlat={self.nlat}, "
                              f"nlon={self.nlon}")
        p = np.asarray(self.plev)
        if p.size < 2 or not np.all(np.diff(p) < 0) or p[-1] <= 0:
            raise ConfigError(f"plev must be positive and strictly descending (surface first) "
                              f"in Pa, got {list(self.plev)}")

    @classmethod
    def with_levels(cls, nlat: int = 32, nlon: int = 64, nlev: int = 20,
                    p_bottom: float = 2.0e5, p_top: float = 1.0e2) -> Grid:
        """A grid with ``nlev`` log-spaced levels from ``p_bottom`` to ``p_top`` [Pa]."""
        return cls(nlat, nlon, tuple(float(p) for p in _log_levels(p_bottom, p_top, nlev)))

    @property
    def lat(self) -> NDArray[np.float64]:
        """Cell-centre latitudes, ascending, degrees_north."""
        edges = np.linspace(-90.0, 90.0, self.nlat + 1)
        return 0.5 * (edges[:-1] + edges[1:])

    @property
    def lon(self) -> NDArray[np.float64]:
        """Cell-centre longitudes in [0, 360), degrees_east."""
        step = 360.0 / self.nlon
        return np.arange(self.nlon) * step + 0.5 * step

    @property
    def plev_array(self) -> NDArray[np.float64]:
        return np.asarray(self.plev, dtype=np.float64)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(plev, lat, lon)."""
        return (len(self.plev), self.nlat, self.nlon)


DEFAULT_GRID = Grid()

_A = TypeVar("_A")


def latitude_weights(lat_deg: _A) -> _A:
    """Area weights ``cos(latitude)`` normalised to mean 1 over the latitudes given.

    Takes and returns a NumPy array or a torch tensor (same type, dtype and device), so
    the generator, the losses and the evaluation weight latitudes the same way.
    """
    if isinstance(lat_deg, np.ndarray):
        w = np.cos(np.deg2rad(lat_deg))
    else:
        w = (lat_deg * (math.pi / 180.0)).cos()  # type: ignore[operator]
    return w / w.mean()  # type: ignore[no-any-return]

FIELDS_3D: tuple[str, ...] = ("ta", "ua", "va", "hus", "zg")
FIELDS_2D: tuple[str, ...] = ("ps", "ts")
CF_META: dict[str, tuple[str, str]] = {
    "ta": ("air_temperature", "K"),
    "ua": ("eastward_wind", "m s-1"),
    "va": ("northward_wind", "m s-1"),
    "hus": ("specific_humidity", "1"),
    "zg": ("geopotential_height", "m"),
    "ps": ("surface_air_pressure", "Pa"),
    "ts": ("surface_temperature", "K"),
}


# -- the --levels text ------------------------------------------------------------------

MAX_LEVELS = 1000
LEVELS_SYNTAX = ("log:P_BOTTOM:P_TOP:N (Pa), e.g. log:3e5:1e2:24, or a list in Pa, "
                 "e.g. 3e5,1e5,1e4,1e3")


def parse_levels(text: str) -> tuple[float, ...]:
    """Pressure levels [Pa], descending, from ``--levels`` text; InputDataError when bad."""
    text = text.strip()
    if text.startswith("log:"):
        levels = _log_spec(text)
    else:
        levels = [_pressure(text, part) for part in text.split(",")]
    if not 2 <= len(levels) <= MAX_LEVELS:
        raise InputDataError(f"--levels {text!r}: {len(levels)} level(s); give 2 to "
                             f"{MAX_LEVELS} levels as {LEVELS_SYNTAX}")
    out = tuple(sorted(levels, reverse=True))
    repeated = sorted({p for p in out if out.count(p) > 1})
    if repeated:
        raise InputDataError(f"--levels {text!r}: the level(s) {repeated} Pa appear twice; "
                             "give each level once")
    return out


def _log_spec(text: str) -> list[float]:
    parts = text.split(":")[1:]
    if len(parts) != 3:
        raise InputDataError(f"--levels {text!r}: expected {LEVELS_SYNTAX}")
    bottom, top = _pressure(text, parts[0]), _pressure(text, parts[1])
    try:
        n = int(parts[2])
    except ValueError:
        raise InputDataError(f"--levels {text!r}: N={parts[2]!r} is not a whole number; "
                             f"expected {LEVELS_SYNTAX}") from None
    if bottom <= top:
        raise InputDataError(f"--levels {text!r}: P_BOTTOM={bottom:g} Pa must exceed "
                             f"P_TOP={top:g} Pa (the bottom level has the higher pressure)")
    if not 2 <= n <= MAX_LEVELS:
        raise InputDataError(f"--levels {text!r}: N={n}; expected 2 to {MAX_LEVELS} levels")
    return [float(p) for p in _log_levels(bottom, top, n)]


def _pressure(text: str, part: str) -> float:
    try:
        p = float(part)
    except ValueError:
        p = math.nan
    if not (math.isfinite(p) and p > 0):
        raise InputDataError(f"--levels {text!r}: {part.strip()!r} is not a pressure > 0 in "
                             f"Pa; expected {LEVELS_SYNTAX}")
    return p
