"""s3d cube I/O: round trip, WCS wavelengths (linear and WAVE-TAB), offsets, DQ mask,
checksums, windows and line selection, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from ifu_helpers import SMALL_SHAPE, SMALL_WAVE, Z, fits_data_offset, small_template

from exocube.errors import CubeChecksumError, CubeFormatError, LineCoverageError
from exocube.ifu.cube import read_s3d, write_s3d
from exocube.ifu.dq import JWST_DQ_FLAGS, mask_bits
from exocube.ifu.lines import get_lines


@pytest.fixture
def cube_path(tmp_path: Path) -> Path:
    return write_s3d(small_template(), tmp_path / "small_s3d.fits")


def test_round_trip_identical_data_and_wcs_wavelengths(cube_path: Path, tmp_path: Path) -> None:
    cube = read_s3d(cube_path)
    again = read_s3d(write_s3d(cube, tmp_path / "again_s3d.fits"))
    for name in ("flux", "err", "dq", "mask", "wmap", "wavelength_um", "x_arcsec",
                 "y_arcsec"):
        np.testing.assert_array_equal(getattr(again, name), getattr(cube, name), err_msg=name)
    assert again.unit == u.MJy / u.sr and again.shape == SMALL_SHAPE
    # wavelengths from the WCS against the linear WCS written by hand: CRVAL3 + CDELT3 (p - CRPIX3)
    step = (SMALL_WAVE[1] - SMALL_WAVE[0]) / (SMALL_SHAPE[0] - 1)
    expected = SMALL_WAVE[0] + step * np.arange(SMALL_SHAPE[0])
    assert np.max(np.abs(cube.wavelength_um - expected)) < 1e-9
    with fits.open(cube_path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "DQ", "WMAP"]
        assert hdul["SCI"].data.dtype == np.dtype(">f4") and hdul["DQ"].data.dtype.kind == "u"
        assert hdul[0].header["FLUXEXT"] == "SCI" and "CHECKSUM" in hdul["SCI"].header


def test_wave_tab_cube_reads_the_table(tmp_path: Path) -> None:
    lin = small_template()
    wave = np.sort(lin.wavelength_um + 1e-5 * np.sin(np.arange(lin.shape[0])))  # non-linear
    path = write_s3d(lin, tmp_path / "lin.fits")
    with fits.open(path) as hdul:
        hdr = hdul["SCI"].header
        for key in ("CRVAL3", "CDELT3"):
            del hdr[key]
        hdr.update({"CTYPE3": "WAVE-TAB", "CRPIX3": 1.0, "CRVAL3": 1.0, "CDELT3": 1.0,
                    "PS3_0": "WCS-TABLE", "PS3_1": "wavelength"})
        col = fits.Column(name="wavelength", format=f"{wave.size}D", dim=f"(1,{wave.size})",
                          unit="um", array=wave.reshape(1, wave.size, 1))
        hdul.append(fits.BinTableHDU.from_columns([col], name="WCS-TABLE"))
        hdul.writeto(tmp_path / "tab.fits", checksum=True)
    cube = read_s3d(tmp_path / "tab.fits")
    assert cube.wave_table
    assert np.max(np.abs(cube.wavelength_um - wave)) < 1e-9
    back = read_s3d(write_s3d(cube, tmp_path / "tab_again.fits"))
    np.testing.assert_array_equal(back.wavelength_um, cube.wavelength_um)


def test_spaxel_offsets_follow_pc_and_crpix(cube_path: Path) -> None:
    cube = read_s3d(cube_path)
    ny, nx = SMALL_SHAPE[1:]
    cy, cx = (ny - 1) / 2, (nx - 1) / 2  # CRPIX at the centre (1-based (n+1)/2)
    assert cube.x_arcsec[int(cy), int(cx)] == pytest.approx(0.0, abs=1e-12)
    # PC1_1 = -1: x pixel to the right is 0.1 arcsec further west
    assert cube.x_arcsec[0, 1] - cube.x_arcsec[0, 0] == pytest.approx(-0.1, abs=1e-12)
    assert cube.y_arcsec[1, 0] - cube.y_arcsec[0, 0] == pytest.approx(0.1, abs=1e-12)
    assert cube.spaxel_arcsec == pytest.approx(0.1)


def test_dq_513_masks_the_voxel_and_other_bits_are_configurable(tmp_path: Path) -> None:
    base = small_template()
    dq = np.array(base.dq)
    good = np.argwhere(~base.mask)
    (a, b, c), (d, e, f) = good[0], good[1]
    dq[a, b, c] = 513
    dq[d, e, f] = JWST_DQ_FLAGS["OUTLIER"]
    path = write_s3d(base.with_data(base.flux, base.err, dq), tmp_path / "dq.fits")
    cube = read_s3d(path)
    assert cube.mask[a, b, c] and np.isfinite(cube.flux[a, b, c])
    assert not cube.mask[d, e, f]
    strict = read_s3d(path, mask_flags=("DO_NOT_USE", "NON_SCIENCE", "OUTLIER"))
    assert strict.mask[d, e, f] and strict.mask_bits == 513 | 16
    assert read_s3d(path, mask_flags=(512,)).mask[a, b, c]
    with pytest.raises(CubeFormatError, match="unknown JWST DQ flag 'BOGUS'"):
        mask_bits(["BOGUS"])


def test_corrupted_file_fails_its_checksum_naming_the_hdu(cube_path: Path) -> None:
    offset = fits_data_offset(cube_path, 1) + 4 * 1000
    raw = bytearray(cube_path.read_bytes())
    raw[offset:offset + 4] = b"\x3f\x80\x00\x01"
    cube_path.write_bytes(bytes(raw))
    with pytest.raises(CubeChecksumError, match=r"HDU 1 \(SCI\) fails its DATASUM"):
        read_s3d(cube_path)
    assert read_s3d(cube_path, verify=False).shape == SMALL_SHAPE


def test_corrupted_header_fails_checksum(cube_path: Path) -> None:
    with fits.open(cube_path) as hdul:
        start = int(hdul["ERR"].fileinfo()["hdrLoc"])
    raw = cube_path.read_bytes()
    i = raw.index(b"ERRTYPE = 'ERR", start)  # the ERR extension's header
    cube_path.write_bytes(raw[:i] + b"ERRTYPE = 'ERS" + raw[i + 14:])
    with pytest.raises(CubeChecksumError, match=r"HDU 2 \(ERR\) fails its CHECKSUM"):
        read_s3d(cube_path)


def test_window_and_line_windows_with_velocity_axes(cube_path: Path) -> None:
    cube = read_s3d(cube_path)
    sub = cube.select_window(1.28, 1.30)
    assert sub.wavelength_um[0] >= 1.28 and sub.wavelength_um[-1] <= 1.30
    # the sub-cube's header still gives its wavelengths
    assert int(sub.sci_header["CRPIX3"]) < 1
    (win,) = cube.line_windows(get_lines(["Halpha"]), Z, half_width_kms=1000.0)
    assert np.all(np.abs(win.velocity_kms) <= 1000.0)
    lam0 = 0.656461 * (1 + Z)
    v = 299792.458 * (win.cube.wavelength_um / lam0 - 1)
    np.testing.assert_allclose(win.velocity_kms, v, atol=1e-9)
    with pytest.raises(LineCoverageError, match=r"do not cover \[OIII\]5008"):
        cube.line_windows(get_lines(["Halpha", "[OIII]5008"]), Z)
    with pytest.raises(CubeFormatError, match="no plane between"):
        cube.select_window(2.0, 2.1)


def test_not_an_s3d_cube(tmp_path: Path) -> None:
    img = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((4, 4), "f4"), name="SCI")]
                 ).writeto(img)
    with pytest.raises(CubeFormatError, match=r"image.fits: SCI holds data of shape \(4, 4\)"):
        read_s3d(img)
    noext = tmp_path / "noext.fits"
    fits.PrimaryHDU(np.zeros((3, 4, 4), "f4")).writeto(noext)
    with pytest.raises(CubeFormatError, match=r"no SCI extension .*not an s3d cube"):
        read_s3d(noext)
    text = tmp_path / "notes.fits"
    text.write_text("hello")
    with pytest.raises(CubeFormatError, match="not a readable FITS file"):
        read_s3d(text)
    with pytest.raises(CubeFormatError, match="no such file"):
        read_s3d(tmp_path / "missing.fits")


def test_all_nan_cube_is_refused(tmp_path: Path) -> None:
    base = small_template()
    nan = np.full(base.shape, np.nan, dtype=np.float32)
    path = write_s3d(base.with_data(nan, nan), tmp_path / "nan.fits")
    with pytest.raises(CubeFormatError, match="every voxel is NaN or flagged"):
        read_s3d(path)


def test_bad_spectral_axis_is_named(cube_path: Path, tmp_path: Path) -> None:
    with fits.open(cube_path) as hdul:
        hdul["SCI"].header["CTYPE3"] = "FREQ"
        hdul.writeto(tmp_path / "freq.fits", checksum=True)
    with pytest.raises(CubeFormatError, match=r"freq.fits HDU SCI: SCI CTYPE3='FREQ'"):
        read_s3d(tmp_path / "freq.fits")


def test_variance_errtype_is_converted(cube_path: Path, tmp_path: Path) -> None:
    with fits.open(cube_path) as hdul:
        hdul[0].header["ERRTYPE"] = "VAR"
        hdul["ERR"].data = hdul["ERR"].data ** 2
        hdul.writeto(tmp_path / "var.fits", checksum=True)
    cube, orig = read_s3d(tmp_path / "var.fits"), read_s3d(cube_path)
    np.testing.assert_allclose(cube.err, orig.err, rtol=1e-6)
