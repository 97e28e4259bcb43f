"""HST drizzled images (``*_drz.fits`` / ``*_drc.fits``) for the imaging context.

AstroDrizzle writes PRIMARY, then SCI (the image, usually electrons/s), WHT
(the weight map, inverse variance for ``final_wht_type = 'IVM'`` or exposure
time for 'EXP') and CTX (the context image: a bit per input exposure that
contributed), each found here by EXTNAME. PHOTFLAM (erg/s/cm^2/A per unit of
BUNIT) and PHOTPLAM (pivot wavelength, A) in SCI or PRIMARY give the flux
calibration.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from exocube.errors import CubeFormatError
from exocube.ifu.cube import _data, _open, sha256_of, verify_checksums


@dataclass(frozen=True, eq=False)
class DrizzledImage:
    """One drizzled HST image: SCI, WHT, CTX (when present), its WCS and calibration."""

    sci: np.ndarray
    wht: np.ndarray | None
    ctx: np.ndarray | None
    wcs: WCS
    unit: str
    photflam: float | None
    photplam_angstrom: float | None
    primary_header: fits.Header
    source: str
    sha256: str

    @property
    def pixel_arcsec(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.wcs.pixel_scale_matrix))) * 3600.0)

    def flambda(self) -> u.Quantity:
        """SCI in erg/s/cm^2/A through PHOTFLAM (an error when PHOTFLAM is missing)."""
        if self.photflam is None:
            raise CubeFormatError(f"{self.source}: no PHOTFLAM in SCI or PRIMARY; the image "
                                  "cannot be flux-calibrated")
        return self.sci * self.photflam * u.Unit("erg s-1 cm-2 AA-1")


def _plane(hdul: fits.HDUList, name: str, shape: tuple[int, ...], path: Path
           ) -> np.ndarray | None:
    if name not in hdul:
        return None
    data = np.asarray(_data(hdul[name], name, path))
    if data.shape[-2:] != shape:  # CTX has several planes beyond 32 input images
        raise CubeFormatError(f"{path}: {name} has shape {data.shape}, SCI has {shape}")
    return data


def _keyword(hdrs: tuple[fits.Header, ...], key: str, path: Path) -> float | None:
    for hdr in hdrs:
        if key in hdr:
            value = hdr[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and value > 0):
                raise CubeFormatError(f"{path}: {key}={value!r} is not a positive number; "
                                      f"fix or remove the keyword")
            return float(value)
    return None


def read_drizzled(path: str | os.PathLike[str], verify: bool = True) -> DrizzledImage:
    """Read a drizzled HST image (SCI 2-D; WHT and CTX when present)."""
    path = Path(path)
    with _open(path) as hdul:
        if verify:
            verify_checksums(hdul, str(path))
        data = _data(hdul["SCI"], "SCI", path) if "SCI" in hdul else None
        if data is None or not hdul["SCI"].is_image or data.ndim != 2:
            raise CubeFormatError(f"{path}: no 2-D SCI extension (HDUs: "
                                  f"{[h.name for h in hdul]}); a drizzled image has SCI, "
                                  "WHT, CTX")
        sci_hdu = hdul["SCI"]
        sci = np.asarray(sci_hdu.data, dtype=np.float32)
        hdrs = (sci_hdu.header, hdul[0].header)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            try:
                wcs = WCS(sci_hdu.header, naxis=2)
            except (ValueError, KeyError, MemoryError, TypeError) as exc:
                raise CubeFormatError(f"{path} HDU SCI: the WCS cannot be parsed ({exc}); "
                                      "check CTYPE1/2, CRVAL1/2, CRPIX1/2, CD/PC") from None
        out = DrizzledImage(
            sci=sci, wht=_plane(hdul, "WHT", sci.shape, path),
            ctx=_plane(hdul, "CTX", sci.shape, path), wcs=wcs,
            unit=str(sci_hdu.header.get("BUNIT", "")),
            photflam=_keyword(hdrs, "PHOTFLAM", path),
            photplam_angstrom=_keyword(hdrs, "PHOTPLAM", path),
            primary_header=hdul[0].header.copy(),
            source=str(path), sha256=sha256_of(path))
    if not np.isfinite(out.sci).any():
        raise CubeFormatError(f"{path}: SCI is all NaN; the image has no data")
    return out
