"""The cube likelihood: per-voxel Gaussian over the fitted lines' channels, with a
per-spaxel polynomial continuum marginalised analytically.

For spaxel s, the data y (the channels of the fitted lines' windows), the model
m(theta), the inverse variances w = 1 / (f sigma^2) (0 on masked voxels; f the
error-inflation factor, below) and a continuum A c (Legendre polynomials of degree
``degree`` in wavelength, one set per contiguous segment of channels, coefficients
c ~ N(0, s^2 I)), the continuum is integrated out exactly (linear Gaussian):

    log L_s = -1/2 [ (r - A c^)^T W (r - A c^) + |c^|^2 / s^2 ]
              - 1/2 sum_good log(2 pi f sigma^2) - K log s - 1/2 log det M_s

with r = y - m(theta), M_s = A^T W_s A + I / s^2 and c^ = M_s^-1 A^T W_s r (the
continuum that maximises the integrand). M_s depends only on the mask and ERR, so
its inverse and log-determinant are computed once. The quadratic form is written as
the sum of the continuum-subtracted chi-square and the prior term (both positive)
rather than chi-square minus A^T W r M^-1 A^T W r, which in float32 would cancel on
a bright continuum.

The pointwise log-likelihood is per spaxel (the unit PSIS-LOO leaves out), since the
marginalised continuum couples a spaxel's channels.

Error inflation: cube building (resampling the IFU slices onto the sky grid) makes
the noise of neighbouring spaxels correlated, which a per-voxel Gaussian ignores.
:func:`error_inflation` estimates f = sum over spatial lags |dx|, |dy| <= max_lag of
the noise autocorrelation rho(dx, dy) (the variance of a mean over an area large
against the correlation length, relative to independent noise), from the
line-free channels: the second difference along wavelength, d = y_c - (y_{c-1} +
y_{c+1}) / 2, removes any continuum linear over three channels, and for noise whose
covariance is separable in wavelength and sky it keeps the spatial correlation
exactly. ``f`` multiplies every variance (clipped below at 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.polynomial import legendre

from exocube.errors import LineCoverageError, ModelParameterError
from exocube.ifu._jax import jnp
from exocube.ifu.cube import IFUCube
from exocube.ifu.forward import ForwardModel
from exocube.ifu.lines import Line


class LikelihoodData(NamedTuple):
    """The arrays of a likelihood (a pytree: arguments of the compiled sampler)."""

    y: jnp.ndarray  # (C, S) data, 0 where masked
    w: jnp.ndarray  # (C, S) inverse variance (inflated), 0 where masked
    basis: jnp.ndarray  # (C, K) continuum basis
    minv: jnp.ndarray  # (S, K, K) inverse of A^T W A + I / s^2
    const: jnp.ndarray  # (S,) the theta-independent terms of log L_s
    inv_s2: jnp.ndarray  # () 1 / s^2


@dataclass(frozen=True, eq=False)
class GaussianLikelihood:
    """The likelihood of one cube for one forward model's grid."""

    channels: np.ndarray  # (C,) plane indices of the fitted channels
    spaxel_iy: np.ndarray  # (S,) row of each used spaxel
    spaxel_ix: np.ndarray  # (S,) column
    segments: tuple[tuple[int, int], ...]  # (first, last + 1) positions in ``channels``
    degree: int
    inflation: float
    continuum_sd: float
    lines: tuple[str, ...]
    data: LikelihoodData

    def settings(self) -> dict:
        """What defines this likelihood (for provenance)."""
        return {"lines": list(self.lines), "continuum_degree": self.degree,
                "error_inflation": self.inflation, "continuum_sd": self.continuum_sd,
                "n_channels": int(self.channels.size), "n_spaxels": int(self.spaxel_iy.size)}

    def model_voxels(self, model_cube: jnp.ndarray) -> jnp.ndarray:
        """The model cube (n_wave, ny, nx) at the fitted voxels: (C, S)."""
        planes = model_cube[jnp.asarray(self.channels)]
        return planes[:, jnp.asarray(self.spaxel_iy), jnp.asarray(self.spaxel_ix)]

    def pointwise(self, model_cube: jnp.ndarray, data: LikelihoodData) -> jnp.ndarray:
        """log L_s of every used spaxel (S,), the continuum marginalised."""
        r = data.y - self.model_voxels(model_cube)
        chat = continuum_coefficients(r, data)
        rp = r - data.basis @ chat.T
        quad = jnp.sum(data.w * rp * rp, axis=0) + data.inv_s2 * jnp.sum(chat * chat, axis=1)
        return data.const - 0.5 * quad

    def log_likelihood(self, model_cube: jnp.ndarray, data: LikelihoodData) -> jnp.ndarray:
        return jnp.sum(self.pointwise(model_cube, data))

    def continuum(self, model_cube: jnp.ndarray, data: LikelihoodData) -> jnp.ndarray:
        """The conditional-mean continuum given the model, at the fitted voxels (C, S)."""
        r = data.y - self.model_voxels(model_cube)
        return data.basis @ continuum_coefficients(r, data).T


def continuum_coefficients(r: jnp.ndarray, data: LikelihoodData) -> jnp.ndarray:
    """c^ = M^-1 A^T W r per spaxel: (S, K)."""
    b = jnp.einsum("ck,cs->sk", data.basis, data.w * r)
    return jnp.einsum("skl,sl->sk", data.minv, b)


def fitted_channels(fm: ForwardModel) -> np.ndarray:
    """The sorted cube planes inside the forward model's line windows."""
    idx = [s.channels[s.valid > 0] for s in fm.blocks]
    return np.unique(np.concatenate(idx)).astype(np.int64)


def segments_of(channels: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Runs of consecutive plane indices, as (start, stop) positions in ``channels``."""
    breaks = np.flatnonzero(np.diff(channels) > 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [channels.size]])
    return tuple((int(a), int(b)) for a, b in zip(starts, stops, strict=True))


def continuum_basis(wave_um: np.ndarray, segments: tuple[tuple[int, int], ...],
                    degree: int) -> np.ndarray:
    """(C, n_segments (degree + 1)): Legendre P_0..P_degree on each segment, 0 elsewhere."""
    basis = np.zeros((wave_um.size, len(segments) * (degree + 1)))
    for j, (a, b) in enumerate(segments):
        w = wave_um[a:b]
        span = w[-1] - w[0]
        x = 2.0 * (w - w[0]) / span - 1.0 if span > 0 else np.zeros_like(w)
        basis[a:b, j * (degree + 1):(j + 1) * (degree + 1)] = legendre.legvander(x, degree)
    return basis


def check_lines_covered(cube: IFUCube, lines: list[Line], z: float) -> None:
    """:class:`LineCoverageError` naming each line whose observed wavelength is off the cube."""
    lo, hi = float(cube.wavelength_um[0]), float(cube.wavelength_um[-1])
    missing = [f"{ln.name} ({ln.observed_um(z):.4f} um)" for ln in lines
               if not lo <= ln.observed_um(z) <= hi]
    if missing:
        raise LineCoverageError(
            f"{cube.source or 'cube'}: wavelengths {lo:.4f}-{hi:.4f} um do not hold "
            f"{', '.join(missing)} at z={z}; fit lines inside the band (--lines), check the "
            "redshift, or use another cube")


def build_likelihood(cube: IFUCube, fm: ForwardModel, *, degree: int = 1,
                     inflation: float = 1.0, continuum_sd: float | None = None
                     ) -> GaussianLikelihood:
    """The likelihood of ``cube`` over the channels of ``fm``'s line windows.

    ``continuum_sd`` (cube units) is the prior sd of each Legendre coefficient; by
    default 10 x (|median SCI| + median ERR) over the fitted voxels, broad against any
    continuum the cube holds.
    """
    if degree < 0 or degree > 5:
        raise ModelParameterError("continuum_degree", degree, "0 <= degree <= 5")
    if not (math.isfinite(inflation) and inflation >= 1.0):
        raise ModelParameterError("error_inflation", inflation, "a finite factor >= 1")
    if tuple(cube.shape) != tuple(fm.shape):
        raise ModelParameterError("cube shape", cube.shape, f"the model's grid {fm.shape}")
    channels = fitted_channels(fm)
    good = ~np.asarray(cube.mask[channels])  # (C, ny, nx)
    used = good.any(axis=0)
    if not used.any():
        raise LineCoverageError(f"{cube.source or 'cube'}: every voxel of the fitted lines' "
                                f"channels ({', '.join(fm.line_names)}) is masked")
    iy, ix = np.nonzero(used)
    g = good[:, iy, ix]
    y = np.where(g, np.asarray(cube.flux[channels][:, iy, ix], np.float64), 0.0)
    sig = np.where(g, np.asarray(cube.err[channels][:, iy, ix], np.float64), 1.0)
    if continuum_sd is None:
        continuum_sd = 10.0 * (abs(float(np.median(y[g]))) + float(np.median(sig[g])))
    if not (math.isfinite(continuum_sd) and continuum_sd > 0):
        raise ModelParameterError("continuum_sd", continuum_sd, "a positive number")
    var = inflation * sig**2
    w = np.where(g, 1.0 / var, 0.0)
    segments = segments_of(channels)
    basis = continuum_basis(np.asarray(cube.wavelength_um[channels], np.float64), segments,
                            degree)
    k = basis.shape[1]
    m = np.einsum("ck,cs,cl->skl", basis, w, basis) + np.eye(k) / continuum_sd**2
    _sign, logdet = np.linalg.slogdet(m)
    const = (-0.5 * np.sum(np.where(g, np.log(2 * np.pi * var), 0.0), axis=0)
             - k * math.log(continuum_sd) - 0.5 * logdet)
    f32 = np.float32
    data = LikelihoodData(jnp.asarray(y, f32), jnp.asarray(w, f32), jnp.asarray(basis, f32),
                          jnp.asarray(np.linalg.inv(m), f32), jnp.asarray(const, f32),
                          jnp.asarray(1.0 / continuum_sd**2, f32))
    return GaussianLikelihood(channels, iy, ix, segments, degree, float(inflation),
                              float(continuum_sd), tuple(fm.line_names), data)


def residual_autocorrelation(z: np.ndarray, good: np.ndarray, max_lag: int) -> np.ndarray:
    """rho[dy + L, dx + L] of the normalised residuals z (planes, ny, nx) over good pairs."""
    z = np.where(good, z, 0.0)
    n = 2 * max_lag + 1
    rho = np.zeros((n, n))
    var = float(np.sum(z * z) / max(np.sum(good), 1))
    ny, nx = z.shape[1:]
    for dy in range(-max_lag, max_lag + 1):
        for dx in range(-max_lag, max_lag + 1):
            a = (slice(None), slice(max(0, -dy), ny - max(0, dy)),
                 slice(max(0, -dx), nx - max(0, dx)))
            b = (slice(None), slice(max(0, dy), ny - max(0, -dy)),
                 slice(max(0, dx), nx - max(0, -dx)))
            pairs = good[a] & good[b]
            npairs = int(np.sum(pairs))
            rho[dy + max_lag, dx + max_lag] = (
                float(np.sum(z[a] * z[b] * pairs)) / npairs / var if npairs else 0.0)
    return rho


def error_inflation(cube: IFUCube, exclude: np.ndarray, max_lag: int = 2,
                    min_planes: int = 5) -> float:
    """The variance inflation f from the line-free channels (see the module docstring).

    ``exclude`` are the plane indices of the line windows (not used); at least
    ``min_planes`` usable second-difference planes are required.
    """
    free = np.ones(cube.shape[0], dtype=bool)
    free[np.asarray(exclude, dtype=np.int64)] = False
    centre = np.flatnonzero(free[1:-1] & free[:-2] & free[2:]) + 1
    if centre.size < min_planes:
        raise LineCoverageError(
            f"{cube.source or 'cube'}: {centre.size} line-free channel triplets (needs >= "
            f"{min_planes}) to estimate the error inflation; give a factor instead")
    flux = np.asarray(cube.flux, np.float64)
    err = np.asarray(cube.err, np.float64)
    mask = np.asarray(cube.mask)
    d = flux[centre] - 0.5 * (flux[centre - 1] + flux[centre + 1])
    sd = np.sqrt(err[centre] ** 2 + 0.25 * (err[centre - 1] ** 2 + err[centre + 1] ** 2))
    good = ~(mask[centre] | mask[centre - 1] | mask[centre + 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(good, d / np.where(good, sd, 1.0), 0.0)
    rho = residual_autocorrelation(z, good, max_lag)
    return max(1.0, float(np.sum(rho)))
