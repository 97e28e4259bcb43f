"""The cube likelihood: a NumPy reference, the continuum marginalisation against
numerical integration, masking, line coverage, and the error-inflation estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from exocube.errors import LineCoverageError
from exocube.ifu._jax import jax, jnp
from exocube.ifu.forward import ForwardModel
from exocube.ifu.likelihood import (
    build_likelihood,
    continuum_basis,
    error_inflation,
    fitted_channels,
    segments_of,
)
from exocube.ifu.lines import get_lines
from exocube.ifu.params import check_params
from exocube.ifu.template import build_template

SHAPE = (40, 5, 6)
WAVE = (1.278, 1.3028)  # Halpha and [NII] at z = 0.964


@pytest.fixture(scope="module")
def setup():
    cube = build_template(shape=SHAPE, wave_um=WAVE)
    fm = ForwardModel.build("disk", cube, 0.964, lines=get_lines(["Halpha", "[NII]6585"]))
    p = fm.params(check_params("disk", {"sb_halpha": 20.0}))
    model = np.asarray(fm.cube(p), np.float64)
    rng = np.random.default_rng(5)
    flux = model + 0.4 + 3.0 * (cube.wavelength_um[:, None, None] - 1.29) \
        + np.asarray(cube.err) * rng.standard_normal(SHAPE)
    dq = np.array(cube.dq)
    dq[fitted_channels(fm)[3], 2, 3] = 1  # DO_NOT_USE on one fitted voxel
    dq[:, 0, 0] = 1  # a whole spaxel masked
    return cube.with_data(flux, dq=dq), fm, p, model


def numpy_reference(cube, fm, model, degree, inflation, s):
    """log L by the textbook formula, spaxel by spaxel, in float64."""
    ch = fitted_channels(fm)
    basis = continuum_basis(cube.wavelength_um[ch], segments_of(ch), degree)
    total = 0.0
    for j in range(cube.shape[1]):
        for i in range(cube.shape[2]):
            good = ~cube.mask[ch, j, i]
            if not good.any():
                continue
            r = (cube.flux[ch, j, i] - model[ch, j, i])[good].astype(np.float64)
            var = inflation * cube.err[ch, j, i][good].astype(np.float64) ** 2
            a = basis[good]
            m = a.T @ (a / var[:, None]) + np.eye(a.shape[1]) / s**2
            b = a.T @ (r / var)
            total += (-0.5 * np.sum(r**2 / var) + 0.5 * b @ np.linalg.solve(m, b)
                      - 0.5 * np.sum(np.log(2 * np.pi * var)) - a.shape[1] * np.log(s)
                      - 0.5 * np.linalg.slogdet(m)[1])
    return total


@pytest.mark.parametrize("degree,inflation", [(0, 1.0), (1, 1.0), (2, 1.7)])
def test_log_likelihood_equals_the_numpy_reference(setup, degree, inflation):
    cube, fm, _p, model = setup
    like = build_likelihood(cube, fm, degree=degree, inflation=inflation, continuum_sd=3.0)
    got = float(jax.jit(like.log_likelihood)(jnp.asarray(model, jnp.float32), like.data))
    want = numpy_reference(cube, fm, model, degree, inflation, 3.0)
    assert got == pytest.approx(want, rel=2e-5, abs=0.05)
    assert like.spaxel_iy.size == SHAPE[1] * SHAPE[2] - 1  # the masked spaxel is left out
    # and the model-dependence: another model cube gives the reference's other value
    other = model * 1.3
    got2 = float(like.log_likelihood(jnp.asarray(other, jnp.float32), like.data))
    assert got2 == pytest.approx(numpy_reference(cube, fm, other, degree, inflation, 3.0),
                                 rel=2e-5, abs=0.05)
    assert got2 < got


def test_marginalisation_equals_numerical_integration():
    """One spaxel, 12 channels, a linear continuum (2 coefficients): log of the 2-D
    integral of likelihood x prior over the coefficients, by quadrature."""
    cube = build_template(shape=SHAPE, wave_um=WAVE)
    fm = ForwardModel.build("disk", cube, 0.964, lines=get_lines(["Halpha"]))
    ch = fitted_channels(fm)
    rng = np.random.default_rng(2)
    flux = np.zeros(SHAPE)
    flux[ch] = 0.3 + 0.1 * rng.standard_normal((ch.size, *SHAPE[1:]))
    err = np.full(SHAPE, 0.1)
    dq = np.ones(SHAPE, dtype=np.uint32)  # everything masked ...
    dq[:, 1, 1] = 0  # ... but one spaxel
    tiny = cube.with_data(flux, err, dq)
    s = 0.5
    like = build_likelihood(tiny, fm, degree=1, continuum_sd=s)
    got = float(like.log_likelihood(jnp.zeros(SHAPE), like.data))
    basis = continuum_basis(tiny.wavelength_um[ch], segments_of(ch), 1)
    y = flux[ch, 1, 1]

    def integrand(c1, c0):
        r = y - basis @ np.array([c0, c1])
        loglike = -0.5 * np.sum(r**2 / 0.01) - 0.5 * y.size * np.log(2 * np.pi * 0.01)
        logprior = -0.5 * (c0**2 + c1**2) / s**2 - np.log(2 * np.pi * s**2)
        return math.exp(loglike + logprior - got)  # scaled by the claimed answer

    value, _ = integrate.dblquad(integrand, 0.1, 0.5, -0.35, 0.35, epsabs=1e-10)
    assert value == pytest.approx(1.0, rel=2e-4)  # i.e. log of the integral == got


def test_masked_voxels_do_not_count(setup):
    cube, fm, _p, model = setup
    like = build_likelihood(cube, fm, continuum_sd=3.0)
    base = float(like.log_likelihood(jnp.asarray(model, jnp.float32), like.data))
    flux = np.array(cube.flux)
    flux[cube.mask] = 1e6  # any value (and DQ-flagged) at masked voxels
    other = build_likelihood(cube.with_data(flux, dq=cube.dq), fm, continuum_sd=3.0)
    assert float(other.log_likelihood(jnp.asarray(model, jnp.float32), other.data)) == base
    # ... while the same change on an unmasked fitted voxel moves it
    flux = np.array(cube.flux)
    flux[fitted_channels(fm)[3], 2, 2] += 1.0
    moved = build_likelihood(cube.with_data(flux, dq=cube.dq), fm, continuum_sd=3.0)
    assert float(moved.log_likelihood(jnp.asarray(model, jnp.float32), moved.data)) < base - 10


def test_gradient_and_vmap_through_the_forward_model(setup):
    cube, fm, p, _ = setup
    like = build_likelihood(cube, fm, continuum_sd=3.0)

    def loglik(v_sys):
        return like.log_likelihood(fm._cube({**p, "v_sys": v_sys}), like.data)

    g = float(jax.grad(loglik)(jnp.float32(0.0)))
    h = 0.5
    fd = (float(loglik(jnp.float32(h))) - float(loglik(jnp.float32(-h)))) / (2 * h)
    assert g == pytest.approx(fd, rel=0.05, abs=0.05)
    vs = jnp.asarray([-20.0, 0.0, 20.0], jnp.float32)
    batched = jax.vmap(loglik)(vs)
    assert np.allclose(np.asarray(batched), [float(loglik(v)) for v in vs], rtol=1e-5)
    assert int(np.argmax(np.asarray(batched))) == 1  # the truth is the best of the three


def test_a_cube_without_the_lines_is_refused():
    from exocube.ifu.likelihood import check_lines_covered

    cube = build_template(shape=SHAPE, wave_um=(1.40, 1.42))
    with pytest.raises(LineCoverageError, match=r"1\.4000-1\.4200 um do not hold "
                                                 r"Halpha \(1\.2893 um\)"):
        check_lines_covered(cube, get_lines(["Halpha"]), 0.964)


def _smoothed_noise(shape, kernel, seed):
    from scipy.ndimage import convolve

    rng = np.random.default_rng(seed)
    k2 = np.outer(kernel, kernel)
    noise = np.stack([convolve(p, k2, mode="wrap") for p in rng.standard_normal(shape)])
    return noise / math.sqrt(np.sum(k2**2))  # unit variance per voxel


@pytest.mark.parametrize("kernel,expected", [([1.0], 1.0), ([1.0, 1.0, 1.0], 9.0),
                                             ([0.5, 1.0, 0.5], 16.0 / 2.25)])
def test_error_inflation_recovers_the_correlation_of_smoothed_noise(kernel, expected):
    """Noise convolved with a separable kernel k has sum_lag rho = (sum k)^2 / sum k^2."""
    shape = (200, 30, 30)
    cube = build_template(shape=(shape[0], 30, 30), wave_um=WAVE)
    flux = 5.0 + 2.0 * cube.wavelength_um[:, None, None] + _smoothed_noise(shape, kernel, 1)
    noisy = cube.with_data(flux, np.ones(shape), np.zeros(shape, np.uint32))
    f = error_inflation(noisy, exclude=np.arange(80, 100), max_lag=2)
    assert f == pytest.approx(expected, rel=0.08)
