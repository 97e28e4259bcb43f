"""Emission lines of the RBH-1 band, their fixed ratios, and velocity axes.

Rest wavelengths are in vacuum (JWST wavelengths are vacuum), in um, from the
NIST Atomic Spectra Database as tabulated by the SDSS line list. Ratios fixed
by atomic physics (both lines from the same upper level, so the ratio is the
ratio of transition probabilities times photon energies) are tied to their
partner; all other lines are free, through their ratio to Halpha.

- [OIII] 5008/4960 = 2.98 (Storey and Zeippen 2000, MNRAS 312, 813)
- [NII] 6585/6550 = 2.94 (Osterbrock and Ferland 2006, table 3.x; as in the issue)
- [SIII] 9533/9071 = 2.47 (Mendoza and Zeippen 1982, MNRAS 199, 1025)

Velocities use the optical convention, v = c (lambda / lambda_0 - 1) with
lambda_0 = lambda_rest (1 + z): linear in wavelength, so a linear wavelength
grid is a linear velocity grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from exocube.errors import LineCoverageError

C_KMS = 299_792.458


@dataclass(frozen=True)
class Line:
    """One emission line: its name, vacuum rest wavelength and how its flux is set.

    ``tied_to`` names the line whose flux this one follows with ``ratio``
    (this line's flux = ratio x the other's); ``None`` for a free line.
    """

    name: str
    rest_um: float
    tied_to: str | None = None
    ratio: float = 1.0

    def observed_um(self, z: float) -> float:
        return self.rest_um * (1.0 + z)


LINES: tuple[Line, ...] = (
    Line("Hbeta", 0.486269),
    Line("[OIII]4960", 0.496030, tied_to="[OIII]5008", ratio=1.0 / 2.98),
    Line("[OIII]5008", 0.500824),
    Line("[OI]6302", 0.630205),
    Line("[NII]6550", 0.654986, tied_to="[NII]6585", ratio=1.0 / 2.94),
    Line("Halpha", 0.656461),
    Line("[NII]6585", 0.658527),
    Line("[SII]6718", 0.671829),
    Line("[SII]6733", 0.673267),
    Line("[SIII]9071", 0.907105, tied_to="[SIII]9533", ratio=1.0 / 2.47),
    Line("[SIII]9533", 0.953321),
)

LINES_BY_NAME: dict[str, Line] = {line.name: line for line in LINES}


def get_lines(names: Iterable[str] | None = None) -> list[Line]:
    """The named lines (all of :data:`LINES` for ``None``); unknown names are an error."""
    if names is None:
        return list(LINES)
    out = []
    for name in names:
        if name not in LINES_BY_NAME:
            raise LineCoverageError(f"unknown line {name!r}; known lines: "
                                    f"{', '.join(LINES_BY_NAME)}")
        out.append(LINES_BY_NAME[name])
    return out


def lines_in_band(wave_um: np.ndarray, z: float, margin_kms: float = 0.0,
                  lines: Sequence[Line] = LINES) -> list[Line]:
    """Lines whose observed wavelength (+- ``margin_kms``) lies inside the band."""
    lo, hi = float(np.nanmin(wave_um)), float(np.nanmax(wave_um))
    f = margin_kms / C_KMS
    return [ln for ln in lines
            if lo <= ln.observed_um(z) * (1 - f) and ln.observed_um(z) * (1 + f) <= hi]


def velocity_kms(wave_um: np.ndarray, line: Line, z: float) -> np.ndarray:
    """Optical-convention velocity of each wavelength relative to ``line`` at ``z``."""
    return C_KMS * (np.asarray(wave_um, dtype=np.float64) / line.observed_um(z) - 1.0)


def check_covered(wave_um: np.ndarray, lines: Sequence[Line], z: float, half_width_kms: float,
                  where: str) -> None:
    """Raise :class:`LineCoverageError` naming every line whose window leaves the band."""
    lo, hi = float(np.nanmin(wave_um)), float(np.nanmax(wave_um))
    f = half_width_kms / C_KMS
    missing = [f"{ln.name} ({ln.observed_um(z) * (1 - f):.4f}-{ln.observed_um(z) * (1 + f):.4f}"
               " um)" for ln in lines
               if ln.observed_um(z) * (1 - f) < lo or ln.observed_um(z) * (1 + f) > hi]
    if missing:
        raise LineCoverageError(
            f"{where}: wavelengths {lo:.4f}-{hi:.4f} um do not cover {', '.join(missing)} at "
            f"z={z}; choose lines inside the band, a narrower window, or another cube")
