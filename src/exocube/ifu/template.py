"""An s3d template with the geometry of the GO-3149 combined cube of RBH-1.

The real file is not shipped (it comes from MAST: ``exocube ifu fetch``);
this builds a stand-in with its published facts, for synthetic cubes and
tests: shape (1447, 53, 49), 0.9703-1.8900 um in equal steps (0.000636 um),
0.1 arcsec spaxels with PC1_1 = -1, SCI/ERR in MJy/sr, NIRSpec G140M/F100LP.
The footprint is two overlapping 3 x 3 arcsec IFU tiles rotated by
``roll_deg``, each observed ``exposures_per_tile`` times with small dithers,
so WMAP runs 0 to 2 x 23 = 46 and about 46 % of the voxels have no coverage:
DQ = DO_NOT_USE | NON_SCIENCE = 513 and NaN SCI and ERR there. ERR has the
published median (0.084 MJy/sr), scaled with 1/sqrt(WMAP) and rising towards
the band edges; SCI is a flat 1.2 MJy/sr continuum plus seeded noise of that
ERR. None of this is real data: it is geometry and noise levels only.
"""

from __future__ import annotations

import os
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from exocube import __version__
from exocube.ifu.cube import (
    IFUCube,
    _mask,
    set_wave_table_wcs,
    spaxel_offsets,
    wavelengths_um,
    write_s3d,
)
from exocube.ifu.dq import mask_bits

GO3149_SHAPE = (1447, 53, 49)
GO3149_WAVE_UM = (0.9703, 1.8900)
GO3149_SPAXEL_ARCSEC = 0.1
GO3149_SCI_MEDIAN = 1.2
GO3149_ERR_MEDIAN = 0.084


def _primary(ra: float, dec: float) -> fits.Header:
    return fits.Header({
        "TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "DETECTOR": "NRS1", "GRATING": "G140M",
        "FILTER": "F100LP", "EXP_TYPE": "NRS_IFU", "PROGRAM": "03149", "TARGNAME": "TEMPLATE",
        "TARG_RA": ra, "TARG_DEC": dec, "ORIGIN": f"exocube {__version__} template",
        "COMMENT": "Geometry of the GO-3149 s3d cube; synthetic values, not an observation.",
    })


def sci_header(shape: tuple[int, int, int], wave_um: tuple[float, float], ra: float,
               dec: float, spaxel_arcsec: float = GO3149_SPAXEL_ARCSEC) -> fits.Header:
    """A SCI header with the s3d WCS (RA---TAN/DEC--TAN, linear WAVE in um)."""
    nw, ny, nx = shape
    return fits.Header({
        "BUNIT": "MJy/sr", "WCSAXES": 3,
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CTYPE3": "WAVE",
        "CUNIT1": "deg", "CUNIT2": "deg", "CUNIT3": "um",
        "CRPIX1": (nx + 1) / 2.0, "CRPIX2": (ny + 1) / 2.0, "CRPIX3": 1.0,
        "CRVAL1": ra, "CRVAL2": dec, "CRVAL3": wave_um[0],
        "CDELT1": spaxel_arcsec / 3600.0, "CDELT2": spaxel_arcsec / 3600.0,
        "CDELT3": (wave_um[1] - wave_um[0]) / (nw - 1),
        "PC1_1": -1.0, "PC1_2": 0.0, "PC2_1": 0.0, "PC2_2": 1.0, "PC3_3": 1.0,
        "RADESYS": "ICRS", "SPECSYS": "BARYCENT",
    })


def footprint_wmap(x: np.ndarray, y: np.ndarray, roll_deg: float, tile_offset: float,
                   exposures_per_tile: int, seed: int) -> np.ndarray:
    """Exposures covering each spaxel centre: dithered 3" tiles at +-tile_offset."""
    rng = np.random.default_rng(seed)
    c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))
    u_ = x * c - y * s
    v_ = x * s + y * c
    wmap = np.zeros(x.shape, dtype=np.float32)
    for centre in (-tile_offset, tile_offset):
        for dx, dy in rng.uniform(-0.15, 0.15, size=(exposures_per_tile, 2)):
            inside = (np.abs(u_ - dx) <= 1.5) & (np.abs(v_ - centre - dy) <= 1.5)
            wmap += inside
    return wmap


def build_template(shape: tuple[int, int, int] = GO3149_SHAPE,
                   wave_um: tuple[float, float] = GO3149_WAVE_UM, *, ra: float = 0.0,
                   dec: float = 0.0, roll_deg: float = 35.0, tile_offset: float = 0.5,
                   exposures_per_tile: int = 23, seed: int = 3149,
                   wave_table: bool = False) -> IFUCube:
    """The template cube (not written): see the module docstring for what it holds."""
    hdr = sci_header(shape, wave_um, ra, dec)
    probe = hdr.copy()
    probe.update({"NAXIS": 3, "NAXIS1": shape[2], "NAXIS2": shape[1], "NAXIS3": shape[0]})
    wave = wavelengths_um(probe, None, "template")
    x, y = spaxel_offsets(hdr, shape[1], shape[2])
    wmap2 = footprint_wmap(x, y, roll_deg, tile_offset, exposures_per_tile, seed)
    rng = np.random.default_rng(seed + 1)
    edge = 1.0 + 2.0 * ((wave - wave.mean()) / (wave[-1] - wave[0])) ** 2
    with np.errstate(divide="ignore"):
        err = edge[:, None, None] / np.sqrt(wmap2)[None]
    covered = np.broadcast_to(wmap2 > 0, shape)
    err = (err * GO3149_ERR_MEDIAN / np.median(err[covered])).astype(np.float32)
    sci = (GO3149_SCI_MEDIAN + err * rng.standard_normal(shape)).astype(np.float32)
    sci[~covered], err[~covered] = np.nan, np.nan
    dq = np.where(covered, 0, 513).astype(np.uint32)
    if wave_table:
        set_wave_table_wcs(hdr)
    wmap = np.broadcast_to(wmap2, shape).astype(np.float32)
    return IFUCube(flux=sci, err=err, dq=dq, mask=_mask(sci, err, dq, mask_bits()),
                   wavelength_um=wave, x_arcsec=x, y_arcsec=y, unit=u.Unit("MJy/sr"),
                   primary_header=_primary(ra, dec), sci_header=hdr, wmap=wmap,
                   wave_table=wave_table)


def write_template(path: str | os.PathLike[str], **kw: object) -> Path:
    """Build the template and write it as an s3d file; the path."""
    return write_s3d(build_template(**kw), path)  # type: ignore[arg-type]
