"""The IFU stage tried from outside: odd and hostile s3d files, as an astronomer meets them.

Each file is a small cube written by exocube and then altered with astropy, the
way another pipeline or a damaged download would leave it. Every one either
reads with the right numbers or fails with a CubeFormatError naming the file,
HDU or keyword.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from ifu_helpers import small_template

from exocube.errors import CubeFormatError, ModelParameterError
from exocube.ifu.cube import IFUCube, read_s3d, write_s3d
from exocube.ifu.forward import ForwardModel
from exocube.ifu.instrument import ResolvingPower, channel_edges_um, unit_factors
from exocube.ifu.lines import C_KMS, LINES_BY_NAME, get_lines
from exocube.ifu.template import build_template


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IFUCube]:
    path = tmp_path_factory.mktemp("outside") / "base_s3d.fits"
    write_s3d(small_template(), path)
    return path, read_s3d(path)


def altered(base_path: Path, tmp_path: Path, fn: Callable[[fits.HDUList], object],
            name: str = "odd_s3d.fits") -> Path:
    """A copy of the base file changed by ``fn`` (checksums dropped, as an editor would)."""
    with fits.open(base_path) as hdul:
        hdus = fits.HDUList([h.copy() for h in hdul])
    for h in hdus:
        h.header.remove("CHECKSUM", ignore_missing=True)
        h.header.remove("DATASUM", ignore_missing=True)
    hdus = fn(hdus) or hdus
    out = tmp_path / name
    hdus.writeto(out)
    return out


def test_extensions_in_another_order_read_the_same(base, tmp_path: Path) -> None:
    path, ref = base
    odd = altered(path, tmp_path, lambda h: fits.HDUList([h[0], h["SCI"], h["DQ"], h["WMAP"],
                                                          h["ERR"]]))
    c = read_s3d(odd)
    np.testing.assert_array_equal(c.err, ref.err)
    np.testing.assert_array_equal(c.dq, ref.dq)


def test_a_cube_without_dq_reads_with_nan_masking_only(base, tmp_path: Path) -> None:
    path, ref = base
    c = read_s3d(altered(path, tmp_path, lambda h: fits.HDUList([h[0], h["SCI"], h["ERR"]])))
    assert not c.dq.any()
    np.testing.assert_array_equal(c.mask, ~np.isfinite(ref.flux) | ~np.isfinite(ref.err))


def test_sci_only_names_err_and_the_keyword(base, tmp_path: Path) -> None:
    path, _ = base
    odd = altered(path, tmp_path, lambda h: fits.HDUList([h[0], h["SCI"]]))
    with pytest.raises(CubeFormatError, match=r"odd_s3d.fits: no ERR extension.*ERREXT"):
        read_s3d(odd)


def test_fluxext_naming_a_missing_hdu(base, tmp_path: Path) -> None:
    path, _ = base
    odd = altered(path, tmp_path, lambda h: h[0].header.set("FLUXEXT", "FLUX"))
    with pytest.raises(CubeFormatError, match=r"no FLUX extension.*FLUXEXT"):
        read_s3d(odd)


@pytest.mark.parametrize(("unit", "scale"), [("m", 1e-6), ("Angstrom", 1e4), ("nm", 1e3),
                                             ("micron", 1.0)])
def test_cunit3_in_other_length_units(base, tmp_path: Path, unit: str, scale: float) -> None:
    path, ref = base

    def to_unit(h: fits.HDUList) -> None:
        s = h["SCI"].header
        s["CUNIT3"], s["CRVAL3"], s["CDELT3"] = unit, s["CRVAL3"] * scale, s["CDELT3"] * scale

    c = read_s3d(altered(path, tmp_path, to_unit))
    np.testing.assert_allclose(c.wavelength_um, ref.wavelength_um, rtol=0, atol=1e-9)


def test_cunit3_that_is_not_a_length(base, tmp_path: Path) -> None:
    path, _ = base
    odd = altered(path, tmp_path, lambda h: h["SCI"].header.set("CUNIT3", "s"))
    with pytest.raises(CubeFormatError, match=r"CUNIT3='s' is a time"):
        read_s3d(odd)


def test_err_not_positive_is_masked(base, tmp_path: Path) -> None:
    path, ref = base

    def bad_err(h: fits.HDUList) -> None:
        e = h["ERR"].data.copy()
        e[5, 7, 6], e[6, 7, 6], e[7, 7, 6] = 0.0, -1.0, np.nan
        h["ERR"].data = e

    c = read_s3d(altered(path, tmp_path, bad_err))
    assert np.isfinite(c.flux[5:8, 7, 6]).all()
    assert c.mask[5:8, 7, 6].all()
    assert (c.mask.sum() - ref.mask.sum()) == 3


def test_other_dq_bits_do_not_mask_by_default(base, tmp_path: Path) -> None:
    path, _ = base

    def jump(h: fits.HDUList) -> None:
        d = h["DQ"].data.copy()
        d[5, 7, 6] = 4  # JUMP_DET
        h["DQ"].data = d

    odd = altered(path, tmp_path, jump)
    assert not read_s3d(odd).mask[5, 7, 6]
    assert read_s3d(odd, mask_flags=("DO_NOT_USE", "JUMP_DET")).mask[5, 7, 6]


def test_negative_dq_is_refused(base, tmp_path: Path) -> None:
    path, _ = base

    def neg(h: fits.HDUList) -> None:
        d = h["DQ"].data.astype(np.int32)
        d[0, 0, 0] = -1
        h["DQ"].data = d

    with pytest.raises(CubeFormatError, match=r"HDU DQ has values outside"):
        read_s3d(altered(path, tmp_path, neg))


def test_err_in_another_unit_is_converted_or_refused(base, tmp_path: Path) -> None:
    path, ref = base

    def jy(h: fits.HDUList) -> None:
        h["ERR"].data = h["ERR"].data * 1e6
        h["ERR"].header["BUNIT"] = "Jy/sr"

    c = read_s3d(altered(path, tmp_path, jy))
    np.testing.assert_allclose(c.err, ref.err, rtol=1e-6)
    odd = altered(path, tmp_path, lambda h: h["ERR"].header.set("BUNIT", "erg/s/cm2/um"),
                  "odd2_s3d.fits")
    with pytest.raises(CubeFormatError, match=r"ERR BUNIT='erg/s/cm2/um' cannot be converted"):
        read_s3d(odd)


def test_truncated_file_names_the_problem(base, tmp_path: Path) -> None:
    path, _ = base
    raw = path.read_bytes()
    cut = tmp_path / "cut_s3d.fits"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CubeFormatError, match=r"cut_s3d.fits: .*truncated"):
        read_s3d(cut)
    with pytest.raises(CubeFormatError, match=r"truncated"):
        read_s3d(cut, verify=False)


def test_gzipped_cube_reads(base, tmp_path: Path) -> None:
    path, ref = base
    gz = tmp_path / "cube_s3d.fits.gz"
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    c = read_s3d(gz)
    np.testing.assert_array_equal(c.flux, ref.flux)
    np.testing.assert_array_equal(c.wavelength_um, ref.wavelength_um)


def _descending(h: fits.HDUList) -> None:
    s = h["SCI"].header
    n = s["NAXIS3"]
    s["CRVAL3"] = s["CRVAL3"] + (n - s["CRPIX3"]) * s["CDELT3"]
    s["CRPIX3"], s["CDELT3"] = 1.0, -s["CDELT3"]
    for name in ("SCI", "ERR", "DQ", "WMAP"):
        h[name].data = h[name].data[::-1].copy()


def test_descending_wavelengths_are_read_in_increasing_order(base, tmp_path: Path) -> None:
    path, ref = base
    c = read_s3d(altered(path, tmp_path, _descending))
    np.testing.assert_allclose(c.wavelength_um, ref.wavelength_um, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(c.flux, ref.flux)
    np.testing.assert_array_equal(c.dq, ref.dq)
    np.testing.assert_array_equal(c.wmap, ref.wmap)
    # The header was turned with the data: sub-cubes and a written copy keep the wavelengths.
    sub = c.planes(10, 20)
    write_s3d(sub, tmp_path / "sub_s3d.fits")
    np.testing.assert_allclose(read_s3d(tmp_path / "sub_s3d.fits").wavelength_um,
                               ref.wavelength_um[10:20], rtol=0, atol=1e-9)


def test_descending_wave_table_is_read_in_increasing_order(tmp_path: Path) -> None:
    ref = replace(small_template(), wave_table=True)
    write_s3d(ref, tmp_path / "tab_s3d.fits")

    def flip(h: fits.HDUList) -> None:
        h["WCS-TABLE"].data["wavelength"][:] = h["WCS-TABLE"].data["wavelength"][:, ::-1]
        for name in ("SCI", "ERR", "DQ", "WMAP"):
            h[name].data = h[name].data[::-1].copy()

    c = read_s3d(altered(tmp_path / "tab_s3d.fits", tmp_path, flip))
    np.testing.assert_allclose(c.wavelength_um, ref.wavelength_um, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(c.flux, ref.flux)


def _set_raw_card(path: Path, key: str, value: str) -> None:
    raw = path.read_bytes()
    start = raw.index(key.ljust(8).encode() + b"= ")
    path.write_bytes(raw[:start + 10] + value.rjust(20).encode() + raw[start + 30:])


@pytest.mark.parametrize(("key", "raw"), [("CDELT3", "NaN"), ("CRVAL3", "'abc'"),
                                          ("CDELT3", "0.0")])
def test_bad_spectral_keywords_are_named(base, tmp_path: Path, key: str, raw: str) -> None:
    path, _ = base
    odd = altered(path, tmp_path, lambda h: h["SCI"].header.set(key, 12345.0))
    _set_raw_card(odd, key, raw)
    with pytest.raises(CubeFormatError, match=rf"odd_s3d.fits HDU SCI: {key}="):
        read_s3d(odd)


def test_wmap_of_another_shape_is_refused(base, tmp_path: Path) -> None:
    path, _ = base
    odd = altered(path, tmp_path, lambda h: setattr(h["WMAP"], "data", h["WMAP"].data[:2]))
    with pytest.raises(CubeFormatError, match=r"HDU WMAP has shape \(2, 15, 13\)"):
        read_s3d(odd)


def test_huge_and_non_ascii_headers_read(base, tmp_path: Path) -> None:
    path, ref = base

    def long_cards(h: fits.HDUList) -> None:
        h[0].header["TARGNAME"] = "RBH-1 " + "x" * 200  # a CONTINUE card
        for i in range(300):
            h[0].header.add_history(f"step {i} " + "y" * 60)

    odd = altered(path, tmp_path, long_cards)
    raw = bytearray(odd.read_bytes())
    i = raw.index(b"TELESCOP= 'JWST")
    raw[i + 11:i + 15] = "J\xe9\xe9T".encode("latin-1")
    odd.write_bytes(bytes(raw))
    c = read_s3d(odd)
    np.testing.assert_array_equal(c.flux, ref.flux)
    assert c.provenance["TARGNAME"].startswith("RBH-1 x")


# -- physics a referee checks on a synthetic cube --------------------------------------

@pytest.fixture(scope="module")
def wide() -> IFUCube:
    """The full G140M band on a small field, every voxel usable."""
    c = build_template((1447, 9, 9), (0.9703, 1.8900), tile_offset=0.0)
    return replace(c, mask=np.zeros(c.shape, dtype=bool))


def _line_flux(kind: str, cube: IFUCube, name: str) -> float:
    """The total flux (SB units x spaxels) of one line alone, from the model cube."""
    fm = ForwardModel.build(kind, cube, 0.964, psf=None, lines=get_lines([name]))
    model = np.asarray(fm.cube(fm.params({})), dtype=np.float64)
    w = cube.wavelength_um
    per = unit_factors(w, channel_edges_um(w), cube.unit)
    return float((model / per[:, None, None]).sum())


@pytest.mark.parametrize("kind", ["bowshock", "disk"])
def test_fixed_ratios_and_halpha_flux_in_the_cube(wide: IFUCube, kind: str) -> None:
    f = {n: _line_flux(kind, wide, n) for n in ("[NII]6585", "[NII]6550", "[OIII]5008",
                                                 "[OIII]4960", "Halpha")}
    assert f["[NII]6585"] / f["[NII]6550"] == pytest.approx(2.94, rel=1e-5)
    assert f["[OIII]5008"] / f["[OIII]4960"] == pytest.approx(2.98, rel=1e-5)
    fm = ForwardModel.build(kind, wide, 0.964, psf=None, lines=get_lines(["Halpha"]))
    total_in = float(np.asarray(fm.halpha_map(fm.params({})), dtype=np.float64).sum())
    assert f["Halpha"] == pytest.approx(total_in, rel=1e-5)


def test_lsf_fwhm_at_halpha_for_r_1000() -> None:
    lam = LINES_BY_NAME["Halpha"].observed_um(0.964)
    rp = ResolvingPower.linear(1000.0)
    fwhm_kms = C_KMS * float(rp.sigma_um(lam)) * 2.0 * np.sqrt(2.0 * np.log(2.0)) / lam
    assert fwhm_kms == pytest.approx(299.79, abs=0.1)


def test_disk_total_flux_does_not_depend_on_inclination() -> None:
    """Optically thin emission: the same disk face-on and edge-on has the same total flux."""
    c = build_template((40, 61, 61), (1.2800, 1.2800 + 0.000636 * 39), tile_offset=0.0)
    fm = ForwardModel.build("disk", c, 0.964, psf=None)
    totals = [float(np.asarray(fm.halpha_map(fm.params({"incl_deg": i, "h_r": 2.0,
                                                          "z0": 0.4})), dtype=np.float64).sum())
              for i in (0.0, 60.0, 90.0)]
    assert max(totals) / min(totals) - 1.0 < 0.015


def test_bowshock_toward_the_observer_is_blueshifted(wide: IFUCube) -> None:
    fm = ForwardModel.build("bowshock", wide, 0.964, psf=None, lines=get_lines(["Halpha"]))
    away = np.asarray(fm.velocity_field(fm.params({"incl_deg": 29.0, "v_far": 100.0})))
    toward = np.asarray(fm.velocity_field(fm.params({"incl_deg": -29.0, "v_far": -100.0})))
    np.testing.assert_allclose(toward, -away, atol=1e-3)
    assert away.max() > 300.0


# -- parameters ------------------------------------------------------------------------

def test_numpy_scalars_are_parameter_values() -> None:
    from exocube.ifu.params import check_params

    got = check_params("disk", {"incl_deg": np.float32(80.0), "v_sys": np.int64(20),
                                "sigma": np.array(35.0)})
    assert (got["incl_deg"], got["v_sys"], got["sigma"]) == (80.0, 20.0, 35.0)
    for bad in (np.array([1.0, 2.0]), np.bool_(True), "80", np.float64("nan")):
        with pytest.raises(ModelParameterError, match=r"incl_deg=.* is invalid: expected a "
                                                      r"finite number in deg"):
            check_params("disk", {"incl_deg": bad})


@pytest.mark.parametrize(("text", "match"), [
    ("[params]\nincl_deg = 120\n", r"p\.toml: incl_deg=120 is invalid: expected 0\.0 <= "
                                    r"incl_deg <= 90\.0 deg"),
    ("[params]\nincl = 80\n", r"p\.toml: incl=80 is invalid: expected a parameter of model "
                              r"'disk'. known: x0, y0, pa_deg, incl_deg"),
    ("[params]\nsigma = 'wide'\n", r"p\.toml: sigma='wide' is invalid: expected a finite "
                                   r"number in km/s"),
    ("[params]\nsigma =\n", r"params='.*p\.toml' is invalid: expected a readable TOML file"),
    ('model = "bowshock"\n[params]\n', r"p\.toml: model='bowshock' is invalid: expected "
                                       r"'disk'"),
])
def test_params_toml_errors_name_file_parameter_value_and_range(tmp_path: Path, text: str,
                                                                match: str) -> None:
    from exocube.ifu.params import load_params_toml

    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ModelParameterError, match=match):
        load_params_toml(path, "disk")


# -- HST drizzled images -----------------------------------------------------------------

def _drz(path: Path, photflam: object = 1.5e-19) -> Path:
    hdr = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 10.0,
                       "CRPIX2": 10.0, "CRVAL1": 150.0, "CRVAL2": 2.0, "CD1_1": -0.04 / 3600,
                       "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.04 / 3600, "BUNIT": "ELECTRONS/S",
                       "PHOTFLAM": photflam})
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(np.ones((20, 20), "f4"), hdr, name="SCI"),
                  fits.ImageHDU(np.ones((20, 20), "f4"), name="WHT")]).writeto(path)
    return path


def test_drizzled_bad_photflam_and_truncation_are_named(tmp_path: Path) -> None:
    from exocube.ifu.drizzled import read_drizzled

    with pytest.raises(CubeFormatError, match=r"x_drc.fits: PHOTFLAM='n/a' is not a positive"):
        read_drizzled(_drz(tmp_path / "x_drc.fits", photflam="n/a"))
    raw = _drz(tmp_path / "y_drc.fits").read_bytes()
    (tmp_path / "cut_drc.fits").write_bytes(raw[: len(raw) - 3000])
    with pytest.raises(CubeFormatError, match=r"cut_drc.fits: .*truncated"):
        read_drizzled(tmp_path / "cut_drc.fits", verify=False)


def test_a_cut_off_dq_is_not_read_as_a_missing_dq(base, tmp_path: Path) -> None:
    """Cut inside the DQ header: astropy drops the HDU with a warning; that is corruption."""
    path, _ = base
    raw = path.read_bytes()
    start = raw.index(b"EXTNAME = 'DQ")
    (tmp_path / "cut_s3d.fits").write_bytes(raw[: start + 200])
    with pytest.raises(CubeFormatError, match=r"cut_s3d.fits: the file is truncated or "
                                              r"corrupted"):
        read_s3d(tmp_path / "cut_s3d.fits", verify=False)


def test_cli_errors_print_brackets_as_written(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Rich markup must not eat '[params]' out of an error message."""
    from exocube.cli import main

    template = tmp_path / "t_s3d.fits"
    write_s3d(small_template(), template)
    bad = tmp_path / "p.toml"
    bad.write_text("foo = 1\n[params]\n")
    with pytest.raises(SystemExit) as exc:
        main(["ifu", "synth", "--model", "disk", "--params", str(bad), "--like", str(template),
              "--out", str(tmp_path / "o.fits")])
    assert exc.value.code == 1
    assert "only 'model' and a [params] table" in " ".join(capsys.readouterr().err.split())


# -- quick-look moments ------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [30.0, 400.0])
def test_moments_of_a_noiseless_line_in_mjy_per_sr(sigma: float) -> None:
    """Velocity unbiased by the per-frequency unit; intrinsic dispersion recovered exactly
    (the LSF and the channel width both taken out)."""
    from exocube.ifu.quicklook import moment_maps

    c = build_template((300, 5, 5), (1.2700, 1.2700 + 0.000636 * 299), tile_offset=0.0)
    assert str(c.unit) == "MJy / sr"
    fm = ForwardModel.build("bowshock", c, 0.964, psf=None, lines=get_lines(["Halpha"]),
                            window_kms=3000.0)
    p = fm.params({"v_bh": 0.0, "v_far": 0.0, "sigma": sigma, "v_sys": 0.0})
    cube = c.with_data(np.asarray(fm.cube(p)), np.full(c.shape, 1e-3, np.float32))
    maps = moment_maps(cube, LINES_BY_NAME["Halpha"], 0.964, half_width_kms=2500.0,
                       min_snr=None)
    assert np.nanmax(np.abs(maps.velocity)) < 0.05
    np.testing.assert_allclose(maps.dispersion_intrinsic, sigma, rtol=1e-3)


@pytest.mark.parametrize(("half_width", "z", "match"), [
    (-5.0, 0.964, r"half width -5.0 km/s; give a positive"),
    (20.0, 0.964, r"window of Halpha holds [01] channel"),
    (800.0, float("nan"), r"redshift z=nan"),
])
def test_line_windows_refuse_empty_windows(base, half_width: float, z: float,
                                           match: str) -> None:
    from exocube.errors import LineCoverageError

    _, cube = base
    with pytest.raises(LineCoverageError, match=match):
        cube.line_windows(get_lines(["Halpha"]), z, half_width)


def test_nan_instrument_settings_are_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """NaN PSF FWHM meant 'no PSF' and NaN R gave a cube of NaNs, both silently."""
    from exocube.cli import main
    from exocube.ifu.instrument import GaussianPSF

    with pytest.raises(ModelParameterError, match=r"psf=.* is invalid"):
        GaussianPSF(fwhm_arcsec=float("nan"))
    with pytest.raises(ModelParameterError, match=r"resolving_power=.* finite"):
        ResolvingPower.linear(float("nan"))
    template = tmp_path / "t_s3d.fits"
    write_s3d(small_template(), template)
    for option in ("--psf-fwhm", "--resolving-power"):
        with pytest.raises(SystemExit) as exc:
            main(["ifu", "synth", "--model", "disk", "--like", str(template), "--out",
                  str(tmp_path / "o.fits"), option, "nan"])
        assert exc.value.code == 1
        assert "is invalid" in capsys.readouterr().err
    assert not (tmp_path / "o.fits").exists()


def test_cli_moments_take_mask_flags(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A JUMP_DET voxel is kept by default and masked with --mask-flags (name or value)."""
    from exocube.cli import main

    c = small_template()
    dq = np.array(c.dq)
    dq[:, 7, 6] |= 4  # JUMP_DET through the Halpha window of one spaxel
    path = tmp_path / "c_s3d.fits"
    write_s3d(c.with_data(np.array(c.flux), np.array(c.err), dq), path)
    nan_at = []
    for flags in ([], ["--mask-flags", "DO_NOT_USE,NON_SCIENCE,JUMP_DET"],
                  ["--mask-flags", "513,4"]):
        with pytest.raises(SystemExit) as exc:
            main(["ifu", "moments", str(path), "--out", str(tmp_path / "m"), "--min-snr",
                  "0", "--no-png", *flags])
        assert exc.value.code == 0, capsys.readouterr().err
        capsys.readouterr()
        with fits.open(tmp_path / "m_Halpha_moments.fits") as hdul:
            nan_at.append(bool(np.isnan(hdul["FLUX"].data[7, 6])))
    assert nan_at == [False, True, True]


@pytest.mark.parametrize("unit", ["MJy/sr", "erg/(s cm2 um arcsec2)",
                                  "1e-17 erg/(s cm2 Angstrom arcsec2)"])
def test_line_flux_round_trip_in_any_surface_brightness_unit(unit: str) -> None:
    """Model -> cube in BUNIT -> moment-0 gives back the model's Halpha flux."""
    import astropy.units as u

    from exocube.ifu.quicklook import moment_maps

    c = replace(small_template(), unit=u.Unit(unit))
    fm = ForwardModel.build("disk", c, 0.964, psf=None, lines=get_lines(["Halpha"]))
    p = fm.params({})
    cube = c.with_data(np.asarray(fm.cube(p)), np.full(c.shape, 1e-30, np.float32))
    maps = moment_maps(cube, LINES_BY_NAME["Halpha"], 0.964, half_width_kms=800.0,
                       min_snr=None)
    total = float(np.asarray(fm.halpha_map(p), dtype=np.float64).sum())
    assert np.nansum(maps.flux) == pytest.approx(total, rel=1e-5)


def test_a_unit_without_solid_angle_names_the_cube(base, tmp_path: Path) -> None:
    path, _ = base

    def per_spaxel(h: fits.HDUList) -> None:
        for name in ("SCI", "ERR"):
            h[name].header["BUNIT"] = "erg/s/cm2/um"

    cube = read_s3d(altered(path, tmp_path, per_spaxel))
    with pytest.raises(CubeFormatError, match=r"odd_s3d.fits: BUNIT erg / \(s um cm2\) is not a "
                                              r"surface brightness density"):
        ForwardModel.build("disk", cube, 0.964, psf=None)
