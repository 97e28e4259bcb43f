"""Unit conversion to SI at the edge: ``value_si = value * scale + offset``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from exocube.errors import InputDataError
from exocube.physics import BAR_TO_PA

# unit spelling -> (SI unit, scale, offset)
CONVERSIONS: dict[str, tuple[str, float, float]] = {
    "K": ("K", 1.0, 0.0), "kelvin": ("K", 1.0, 0.0), "degK": ("K", 1.0, 0.0),
    "degC": ("K", 1.0, 273.15), "C": ("K", 1.0, 273.15), "deg C": ("K", 1.0, 273.15),
    "celsius": ("K", 1.0, 273.15), "degrees_C": ("K", 1.0, 273.15),
    "Pa": ("Pa", 1.0, 0.0), "hPa": ("Pa", 100.0, 0.0), "mb": ("Pa", 100.0, 0.0),
    "mbar": ("Pa", 100.0, 0.0), "millibar": ("Pa", 100.0, 0.0), "bar": ("Pa", BAR_TO_PA, 0.0),
    "kPa": ("Pa", 1e3, 0.0),
    "1": ("1", 1.0, 0.0), "": ("1", 1.0, 0.0), "kg/kg": ("1", 1.0, 0.0),
    "kg kg-1": ("1", 1.0, 0.0), "kg kg**-1": ("1", 1.0, 0.0), "g/kg": ("1", 1e-3, 0.0),
    "g kg-1": ("1", 1e-3, 0.0),
    "m s-1": ("m s-1", 1.0, 0.0), "m/s": ("m s-1", 1.0, 0.0), "m s**-1": ("m s-1", 1.0, 0.0),
    "m": ("m", 1.0, 0.0), "km": ("m", 1e3, 0.0), "gpm": ("m", 1.0, 0.0),
}


def to_si(values: NDArray, units: str, expected: str, what: str) -> NDArray[np.floating]:
    """Convert ``values`` given in ``units`` to the SI unit ``expected``.

    Floating-point values already in SI units come back unchanged (no copy, same dtype).
    """
    spec = CONVERSIONS.get(units.strip())
    if spec is None or spec[0] != expected:
        known = sorted(k for k, v in CONVERSIONS.items() if v[0] == expected and k)
        raise InputDataError(
            f"{what} has units {units!r}, which exocube cannot convert to {expected!r}; "
            f"use one of {known}"
        )
    _, scale, offset = spec
    out = np.asarray(values)
    if scale != 1.0 or offset != 0.0 or out.dtype.kind != "f":
        out = out.astype(np.float64) * scale + offset
    return out
