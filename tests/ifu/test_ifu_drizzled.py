"""HST drizzled images: SCI/WHT/CTX by EXTNAME, WCS pixel scale, PHOTFLAM calibration,
checksums, and the errors for files that are not drizzled images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from exocube.errors import CubeChecksumError, CubeFormatError
from exocube.ifu.drizzled import read_drizzled


def drz(path: Path, with_ctx: bool = True) -> Path:
    hdr = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 10.0,
                       "CRPIX2": 10.0, "CRVAL1": 150.0, "CRVAL2": 2.0, "CD1_1": -0.04 / 3600,
                       "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.04 / 3600, "BUNIT": "ELECTRONS/S",
                       "PHOTFLAM": 1.5e-19, "PHOTPLAM": 8045.0})
    rng = np.random.default_rng(0)
    hdus = [fits.PrimaryHDU(header=fits.Header({"TELESCOP": "HST", "INSTRUME": "ACS"})),
            fits.ImageHDU(rng.normal(1.0, 0.1, (20, 20)).astype("f4"), hdr, name="WHT"),
            fits.ImageHDU(rng.normal(0.5, 0.1, (20, 20)).astype("f4"), hdr, name="SCI")]
    if with_ctx:
        hdus.append(fits.ImageHDU(np.ones((20, 20), "i4"), name="CTX"))
    fits.HDUList(hdus).writeto(path, checksum=True)
    return path


def test_read_drizzled_by_extname(tmp_path: Path) -> None:
    img = read_drizzled(drz(tmp_path / "x_drc.fits"))
    assert img.sci.shape == (20, 20) and img.wht is not None and img.ctx is not None
    assert float(np.mean(img.sci)) == pytest.approx(0.5, abs=0.05)  # SCI, not the WHT first
    assert img.pixel_arcsec == pytest.approx(0.04)
    assert img.flambda().unit.to_string() == "erg / (Angstrom s cm2)"
    np.testing.assert_allclose(img.flambda().value, img.sci * 1.5e-19)
    assert img.photplam_angstrom == 8045.0 and img.primary_header["INSTRUME"] == "ACS"
    assert read_drizzled(drz(tmp_path / "noctx.fits", with_ctx=False)).ctx is None


def test_drizzled_errors(tmp_path: Path) -> None:
    path = drz(tmp_path / "x_drz.fits")
    raw = bytearray(path.read_bytes())
    with fits.open(path) as hdul:
        at = hdul["SCI"].fileinfo()["datLoc"] + 40
    raw[at:at + 4] = b"\x7f\x7f\x7f\x7f"
    path.write_bytes(bytes(raw))
    with pytest.raises(CubeChecksumError, match=r"HDU 2 \(SCI\) fails its DATASUM"):
        read_drizzled(path)
    cube = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((3, 4, 4), "f4"), name="SCI")]
                 ).writeto(cube)
    with pytest.raises(CubeFormatError, match="no 2-D SCI extension"):
        read_drizzled(cube)
