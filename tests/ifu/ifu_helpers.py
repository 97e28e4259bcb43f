"""Small cubes for the IFU tests (imported by the test modules of this folder)."""

from __future__ import annotations

from pathlib import Path

from exocube.ifu.cube import IFUCube
from exocube.ifu.template import build_template

Z = 0.964
# Halpha, [NII] and [SII] at z = 0.964, in the GO-3149 channel spacing.
SMALL_WAVE = (1.2600, 1.2600 + 0.000636 * 125)
SMALL_SHAPE = (126, 15, 13)


def small_template(**kw: object) -> IFUCube:
    """A 126 x 15 x 13 s3d-like cube with the GO-3149 WCS conventions and footprint."""
    kw.setdefault("tile_offset", 0.0)
    return build_template(SMALL_SHAPE, SMALL_WAVE, **kw)  # type: ignore[arg-type]


def fits_data_offset(path: Path, hdu: int) -> int:
    from astropy.io import fits

    with fits.open(path) as hdul:
        return int(hdul[hdu].fileinfo()["datLoc"])
