"""Synthetic cubes: a forward model on a template's grid, with the template's footprint
and noise, written in the s3d layout with the truth in a sidecar JSON.

The output has the template's WCS, DQ and WMAP. Voxels the template masks
(DQ bits of its mask set, or NaN) are NaN in SCI and ERR. ERR is the
template's ERR, or ``err`` (a constant in the cube's unit) when given, times
a scale chosen so that the brightest model voxel has signal-to-noise ``snr``
(no scaling when ``snr`` is None). SCI = model + ERR x N(0, 1) drawn from
``numpy.random.default_rng(seed)``. The template's own SCI (its continuum) is
not kept: a synthetic cube holds line emission only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exocube import __version__
from exocube.errors import ModelParameterError
from exocube.ifu.cube import IFUCube, cube_hdulist, write_fits_atomic
from exocube.ifu.forward import ForwardModel
from exocube.ifu.instrument import GaussianPSF, ResolvingPower
from exocube.ifu.kinematics import post_shock_speed, tip_jump_kms

log = logging.getLogger(__name__)

TRUTH_VERSION = 1
DEFAULT_PSF = GaussianPSF()


@dataclass(frozen=True)
class SynthResult:
    """A synthetic cube, its noiseless model and the truth that made it."""

    cube: IFUCube
    model: np.ndarray
    truth: dict[str, Any]


def noise_scale(model: np.ndarray, err: np.ndarray, good: np.ndarray, snr: float | None
                ) -> float:
    """The factor on ERR that gives the brightest model voxel signal-to-noise ``snr``."""
    if snr is None:
        return 1.0
    if not (np.isfinite(snr) and snr > 0):
        raise ModelParameterError("snr", snr, "a positive number (peak signal-to-noise)")
    ratio = np.where(good & (err > 0), model / np.where(err > 0, err, 1.0), 0.0)
    peak = float(ratio.max())
    if peak <= 0:
        raise ModelParameterError("snr", snr, "a model with flux inside the footprint",
                                  "the model is zero on every usable voxel: move it into "
                                  "the field or raise its surface brightness")
    return peak / snr


def derived(kind: str, params: dict[str, float]) -> dict[str, float]:
    """Quantities that follow from the parameters (for the truth file)."""
    if kind != "bowshock":
        return {}
    return {"post_shock_speed_kms": float(post_shock_speed(params["v_bh"],
                                                           params["compression"])),
            "tip_jump_kms": float(tip_jump_kms(params))}


def synthesize(kind: str, params: dict[str, float], template: IFUCube, *, z: float = 0.964,
               snr: float | None = None, seed: int = 0, err: float | None = None,
               psf: GaussianPSF | None = DEFAULT_PSF,
               resolving_power: ResolvingPower | None = None,
               window_kms: float | None = None) -> SynthResult:
    """The model of ``kind`` on ``template`` with seeded noise; see the module docstring."""
    rpow = resolving_power or ResolvingPower.linear()
    fm = ForwardModel.build(kind, template, z, psf=psf, resolving_power=rpow,
                            window_kms=window_kms)
    p = fm.params(params)
    model = np.asarray(fm.cube(p), dtype=np.float32)
    good = ~template.mask
    base = (np.full(template.shape, err, dtype=np.float32) if err is not None
            else np.array(template.err, dtype=np.float32))
    if err is not None and not (np.isfinite(err) and err > 0):
        raise ModelParameterError("err", err, f"a positive noise level in {template.unit}")
    scale = noise_scale(model, base, good, snr)
    sigma = (base * scale).astype(np.float32)
    rng = np.random.default_rng(seed)
    flux = (model + sigma * rng.standard_normal(template.shape, dtype=np.float32))
    flux[~good], sigma[~good] = np.nan, np.nan
    cube = template.with_data(flux, sigma, np.array(template.dq))
    truth = {
        "version": TRUTH_VERSION, "exocube": __version__, "model": kind, "z": z,
        "params": {k: float(v) for k, v in fm.params(params).items()},
        "derived": derived(kind, {k: float(v) for k, v in p.items()}),
        "lines": fm.line_names, "unit": template.unit.to_string(),
        "window_kms": fm.window_kms,
        "instrument": {"psf": None if psf is None else asdict(psf),
                       "resolving_power": asdict(rpow)},
        "noise": {"seed": seed, "snr": snr, "err": err, "err_scale": scale,
                  "generator": "numpy.random.default_rng(seed).standard_normal"},
        "template": {"source": template.source, "sha256": template.sha256,
                     "shape": list(template.shape)},
    }
    return SynthResult(cube, model, truth)


def write_synth(result: SynthResult, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The cube (s3d layout) at ``path`` and the truth at ``<path stem>.truth.json``."""
    path = Path(path)
    hdul = cube_hdulist(result.cube)
    hdr = hdul[0].header
    hdr["EXOMODEL"] = (result.truth["model"], "exocube synthetic cube: forward model")
    hdr["EXOSEED"] = (result.truth["noise"]["seed"], "noise seed")
    hdr["EXOZ"] = (result.truth["z"], "model redshift")
    hdr["TARGNAME"] = f"SYNTH-{result.truth['model'].upper()}"
    truth_path = path.with_name(path.name.removesuffix(".fits") + ".truth.json")
    tmp = truth_path.with_name(f".{truth_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result.truth, indent=1, sort_keys=True))
    write_fits_atomic(hdul, path)
    os.replace(tmp, truth_path)
    log.info("wrote %s and %s", path, truth_path)
    return path, truth_path
