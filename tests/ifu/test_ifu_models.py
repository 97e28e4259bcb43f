"""Forward models: flux conservation of PSF and LSF, line centring, the disk's rotation
curve against galpy, the bow shock's tip jump, gradients, vmap, parameter errors."""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as apu
import numpy as np
import pytest
from ifu_helpers import Z, small_template

from exocube.errors import ModelParameterError
from exocube.ifu._jax import jax, jnp
from exocube.ifu.forward import ForwardModel
from exocube.ifu.instrument import GaussianPSF, ResolvingPower, channel_edges_um, unit_factors
from exocube.ifu.kinematics import tip_jump_kms
from exocube.ifu.lines import C_KMS, get_lines
from exocube.ifu.params import check_params
from exocube.ifu.potential import nfw_mass_scale, vc_mn_nfw

HALPHA = get_lines(["Halpha"])
# A wake covering the whole field at one velocity: the tip 6" south, moving south.
UNIFORM = {"x0": 0.0, "y0": -6.0, "pa_deg": 180.0, "sb_tip": 0.0, "sb_wake": 50.0,
           "wake_length": 100.0, "wake_width": 5.0, "v_far": 0.0, "wake_decline": 0.05,
           "v_sys": 123.4, "sigma": 40.0}


@pytest.fixture(scope="module")
def template():
    return small_template()


def spectral_flux(model: ForwardModel, cube: np.ndarray) -> np.ndarray:
    """Sum over channels of cube / (unit factor): the line surface brightness per spaxel."""
    factors = np.zeros(model.shape[0])
    for b in model.blocks:
        for ch, f, ok in zip(b.channels.ravel(), b.factors.ravel(), b.valid.ravel(),
                             strict=True):
            if ok:
                factors[ch] = f
    keep = factors > 0
    return (cube[keep] / factors[keep, None, None]).sum(axis=0)


def test_lsf_conserves_flux(template) -> None:
    model = ForwardModel.build("bowshock", template, Z, lines=HALPHA)
    p = model.params({**UNIFORM, "sb_tip": 30.0, "x0": 0.1, "y0": -0.2, "pa_deg": 40.0})
    cube = np.asarray(model.cube(p), dtype=np.float64)
    sb = np.asarray(model.halpha_map(p), dtype=np.float64)
    np.testing.assert_allclose(spectral_flux(model, cube), sb, rtol=1e-5, atol=1e-6 * sb.max())


def test_psf_conserves_flux(template) -> None:
    compact = {"sb_tip": 100.0, "r_tip": 0.05, "sb_wake": 0.0, "x0": 0.0, "y0": 0.0}
    flat = ForwardModel.build("bowshock", template, Z, lines=HALPHA)
    blurred = ForwardModel.build("bowshock", template, Z, lines=HALPHA, psf=GaussianPSF())
    a = np.asarray(flat.cube(flat.params(compact)), dtype=np.float64)
    b = np.asarray(blurred.cube(blurred.params(compact)), dtype=np.float64)
    assert abs(b.sum() / a.sum() - 1.0) < 1e-5
    assert b.max() < 0.8 * a.max()  # the PSF did spread the light


def test_psf_kernels_are_normalised_and_grow_with_wavelength() -> None:
    psf = GaussianPSF(fwhm_arcsec=0.15, weights=(0.8, 0.2), scales=(1.0, 3.0))
    otf = psf.otf(np.array([1.0, 1.8]), 32, 32, 0.1)
    np.testing.assert_allclose(otf[:, 0, 0].real, 1.0, atol=1e-12)
    k = psf.kernels_1d(np.array([1.0, 1.8]), 32, 0.1)
    assert k[1, 0, 0] < k[0, 0, 0]  # wider at the longer wavelength


def test_noiseless_line_is_centred_on_its_velocity(template) -> None:
    model = ForwardModel.build("bowshock", template, Z, lines=HALPHA)
    cube = np.asarray(model.cube(model.params(UNIFORM)), dtype=np.float64)
    lam0 = HALPHA[0].observed_um(Z)
    v = C_KMS * (template.wavelength_um / lam0 - 1.0)
    window = np.abs(v - 123.4) < 1500
    spec = cube[window]
    centroid = (spec * v[window, None, None]).sum(0) / spec.sum(0)
    assert np.max(np.abs(centroid - 123.4)) < 1.0


def test_line_ratios_follow_the_parameters(template) -> None:
    model = ForwardModel.build("bowshock", template, Z)
    assert model.line_names == ["[NII]6550", "Halpha", "[NII]6585", "[SII]6718", "[SII]6733"]
    p = model.params({**UNIFORM, "log_nii_ha": -0.5, "log_sii_ha": -0.2, "sii_ratio": 1.2})
    (block,) = model.blocks  # these lines need the same number of channels
    (planes,) = model.line_planes(p)
    planes = np.asarray(planes, dtype=np.float64)  # (L, K, ny, nx)
    sb = (planes / block.factors[:, :, None, None]).sum(axis=1)[:, 7, 6]
    per_line = dict(zip(model.line_names, sb, strict=True))
    ha = per_line["Halpha"]
    assert ha == pytest.approx(float(model.halpha_map(p)[7, 6]), rel=1e-5)
    assert per_line["[NII]6585"] / ha == pytest.approx(10**-0.5, rel=1e-5)
    assert per_line["[NII]6585"] / per_line["[NII]6550"] == pytest.approx(2.94, rel=1e-5)
    sii = per_line["[SII]6718"] + per_line["[SII]6733"]
    assert sii / ha == pytest.approx(10**-0.2, rel=1e-5)
    assert per_line["[SII]6718"] / per_line["[SII]6733"] == pytest.approx(1.2, rel=1e-5)
    # and the cube is the sum of the line windows (close lines overlap and add)
    cube = np.asarray(model.cube(p), dtype=np.float64)
    total = np.zeros_like(cube)
    np.add.at(total, block.channels.ravel(), planes.reshape(-1, *cube.shape[1:]))
    np.testing.assert_allclose(cube, total, rtol=1e-5, atol=1e-9)


def test_disk_circular_velocity_matches_galpy() -> None:
    from galpy.potential import MiyamotoNagaiPotential, NFWPotential, vcirc

    mass, a, b, vmax, rs = 3e9, 2.5, 1.2, 105.0, 10.0
    r = np.linspace(0.2, 40.0, 60)
    units = {"ro": 8.0 * apu.kpc, "vo": 220.0 * apu.km / apu.s}
    halo = NFWPotential(amp=float(nfw_mass_scale(vmax, rs)) * apu.Msun, a=rs * apu.kpc, **units)
    pots = MiyamotoNagaiPotential(amp=mass * apu.Msun, a=a * apu.kpc, b=b * apu.kpc,
                                  **units) + halo
    oracle = np.array([vcirc(pots, ri / 8.0, ro=8.0, vo=220.0, quantity=True).to_value(
        apu.km / apu.s) for ri in r])
    ours = np.asarray(vc_mn_nfw(jnp.asarray(r), mass, a, b, vmax, rs))
    np.testing.assert_allclose(ours, oracle, rtol=1e-3)
    # the halo's own peak is vmax (galpy's vmax of the NFW component alone)
    assert halo.vmax(quantity=True).to_value(apu.km / apu.s) == pytest.approx(vmax, rel=1e-3)


def test_bowshock_velocity_jump_across_the_tip(template) -> None:
    """Tip between two spaxel rows 0.1 arcsec apart, motion due north (PA 0)."""
    values = {"x0": 0.0, "y0": 0.05, "pa_deg": 0.0, "v_bh": 954.0, "incl_deg": 29.0,
              "compression": 4.0, "shock_width": 0.002, "wake_decline": 50.0,
              "v_far": 0.0, "sb_tip": 40.0, "r_tip": 0.3, "sb_wake": 0.0, "sigma": 50.0}
    model = ForwardModel.build("bowshock", template, Z, lines=HALPHA)
    p = model.params(values)
    cube = np.asarray(model.cube(p), dtype=np.float64)
    v = C_KMS * (template.wavelength_um / HALPHA[0].observed_um(Z) - 1.0)
    centroid = (cube * v[:, None, None]).sum(0) / cube.sum(0)
    row_ahead, row_behind = 8, 7  # y = +0.1 (ahead of the tip) and y = 0.0 (behind it)
    assert template.y_arcsec[row_ahead, 6] == pytest.approx(0.1)
    jump = centroid[row_behind, 6] - centroid[row_ahead, 6]
    analytic = 0.75 * 954.0 * math.sin(math.radians(29.0))
    assert float(tip_jump_kms(p)) == pytest.approx(analytic, rel=1e-6)
    # behind the tip the decline has acted over 0.05" of a 50" e-folding length: 1e-3
    assert jump == pytest.approx(analytic, abs=0.5)


@pytest.mark.parametrize("kind", ["bowshock", "disk", "disk_arctan"])
def test_gradient_is_finite_for_every_parameter(template, kind: str) -> None:
    model = ForwardModel.build(kind, template, Z, psf=GaussianPSF(), n_los=3)
    p = model.params({"y0": 0.05, "x0": -0.03})
    weights = jnp.asarray(np.random.default_rng(0).normal(size=template.shape), jnp.float32)

    def loss(q):
        return jnp.sum(model._cube(q) * weights)

    grads = jax.jit(jax.grad(loss))(p)
    assert set(grads) == set(p)
    bad = [k for k, g in grads.items() if not np.isfinite(float(g))]
    assert not bad
    assert float(grads["x0"]) != 0.0 and float(grads["v_sys"]) != 0.0


def test_vmap_over_parameter_sets(template) -> None:
    model = ForwardModel.build("disk", template, Z, n_los=7)
    a, b = model.params({"v_sys": -50.0}), model.params({"v_sys": 80.0, "incl_deg": 70.0})
    batch = {k: jnp.stack([a[k], b[k]]) for k in a}
    out = jax.vmap(model.cube)(batch)
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(model.cube(b)), rtol=2e-5,
                               atol=1e-7)


def test_parameter_errors_name_the_parameter() -> None:
    with pytest.raises(ModelParameterError, match="warp_factor=9 is invalid"):
        check_params("bowshock", {"warp_factor": 9})
    with pytest.raises(ModelParameterError, match=r"incl_deg=120\.0 is invalid: expected 0\.0 "
                                                  r"<= incl_deg <= 90\.0 deg"):
        check_params("disk", {"incl_deg": 120.0})
    with pytest.raises(ModelParameterError, match="v_bh=nan"):
        check_params("bowshock", {"v_bh": float("nan")})
    with pytest.raises(ModelParameterError, match="model='spiral'"):
        check_params("spiral", {})


def test_unit_factors_mjy_per_sr() -> None:
    wave = np.array([1.289, 1.2896])
    edges = channel_edges_um(wave)
    f = unit_factors(wave, edges, apu.MJy / apu.sr)
    # 1e-18 erg/s/cm2/arcsec2 over a 0.0006 um channel, as F_nu per sr, by hand:
    nu_width = C_KMS * 1e9 * 0.0006 / 1.289**2  # Hz (c in um/s)
    by_hand = 1e-18 / nu_width / (1 / 206264.806**2) / 1e-17
    assert f[0] == pytest.approx(by_hand, rel=1e-6)


def test_resolving_power_default_is_about_1000_at_halpha() -> None:
    r = ResolvingPower.linear()
    assert float(r(0.656461 * (1 + Z))) == pytest.approx(1000.0)
    fwhm_kms = C_KMS / float(r(1.2893))
    assert 290 < fwhm_kms < 310


def test_velocities_beyond_the_window_are_refused(template) -> None:
    model = ForwardModel.build("bowshock", template, Z, lines=HALPHA)
    with pytest.raises(ModelParameterError, match=r"within the model's window of \+-1500"):
        model.params({"v_sys": 900.0})
    wide = ForwardModel.build("bowshock", template, Z, lines=HALPHA, window_kms=2500.0)
    assert float(wide.params({"v_sys": 900.0})["v_sys"]) == 900.0


def test_lines_outside_the_band_are_named(template) -> None:
    from exocube.errors import LineCoverageError

    with pytest.raises(LineCoverageError, match=r"do not cover \[SIII\]9533"):
        ForwardModel.build("disk", template, Z, lines=get_lines(["Halpha", "[SIII]9533"]))
    with pytest.raises(LineCoverageError, match="no model line falls in"):
        ForwardModel.build("disk", template, 3.0)


def test_disk_model_rotates_on_galpy_circular_velocity(template) -> None:
    """Edge-on, the line-of-sight node through the mid-plane tangent point moves at v_c(R)."""
    from galpy.potential import MiyamotoNagaiPotential, NFWPotential, vcirc

    model = ForwardModel.build("disk", template, Z, n_los=9)
    p = model.params({"incl_deg": 90.0, "pa_deg": 90.0, "v_sys": 0.0})  # major axis east
    _, v = model.fields(p)
    mid = np.asarray(v[4])  # u = 0: l = 0, R = |xi|
    xi_kpc = np.asarray(model.grid.x) * model.kpc_per_arcsec  # PA 90: xi is the east offset
    row = mid.shape[0] // 2
    r = np.abs(xi_kpc[row])
    pf = {k: float(val) for k, val in p.items()}
    units = {"ro": 8.0 * apu.kpc, "vo": 220.0 * apu.km / apu.s}
    pots = (MiyamotoNagaiPotential(amp=10 ** pf["log_m_disk"] * apu.Msun,
                                   a=pf["a_disk"] * apu.kpc, b=pf["b_disk"] * apu.kpc, **units)
            + NFWPotential(amp=float(nfw_mass_scale(pf["vmax_halo"], pf["rs_halo"]))
                           * apu.Msun, a=pf["rs_halo"] * apu.kpc, **units))
    eta = np.asarray(model.grid.y[row]) * model.kpc_per_arcsec  # minor-axis offset (kpc)
    keep = (r > 0.3) & (np.abs(eta) < 1e-9)
    assert keep.sum() >= 5
    oracle = np.array([vcirc(pots, ri / 8.0, ro=8.0, vo=220.0, quantity=True).to_value(
        apu.km / apu.s) for ri in r[keep]])
    np.testing.assert_allclose(np.abs(mid[row][keep]), oracle, rtol=1e-3)
    assert np.all(np.sign(mid[row][keep]) == np.sign(xi_kpc[row][keep]))


def test_oversampled_grid_conserves_flux_and_converges(template) -> None:
    source = {"sb_tip": 100.0, "r_tip": 0.12, "sb_wake": 0.0, "x0": 0.03, "y0": -0.02}
    fine = ForwardModel.build("bowshock", template, Z, lines=HALPHA, oversample=3)
    fine_psf = ForwardModel.build("bowshock", template, Z, lines=HALPHA, oversample=3,
                                  psf=GaussianPSF())
    coarse = ForwardModel.build("bowshock", template, Z, lines=HALPHA)
    a = np.asarray(fine.cube(fine.params(source)), np.float64)
    b = np.asarray(fine_psf.cube(fine_psf.params(source)), np.float64)
    c = np.asarray(coarse.cube(coarse.params(source)), np.float64)
    assert abs(b.sum() / a.sum() - 1.0) < 1e-5
    # averaging 3 x 3 sub-pixels of a Gaussian knot changes the total by well under 1 %
    assert abs(a.sum() / c.sum() - 1.0) < 0.01
    assert fine.grid.x.shape == (template.shape[1] * 3, template.shape[2] * 3)


def test_resolving_power_from_a_dispersion_table(tmp_path: Path) -> None:
    from astropy.io import fits

    wave = np.linspace(0.9, 1.9, 11)
    cols = [fits.Column(name="WAVELENGTH", format="D", array=wave),
            fits.Column(name="DLDS", format="D", array=np.full(11, 6e-4)),
            fits.Column(name="R", format="D", array=700 + 500 * (wave - 0.9))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(
        tmp_path / "disp.fits")
    r = ResolvingPower.from_fits(tmp_path / "disp.fits")
    assert float(r(1.4)) == pytest.approx(950.0)
    assert float(r.sigma_um(1.4)) == pytest.approx(1.4 / 950.0 / 2.3548200450309493)
