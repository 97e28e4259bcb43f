"""Forward models: parameters -> a model cube on a real cube's grid, in JAX.

:class:`ForwardModel` is built once for a cube's grid (wavelengths, spaxel
offsets, unit), a redshift and an instrument; everything that does not depend
on the parameters (line windows, channel edges relative to each line, LSF
widths, PSF transfer functions, unit factors) is precomputed in numpy. Its
:meth:`~ForwardModel.cube` is a jit-compiled pure function of a parameter
dict, differentiable (``jax.grad``) and batchable (``jax.vmap``).

Steps, per line l of the band (:func:`exocube.ifu.lines.lines_in_band`):

1. the model's sky fields (:mod:`exocube.ifu.kinematics`) give Halpha
   surface brightness and velocity per component, on the spaxel grid refined
   ``oversample`` times and padded for the PSF;
2. the line's flux is Halpha times its ratio (:mod:`exocube.ifu.params`);
3. its spectrum in the ``window_kms`` channels around the line is the
   LSF-broadened Gaussian integrated over each channel's edges
   (:mod:`exocube.ifu.instrument`);
4. each channel plane is convolved with that wavelength's PSF by FFT, cropped
   to the field and averaged back to spaxels;
5. converted to the cube's unit and added into the full cube (overlapping
   windows of close lines add).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from scipy.fft import next_fast_len

from exocube.errors import LineCoverageError, ModelParameterError
from exocube.ifu._jax import erf, jax, jnp
from exocube.ifu.cube import IFUCube
from exocube.ifu.instrument import GaussianPSF, ResolvingPower, channel_edges_um, unit_factors
from exocube.ifu.kinematics import (
    bowshock_fields,
    disk_arctan_fields,
    disk_fields,
    tip_jump_kms,
)
from exocube.ifu.lines import C_KMS, LINES_BY_NAME, Line, check_covered, lines_in_band
from exocube.ifu.params import check_params, spec_for
from exocube.ifu.potential import vc_arctan, vc_mn_nfw

DEFAULT_WINDOW_KMS = {"bowshock": 1500.0, "disk": 1000.0, "disk_arctan": 1000.0}


def kpc_per_arcsec(z: float) -> float:
    """Proper transverse scale at ``z`` in astropy's Planck18 cosmology."""
    from astropy.cosmology import Planck18

    return float(Planck18.kpc_proper_per_arcmin(z).to_value(u.kpc / u.arcmin) / 60.0)


def line_ratio_expr(line: Line, p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """Flux of ``line`` relative to Halpha from the line parameters."""
    if line.tied_to is not None:
        return line.ratio * line_ratio_expr(LINES_BY_NAME[line.tied_to], p)
    free = {"Halpha": None, "[OIII]5008": "log_oiii_ha", "[NII]6585": "log_nii_ha",
            "[OI]6302": "log_oi_ha", "[SIII]9533": "log_siii_ha"}
    if line.name in free:
        key = free[line.name]
        return jnp.asarray(1.0) if key is None else 10.0 ** p[key]
    if line.name in ("[SII]6718", "[SII]6733"):
        q = p["sii_ratio"]
        share = q / (1.0 + q) if line.name == "[SII]6718" else 1.0 / (1.0 + q)
        return 10.0 ** p["log_sii_ha"] * share
    raise LineCoverageError(f"line {line.name} has no flux parameter in the models; leave it "
                            "out of the line list")


def velocity_reach(kind: str, p: Mapping[str, float]) -> float:
    """The largest |line-of-sight velocity| (km/s) the parameters can produce."""
    if kind == "bowshock":
        jump = float(tip_jump_kms(p))
        return abs(p["v_sys"]) + max(abs(jump), abs(p["v_far"]))
    r = np.linspace(0.0, 200.0, 2001)
    if kind == "disk":
        vc = vc_mn_nfw(r, 10.0 ** p["log_m_disk"], p["a_disk"], p["b_disk"], p["vmax_halo"],
                       p["rs_halo"])
    else:
        vc = vc_arctan(r, p["vmax"], p["r_turn"])
    return abs(p["v_sys"]) + float(np.max(vc)) * math.sin(math.radians(p["incl_deg"]))


@dataclass(frozen=True)
class SpatialGrid:
    """The refined, padded sky grid the fields are evaluated on."""

    x: np.ndarray
    y: np.ndarray
    oversample: int
    pad: tuple[int, int, int, int]  # y low, y high, x low, x high (fine pixels)
    fov: tuple[int, int]  # ny, nx of the cube

    @classmethod
    def for_cube(cls, cube: IFUCube, oversample: int, pad: int) -> SpatialGrid:
        ny, nx = cube.shape[1:]
        xa, ya = cube.x_arcsec, cube.y_arcsec
        # The TAN offsets are linear in pixel index: extend that map to sub-pixels and pads.
        dxi = (xa[0, 1] - xa[0, 0]) if nx > 1 else 0.0
        dxj = (xa[1, 0] - xa[0, 0]) if ny > 1 else 0.0
        dyi = (ya[0, 1] - ya[0, 0]) if nx > 1 else 0.0
        dyj = (ya[1, 0] - ya[0, 0]) if ny > 1 else 0.0
        fy, fx = ny * oversample, nx * oversample
        big_ny = next_fast_len(fy + 2 * pad, real=True) if pad else fy
        big_nx = next_fast_len(fx + 2 * pad, real=True) if pad else fx
        jj = (np.arange(big_ny) - pad + 0.5) / oversample - 0.5
        ii = (np.arange(big_nx) - pad + 0.5) / oversample - 0.5
        gj, gi = np.meshgrid(jj, ii, indexing="ij")
        x = xa[0, 0] + dxi * gi + dxj * gj
        y = ya[0, 0] + dyi * gi + dyj * gj
        return cls(x, y, oversample, (pad, big_ny - fy - pad, pad, big_nx - fx - pad), (ny, nx))

    def to_spaxels(self, planes: jnp.ndarray) -> jnp.ndarray:
        """Crop the field from (..., NY, NX) and average sub-pixels: (..., ny, nx)."""
        (py, _, px, _), (ny, nx), s = self.pad, self.fov, self.oversample
        crop = planes[..., py:py + ny * s, px:px + nx * s]
        if s == 1:
            return crop
        return crop.reshape(*crop.shape[:-2], ny, s, nx, s).mean(axis=(-3, -1))


@dataclass(frozen=True)
class LineSetup:
    """Static per-line arrays, stacked over the L lines of the band."""

    lines: tuple[Line, ...]
    observed_um: np.ndarray  # (L,)
    rel_edges_um: np.ndarray  # (L, K + 1) window edges minus the line's observed wavelength
    sigma_lsf_um: np.ndarray  # (L,)
    channels: np.ndarray  # (L, K) indices into the cube's planes (clipped)
    valid: np.ndarray  # (L, K) 1 where the channel is inside the band
    factors: np.ndarray  # (L, K) SB_UNIT per channel -> cube unit
    window_wave_um: np.ndarray  # (L, K) wavelengths of the window's channels


def _window_channels(wave: np.ndarray, obs_um: float, window_kms: float) -> int:
    """Odd number of channels that spans +-window_kms around ``obs_um``."""
    j = int(np.clip(np.searchsorted(wave, obs_um), 1, wave.size - 1))
    vel_step = C_KMS * (wave[j] - wave[j - 1]) / obs_um
    return 2 * math.ceil(window_kms / vel_step) + 1


def _line_block(wave: np.ndarray, unit: u.UnitBase, lines: list[Line], z: float, k: int,
                rpow: ResolvingPower) -> LineSetup:
    n = wave.size
    step = np.diff(wave)
    pad = k
    ext = np.concatenate([wave[0] - step[0] * np.arange(pad, 0, -1), wave,
                          wave[-1] + step[-1] * np.arange(1, pad + 1)])
    edges = channel_edges_um(ext)
    factors_all = unit_factors(ext, edges, unit)
    obs = np.array([ln.observed_um(z) for ln in lines])
    start = np.array([int(np.argmin(np.abs(wave - w))) for w in obs]) - k // 2
    idx = start[:, None] + np.arange(k)[None, :]
    rel = np.stack([edges[s + pad: s + pad + k + 1] - w for s, w in zip(start, obs, strict=True)])
    return LineSetup(
        lines=tuple(lines), observed_um=obs, rel_edges_um=rel,
        sigma_lsf_um=rpow.sigma_um(obs), channels=np.clip(idx, 0, n - 1),
        valid=((idx >= 0) & (idx < n)).astype(np.float32), factors=factors_all[idx + pad],
        window_wave_um=ext[idx + pad])


def line_blocks(wave: np.ndarray, unit: u.UnitBase, lines: list[Line], z: float,
                window_kms: float, rpow: ResolvingPower) -> tuple[LineSetup, ...]:
    """The lines grouped by how many channels their window needs (blue lines need fewer:
    a channel spans more km/s there), each group one stacked :class:`LineSetup`."""
    ks = [_window_channels(wave, ln.observed_um(z), window_kms) for ln in lines]
    groups: dict[int, list[Line]] = {}
    for k, ln in zip(ks, lines, strict=True):
        groups.setdefault(k, []).append(ln)
    return tuple(_line_block(wave, unit, grp, z, k, rpow) for k, grp in groups.items())


@dataclass(frozen=True, eq=False)
class ForwardModel:
    """A model of one kind on one cube's grid; call :meth:`cube` with parameters."""

    kind: str
    z: float
    shape: tuple[int, int, int]
    grid: SpatialGrid
    blocks: tuple[LineSetup, ...]
    otfs: tuple[np.ndarray | None, ...]
    kpc_per_arcsec: float
    n_los: int
    unit: u.UnitBase
    window_kms: float = 1000.0
    _jitted: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, kind: str, cube: IFUCube, z: float, *, psf: GaussianPSF | None = None,
              resolving_power: ResolvingPower | None = None, lines: list[Line] | None = None,
              window_kms: float | None = None, oversample: int = 1, n_los: int = 9
              ) -> ForwardModel:
        """Precompute everything static for ``kind`` on ``cube``'s grid at redshift ``z``."""
        spec_for(kind)
        if oversample < 1 or n_los < 3:
            raise ModelParameterError("oversample/n_los", (oversample, n_los),
                                      "oversample >= 1 and n_los >= 3")
        window = DEFAULT_WINDOW_KMS[kind] if window_kms is None else float(window_kms)
        if lines:  # lines asked for by name must all be in the band
            check_covered(cube.wavelength_um, lines, z, 0.0, cube.source or "cube")
        band = lines_in_band(cube.wavelength_um, z, lines=lines or list(LINES_BY_NAME.values()))
        if not band:
            raise LineCoverageError(
                f"{cube.source or 'cube'}: no model line falls in {cube.wavelength_um[0]:.4f}-"
                f"{cube.wavelength_um[-1]:.4f} um at z={z}; check the redshift")
        # The unit is checked first, so its error names the cube.
        unit_factors(cube.wavelength_um[:2], channel_edges_um(cube.wavelength_um[:2]),
                     cube.unit, cube.source)
        blocks = line_blocks(cube.wavelength_um, cube.unit, band, z, window,
                             resolving_power or ResolvingPower.linear())
        pix = cube.spaxel_arcsec / oversample
        waves = np.concatenate([b.window_wave_um.ravel() for b in blocks])
        pad = 0 if psf is None else math.ceil(4.0 * psf.max_sigma_arcsec(waves) / pix)
        grid = SpatialGrid.for_cube(cube, oversample, pad)
        big = grid.x.shape
        otfs = tuple(None if psf is None else psf.otf(
            b.window_wave_um.ravel(), big[0], big[1], pix).reshape(
                *b.window_wave_um.shape, big[0], big[1] // 2 + 1).astype(np.complex64)
            for b in blocks)
        return cls(kind, float(z), cube.shape, grid, blocks, otfs, kpc_per_arcsec(z), n_los,
                   cube.unit, window_kms=window)

    # -- parameters ---------------------------------------------------------------------
    def reach(self, checked: Mapping[str, float]) -> float:
        """How far (km/s) from each line's rest velocity the lines of the checked
        parameters reach: the largest |velocity| plus 4 sigma (intrinsic and LSF)."""
        lsf_kms = C_KMS * max(float(np.max(b.sigma_lsf_um / b.observed_um))
                              for b in self.blocks)
        return velocity_reach(self.kind, checked) + 4.0 * math.hypot(checked["sigma"], lsf_kms)

    def params(self, values: Mapping[str, float] | None = None) -> dict[str, jnp.ndarray]:
        """Checked parameters (defaults filled) as float32 JAX scalars.

        Besides each parameter's range, the lines must stay inside the computed window:
        the largest |velocity| the parameters can give plus 4 sigma (intrinsic and LSF)
        must not exceed ``window_kms`` (build the model with a larger one otherwise).
        """
        checked = check_params(self.kind, dict(values or {}))
        reach = self.reach(checked)
        if reach > self.window_kms:
            raise ModelParameterError(
                "velocities", f"+-{reach:.0f} km/s", f"within the model's window of "
                f"+-{self.window_kms:.0f} km/s around each line",
                "lower v_sys / the speeds, or build the model with a larger window_kms")
        return {k: jnp.asarray(v, dtype=jnp.float32) for k, v in checked.items()}

    @property
    def line_names(self) -> list[str]:
        return [ln.name for b in self.blocks for ln in b.lines]

    # -- the model ----------------------------------------------------------------------
    def fields(self, p: Mapping[str, jnp.ndarray]) -> tuple[jnp.ndarray, jnp.ndarray]:
        x = jnp.asarray(self.grid.x, dtype=jnp.float32)
        y = jnp.asarray(self.grid.y, dtype=jnp.float32)
        if self.kind == "bowshock":
            return bowshock_fields(dict(p), x, y)
        fn = disk_fields if self.kind == "disk" else disk_arctan_fields
        return fn(dict(p), x, y, self.kpc_per_arcsec, self.n_los)

    def _spectra(self, p: Mapping[str, jnp.ndarray], fields: tuple[jnp.ndarray, jnp.ndarray],
                 s: LineSetup) -> jnp.ndarray:
        """(L, K, NY, NX) surface brightness per channel of one block of lines, before the PSF."""
        sb, v = fields
        obs = jnp.asarray(s.observed_um, dtype=jnp.float32)[:, None, None, None]
        mu = obs * (v[None] / C_KMS)  # (L, C, NY, NX) offset from the line's wavelength
        sig_v = obs * (1.0 + v[None] / C_KMS) * (p["sigma"] / C_KMS)
        lsf = jnp.asarray(s.sigma_lsf_um, dtype=jnp.float32)[:, None, None, None]
        inv = 1.0 / (jnp.sqrt(2.0) * jnp.sqrt(sig_v * sig_v + lsf * lsf))
        edges = jnp.asarray(s.rel_edges_um, dtype=jnp.float32)[:, :, None, None]
        lo, hi = edges[:, :-1], edges[:, 1:]
        # Materialise the per-spaxel terms once: otherwise XLA fuses the fields into the
        # per-edge loop below and recomputes them for every edge of every line.
        sb, mu, inv = jax.lax.optimization_barrier((sb, mu, inv))
        # One fused loop over (line, channel, spaxel) summing the components; erf at both
        # edges of each channel (differencing one CDF array instead is 3x slower in XLA).
        frac = sum(sb[c] * (erf((hi - mu[:, None, c]) * inv[:, None, c])
                            - erf((lo - mu[:, None, c]) * inv[:, None, c]))
                   for c in range(sb.shape[0]))
        ratios = jnp.stack([line_ratio_expr(ln, p) for ln in s.lines])
        return frac * (0.5 * ratios)[:, None, None, None]

    @staticmethod
    def _psf(planes: jnp.ndarray, otf: np.ndarray | None) -> jnp.ndarray:
        if otf is None:
            return planes
        big = planes.shape[-2:]
        return jnp.fft.irfft2(jnp.fft.rfft2(planes) * jnp.asarray(otf), s=big)

    def _line_planes(self, p: Mapping[str, jnp.ndarray]) -> list[jnp.ndarray]:
        fields = jax.lax.optimization_barrier(self.fields(p))
        out = []
        for s, otf in zip(self.blocks, self.otfs, strict=True):
            planes = self.grid.to_spaxels(self._psf(self._spectra(p, fields, s), otf))
            out.append(planes * jnp.asarray(s.factors * s.valid,
                                             dtype=jnp.float32)[:, :, None, None])
        return out

    def line_planes(self, p: Mapping[str, jnp.ndarray]) -> list[jnp.ndarray]:
        """Per block of :attr:`blocks`, (L, K, ny, nx): each line's window channels in the
        cube's unit, before they are added into the cube."""
        return self._jit("line_planes")(dict(p))

    def _cube(self, p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        planes = self._line_planes(p)
        idx = np.concatenate([s.channels.ravel() for s in self.blocks])
        flat = jnp.concatenate([pl.reshape(-1, *self.shape[1:]) for pl in planes])
        return jnp.zeros(self.shape, dtype=jnp.float32).at[jnp.asarray(idx)].add(flat)

    def _jit(self, name: str):
        if name not in self._jitted:
            self._jitted[name] = jax.jit(getattr(self, "_" + name))
        return self._jitted[name]

    def cube(self, p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        """The model cube (n_wave, ny, nx) in the cube's unit (jit-compiled)."""
        return self._jit("cube")(dict(p))

    def velocity_field(self, p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        """Halpha-weighted mean line-of-sight velocity (km/s) per spaxel, before the PSF."""
        sb, v = self.fields(p)
        num = self.grid.to_spaxels((sb * v).sum(axis=0))
        den = self.grid.to_spaxels(sb.sum(axis=0))
        return num / den

    def halpha_map(self, p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        """Halpha surface brightness (1e-18 erg/s/cm^2/arcsec^2) per spaxel, before the PSF."""
        sb, _ = self.fields(p)
        return self.grid.to_spaxels(sb.sum(axis=0))

