"""The instrument: line-spread function from R(lambda), spatial PSF, output units.

LSF. The grating's resolving power R(lambda) gives a Gaussian LSF of
FWHM lambda / R, i.e. sigma_LSF = lambda / (R 2 sqrt(2 ln 2)). A line of
intrinsic dispersion sigma_v at centre mu has, after the LSF, a Gaussian of
sigma^2 = (mu sigma_v / c)^2 + sigma_LSF^2. Each channel k receives that
Gaussian integrated over its edges e_k, e_k+1 (not sampled at its centre):

    f_k = [erf((e_k+1 - mu) / (sqrt(2) sigma)) - erf((e_k - mu) / (sqrt(2) sigma))] / 2,

so the fractions of one line sum to one over the band (flux conservation) and
a line narrower than a channel is not lost between samples. R(lambda) for
NIRSpec G140M is about 1000 at 1.29 um and grows roughly linearly with
wavelength (JWST User Documentation, NIRSpec dispersers); the default is
R = 1000 (lambda / 1.2893 um). :meth:`ResolvingPower.from_fits` reads a
tabulated curve instead (e.g. the JDox ``jwst_nirspec_g140m_disp.fits`` with
columns WAVELENGTH and R).

PSF. A sum of circular Gaussians, component c of weight w_c and FWHM
s_c FWHM(lambda), FWHM(lambda) = FWHM_ref (lambda / lambda_ref)^p (p = 1:
diffraction-limited growth). The kernel of each channel is the Gaussian
integrated over each pixel (erf differences), normalised to unit sum, and
applied by FFT on a grid padded by 4 sigma on every side, so no flux wraps
into the field and the convolution conserves flux exactly up to rounding.

Units. The model's surface brightness is in SB_UNIT (1e-18 erg/s/cm^2/arcsec^2,
the line integral); channel k of width Delta lambda_k holds
SB f_k / Delta lambda_k, converted to the cube's BUNIT with astropy
(``spectral_density`` at the channel's wavelength for per-frequency units
such as MJy/sr).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from scipy.special import erf as np_erf

from exocube.errors import CubeFormatError, ModelParameterError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
SB_UNIT = u.Unit("1e-18 erg s-1 cm-2 arcsec-2")
HALPHA_RBH1_UM = 0.656461 * 1.964


@dataclass(frozen=True)
class ResolvingPower:
    """R(lambda) tabulated at ``wave_um`` (linear interpolation, flat beyond the ends)."""

    wave_um: tuple[float, ...]
    r: tuple[float, ...]

    def __post_init__(self) -> None:
        w, r = np.asarray(self.wave_um), np.asarray(self.r)
        if (w.size < 2 or w.size != r.size or not np.all(np.isfinite(w))
                or not np.all(np.isfinite(r)) or np.any(np.diff(w) <= 0) or np.any(r <= 0)):
            raise ModelParameterError("resolving_power", {"wave_um": self.wave_um, "r": self.r},
                                      "at least 2 finite increasing wavelengths with finite R > 0")

    @classmethod
    def linear(cls, r_ref: float = 1000.0, ref_um: float = HALPHA_RBH1_UM,
               wave_um: tuple[float, float] = (0.6, 5.5)) -> ResolvingPower:
        """R = r_ref (lambda / ref_um): a constant FWHM in wavelength, ref_um / r_ref."""
        return cls(wave_um, tuple(r_ref * w / ref_um for w in wave_um))

    @classmethod
    def from_fits(cls, path: str | Path) -> ResolvingPower:
        """A dispersion table with columns WAVELENGTH (um) and R (JDox layout)."""
        with fits.open(path) as hdul:
            table = next((h.data for h in hdul[1:] if getattr(h, "columns", None) is not None
                          and {"WAVELENGTH", "R"} <= {c.upper() for c in h.columns.names}),
                         None)
            if table is None:
                raise CubeFormatError(f"{path}: no table with WAVELENGTH and R columns")
            return cls(tuple(map(float, table["WAVELENGTH"])), tuple(map(float, table["R"])))

    def __call__(self, wave_um: np.ndarray | float) -> np.ndarray:
        return np.interp(wave_um, self.wave_um, self.r)

    def sigma_um(self, wave_um: np.ndarray | float) -> np.ndarray:
        """The Gaussian sigma of the LSF (um)."""
        return np.asarray(wave_um) / (self(wave_um) * FWHM_PER_SIGMA)


@dataclass(frozen=True)
class GaussianPSF:
    """A sum of circular Gaussians whose FWHM grows as (lambda / ref_um) ** power."""

    fwhm_arcsec: float = 0.15
    ref_um: float = HALPHA_RBH1_UM
    power: float = 1.0
    weights: tuple[float, ...] = (1.0,)
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        values = (self.fwhm_arcsec, self.ref_um, self.power, *self.weights, *self.scales)
        if not (all(math.isfinite(v) for v in values)
                and self.fwhm_arcsec > 0 and self.ref_um > 0 and len(self.weights) >= 1
                and len(self.weights) == len(self.scales) and min(self.weights) >= 0
                and sum(self.weights) > 0 and min(self.scales) > 0):
            raise ModelParameterError("psf", self, "finite values, fwhm_arcsec > 0, weights >= 0 "
                                      "(not all 0) "
                                      "and scales > 0, as many weights as scales")

    def sigmas_arcsec(self, wave_um: np.ndarray) -> np.ndarray:
        """(n_wave, n_components) Gaussian sigmas (arcsec)."""
        fwhm = self.fwhm_arcsec * (np.asarray(wave_um, dtype=np.float64) / self.ref_um
                                   ) ** self.power
        return fwhm[:, None] * np.asarray(self.scales)[None, :] / FWHM_PER_SIGMA

    def max_sigma_arcsec(self, wave_um: np.ndarray) -> float:
        return float(self.sigmas_arcsec(wave_um).max())

    def kernels_1d(self, wave_um: np.ndarray, n: int, pixel_arcsec: float) -> np.ndarray:
        """Per-wavelength pixel-integrated 1-D Gaussians on an FFT grid of n (wrapped)."""
        offs = np.fft.fftfreq(n, 1.0 / n)  # 0, 1, ..., -1 pixel offsets
        sig = self.sigmas_arcsec(wave_um) / pixel_arcsec  # (w, c)
        hi = (offs[None, None, :] + 0.5) / (np.sqrt(2) * sig[:, :, None])
        lo = (offs[None, None, :] - 0.5) / (np.sqrt(2) * sig[:, :, None])
        k = 0.5 * (np_erf(hi) - np_erf(lo))  # (w, c, n)
        return k / k.sum(axis=-1, keepdims=True)

    def otf(self, wave_um: np.ndarray, ny: int, nx: int, pixel_arcsec: float) -> np.ndarray:
        """(n_wave, ny, nx//2+1) transfer functions; each kernel sums to one (OTF(0) = 1)."""
        w = np.asarray(self.weights, dtype=np.float64)
        w = w / w.sum()
        ky = np.fft.fft(self.kernels_1d(wave_um, ny, pixel_arcsec), axis=-1)
        kx = np.fft.rfft(self.kernels_1d(wave_um, nx, pixel_arcsec), axis=-1)
        return np.einsum("c,wcy,wcx->wyx", w, ky, kx)


def channel_edges_um(wave_um: np.ndarray) -> np.ndarray:
    """Channel edges: midpoints between centres, the end channels mirrored (n + 1 values)."""
    w = np.asarray(wave_um, dtype=np.float64)
    mid = 0.5 * (w[1:] + w[:-1])
    return np.concatenate([[w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]])


def unit_factors(wave_um: np.ndarray, edges_um: np.ndarray, unit: u.UnitBase,
                 where: str = "") -> np.ndarray:
    """What one SB_UNIT of line flux entirely in a channel is in ``unit``, per channel."""
    width = np.diff(edges_um) * u.um
    density = (1.0 * SB_UNIT) / width  # erg/s/cm^2/arcsec^2/um
    wave = np.asarray(wave_um) * u.um
    try:
        return density.to_value(unit, equivalencies=u.spectral_density(wave))
    except u.UnitConversionError:
        pass
    try:  # spectral_density knows flux densities: move the solid angle out and back
        per_sr = (density * u.arcsec**2).to_value(unit * u.sr, u.spectral_density(wave))
        return per_sr * (1.0 * u.arcsec**2).to_value(u.sr)
    except u.UnitConversionError as exc:
        raise CubeFormatError(f"{where or 'cube'}: BUNIT {unit} is not a surface brightness "
                              "density (per wavelength or frequency, per solid angle, e.g. "
                              "MJy/sr or erg/s/cm2/um/arcsec2); models and moments cannot use "
                              "it: divide by the spaxel area and set BUNIT") from exc
