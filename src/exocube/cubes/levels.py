"""The ``--levels`` text: a new store's pressure levels, chosen when it is created.

Two forms, pressures in Pa:

- ``log:P_BOTTOM:P_TOP:N``: ``N`` levels log-spaced from ``P_BOTTOM`` (the lowest,
  highest-pressure level) to ``P_TOP``, e.g. ``log:2e5:1e2:20`` (the default grid's);
- ``P1,P2,...``: the levels themselves, in any order, e.g. ``5e5,3e5,1e5,5e4,1e4,1e3``.

The store keeps them surface first (descending). A run's levels outside them are
not refused: store levels below a run's surface (``plev > ps``) and above its
model top are NaN, which readers treat as masked (see docs/cube_store.md).
"""

from __future__ import annotations

import math

import numpy as np

from exocube.errors import InputDataError

MAX_LEVELS = 1000
SYNTAX = "log:P_BOTTOM:P_TOP:N (Pa), e.g. log:3e5:1e2:24, or a list in Pa, e.g. 3e5,1e5,1e4,1e3"


def parse_levels(text: str) -> tuple[float, ...]:
    """Pressure levels [Pa], descending, from ``--levels`` text; InputDataError when bad."""
    text = text.strip()
    if text.startswith("log:"):
        levels = _log_levels(text)
    else:
        levels = [_pressure(text, part) for part in text.split(",")]
    if not 2 <= len(levels) <= MAX_LEVELS:
        raise InputDataError(f"--levels {text!r}: {len(levels)} level(s); give 2 to "
                             f"{MAX_LEVELS} levels as {SYNTAX}")
    out = tuple(sorted(levels, reverse=True))
    repeated = sorted({p for p in out if out.count(p) > 1})
    if repeated:
        raise InputDataError(f"--levels {text!r}: the level(s) {repeated} Pa appear twice; "
                             "give each level once")
    return out


def _log_levels(text: str) -> list[float]:
    parts = text.split(":")[1:]
    if len(parts) != 3:
        raise InputDataError(f"--levels {text!r}: expected {SYNTAX}")
    bottom, top = _pressure(text, parts[0]), _pressure(text, parts[1])
    try:
        n = int(parts[2])
    except ValueError:
        raise InputDataError(f"--levels {text!r}: N={parts[2]!r} is not a whole number; "
                             f"expected {SYNTAX}") from None
    if bottom <= top:
        raise InputDataError(f"--levels {text!r}: P_BOTTOM={bottom:g} Pa must exceed "
                             f"P_TOP={top:g} Pa (the bottom level has the higher pressure)")
    if not 2 <= n <= MAX_LEVELS:
        raise InputDataError(f"--levels {text!r}: N={n}; expected 2 to {MAX_LEVELS} levels")
    return [float(p) for p in np.geomspace(bottom, top, n)]


def _pressure(text: str, part: str) -> float:
    try:
        p = float(part)
    except ValueError:
        p = math.nan
    if not (math.isfinite(p) and p > 0):
        raise InputDataError(f"--levels {text!r}: {part.strip()!r} is not a pressure > 0 in "
                             f"Pa; expected {SYNTAX}")
    return p
