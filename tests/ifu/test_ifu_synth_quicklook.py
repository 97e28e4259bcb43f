"""Synthetic cubes (footprint, seeded noise, truth sidecar, full GO-3149 size) and the
quick-look products (moment maps against the model's velocity field, PV diagrams)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from ifu_helpers import Z, small_template

from exocube.errors import ModelParameterError
from exocube.ifu.cube import read_s3d, write_s3d
from exocube.ifu.forward import ForwardModel
from exocube.ifu.lines import get_lines
from exocube.ifu.quicklook import (
    moment_maps,
    plot_moments,
    plot_pv,
    pv_diagram,
    write_moments,
    write_pv,
)
from exocube.ifu.synth import synthesize, write_synth
from exocube.ifu.template import GO3149_SHAPE, build_template

HALPHA = get_lines(["Halpha"])[0]
DISK = {"pa_deg": 0.0, "incl_deg": 80.0, "sb_halpha": 40.0, "h_r": 2.0, "z0": 0.8,
        "log_nii_ha": -3.0, "log_sii_ha": -3.0}


@pytest.fixture(scope="module")
def template():
    return small_template()


def test_synth_keeps_footprint_and_is_seeded(template, tmp_path: Path) -> None:
    a = synthesize("disk", DISK, template, snr=10.0, seed=7)
    b = synthesize("disk", DISK, template, snr=10.0, seed=7)
    c = synthesize("disk", DISK, template, snr=10.0, seed=8)
    np.testing.assert_array_equal(a.cube.flux, b.cube.flux)
    assert not np.array_equal(np.nan_to_num(a.cube.flux), np.nan_to_num(c.cube.flux))
    np.testing.assert_array_equal(np.isnan(a.cube.flux), template.mask)
    np.testing.assert_array_equal(a.cube.dq, template.dq)
    good = ~template.mask
    peak = np.max(a.model[good] / a.cube.err[good])
    assert peak == pytest.approx(10.0, rel=1e-5)
    resid = (a.cube.flux[good] - a.model[good]) / a.cube.err[good]
    assert abs(resid.mean()) < 0.05 and resid.std() == pytest.approx(1.0, abs=0.05)
    path, truth_path = write_synth(a, tmp_path / "disk_s3d.fits")
    back = read_s3d(path)
    np.testing.assert_array_equal(back.flux, a.cube.flux)
    truth = json.loads(truth_path.read_text())
    assert truth["model"] == "disk" and truth["noise"]["seed"] == 7
    assert truth["params"]["incl_deg"] == 80.0 and truth["template"]["shape"] == [126, 15, 13]
    assert fits.getheader(path)["EXOMODEL"] == "disk"


def test_synth_bad_noise_inputs(template) -> None:
    with pytest.raises(ModelParameterError, match="snr=-1"):
        synthesize("bowshock", {}, template, snr=-1.0)
    with pytest.raises(ModelParameterError, match="model with flux inside the footprint"):
        synthesize("bowshock", {"sb_tip": 0.0, "sb_wake": 0.0}, template, snr=5.0)


def test_full_size_go3149_template_synth(tmp_path: Path) -> None:
    tpl = build_template()
    assert tpl.shape == GO3149_SHAPE == (1447, 53, 49)
    assert tpl.mask.mean() == pytest.approx(0.46, abs=0.02)
    assert tpl.wavelength_um[0] == pytest.approx(0.9703) and tpl.wavelength_um[-1] == (
        pytest.approx(1.89))
    assert np.median(np.diff(tpl.wavelength_um)) == pytest.approx(0.000636, rel=1e-3)
    assert np.nanmedian(tpl.err) == pytest.approx(0.084, rel=1e-3)
    assert tpl.wmap.max() == 46
    np.testing.assert_array_equal(tpl.dq[tpl.mask], 513)
    path = write_s3d(tpl, tmp_path / "go3149_template_s3d.fits")
    res = synthesize("bowshock", {}, read_s3d(path), snr=20.0, seed=1)
    assert res.cube.shape == GO3149_SHAPE
    assert set(res.truth["lines"]) >= {"[OIII]5008", "Halpha", "[SIII]9533"}


def test_moment1_of_noiseless_model_is_its_velocity_field(template) -> None:
    model = ForwardModel.build("disk", template, Z, lines=[HALPHA])
    p = model.params(DISK)
    clean = template.with_data(np.asarray(model.cube(p)), np.ones(template.shape, np.float32),
                               np.zeros(template.shape, np.uint32))
    maps = moment_maps(clean, HALPHA, Z, half_width_kms=1200.0)
    vf = np.asarray(model.velocity_field(p))
    bright = np.asarray(model.halpha_map(p)) > 0.01 * float(np.max(model.halpha_map(p)))
    assert bright.sum() > 50
    assert np.max(np.abs(maps.velocity[bright] - vf[bright])) < 1.0
    assert np.ptp(vf[bright]) > 100  # a real rotation field, not a constant
    np.testing.assert_allclose(maps.flux[bright], np.asarray(model.halpha_map(p))[bright],
                               rtol=1e-4)


def test_moments_and_pv_products(template, tmp_path: Path) -> None:
    res = synthesize("bowshock", {"pa_deg": 0.0, "y0": 0.3}, template, snr=30.0, seed=3)
    maps = moment_maps(res.cube, HALPHA, Z, min_snr=3.0)
    assert np.isnan(maps.velocity[template.mask.any(axis=0)]).all()
    written = write_moments(maps, res.cube, tmp_path / "m.fits")
    with fits.open(written) as hdul:
        assert [h.name for h in hdul][1:] == ["FLUX", "FLUX_ERR", "VELOCITY", "DISPERSION",
                                               "DISP_INT"]
        assert hdul["VELOCITY"].header["BUNIT"] == "km/s"
    assert plot_moments(maps, res.cube, tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    pv = pv_diagram(res.cube, HALPHA, Z, pa_deg=180.0, slit_width_arcsec=0.3,
                    centre_arcsec=(0.0, 0.3))
    assert pv.data.shape == (pv.velocity_kms.size, pv.offset_arcsec.size)
    # the wake trails south (PA 180): positive offsets are behind the tip, redshifted
    behind = pv.data[:, pv.offset_arcsec > 0.2]
    centroid = np.nansum(behind * pv.velocity_kms[:, None]) / np.nansum(behind)
    assert 150 < centroid < 400
    with fits.open(write_pv(pv, res.cube, tmp_path / "pv.fits")) as hdul:
        assert hdul[0].header["CTYPE2"] == "VOPT" and hdul[0].data.shape == pv.data.shape
    assert plot_pv(pv, tmp_path / "pv.png").stat().st_size > 1000


def test_sideband_continuum_is_subtracted(template) -> None:
    model = ForwardModel.build("bowshock", template, Z, lines=[HALPHA])
    p = model.params({"sb_tip": 60.0, "r_tip": 0.4})
    line = np.asarray(model.cube(p))
    ones = np.ones(template.shape, np.float32)
    zeros = np.zeros(template.shape, np.uint32)
    plain = moment_maps(template.with_data(line, ones, zeros), HALPHA, Z, half_width_kms=600.0)
    with_cont = template.with_data(line + 0.7, ones, zeros)
    sub = moment_maps(with_cont, HALPHA, Z, half_width_kms=600.0, continuum="sidebands")
    bright = plain.flux > 0.1 * np.nanmax(plain.flux)
    np.testing.assert_allclose(sub.velocity[bright], plain.velocity[bright], atol=0.5)
    np.testing.assert_allclose(sub.flux[bright], plain.flux[bright], rtol=1e-3)
