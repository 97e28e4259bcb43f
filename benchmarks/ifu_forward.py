"""Time to build one full-size (1447 x 53 x 49) IFU model cube with PSF and LSF.

exocube's JAX forward models (``disk`` and ``bowshock``, every line of the band,
LSF integrated over channel edges, wavelength-dependent Gaussian PSF by FFT,
output in MJy/sr) on the GO-3149 template grid, against two published disk
modellers building a disk cube of the same size in the same run:

- KinMS (Davis et al. 2013, MNRAS 429, 534; ``kinms``): cloud sampling, one
  line, Gaussian beam, LSF as an added dispersion;
- GalPaK3D (Bouche et al. 2015, AJ 150, 92; ``galpak``): ``DiskModel``
  (exponential, arctan), one line, ``create_convolved_cube`` with a Gaussian
  PSF and LSF.

Targets: under 50 ms per cube, at least 10x GalPaK3D per voxel (all cubes have
the same number of voxels, so the per-voxel ratio is the time ratio). Times
are median wall times; exocube's process CPU time per cube (all threads) is
printed too, a figure less sensitive to other users of a shared machine, whose
load average is printed before and after.

    .venv/bin/python benchmarks/ifu_forward.py [--repeats 10] [--skip-baselines]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
from timing import median_time

from exocube.ifu._jax import jax
from exocube.ifu.forward import ForwardModel
from exocube.ifu.instrument import FWHM_PER_SIGMA, GaussianPSF, ResolvingPower
from exocube.ifu.lines import C_KMS
from exocube.ifu.template import GO3149_SHAPE, build_template

HALPHA_UM = 0.656461 * 1.964


def cpu_time(fn: Callable[[], None], repeats: int) -> float:
    """Mean process CPU time [s] per call (all threads), after one warm-up call."""
    fn()
    t0 = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - t0) / repeats


def exocube_timer(kind: str, repeats: int, cpu: dict[str, float]) -> float:
    tpl = build_template()
    model = ForwardModel.build(kind, tpl, 0.964, psf=GaussianPSF(),
                               resolving_power=ResolvingPower.linear())
    p = model.params()

    def run() -> None:
        jax.block_until_ready(model.cube(p))

    cpu[f"exocube {kind}"] = cpu_time(run, repeats)
    return median_time(run, repeats)


def kinms_timer(repeats: int) -> float:
    from kinms import KinMS

    nw, ny, nx = GO3149_SHAPE
    dv = C_KMS * 0.000636 / HALPHA_UM
    lsf_sigma = C_KMS / (1000.0 * FWHM_PER_SIGMA)
    km = KinMS(xs=nx * 0.1, ys=ny * 0.1, vs=nw * dv, cellSize=0.1, dv=dv,
               beamSize=[0.15, 0.15, 0.0], nSamps=100_000, fixSeed=True,
               spectral_resolution=lsf_sigma)
    r = np.arange(0.0, 5.0, 0.01)
    kpc = 8.0  # kpc per arcsec at z = 0.964

    def run() -> None:
        km.model_cube(inc=85.0, posAng=30.0, gasSigma=30.0, diskThick=1.2 / kpc,
                      sbProf=np.exp(-r * kpc / 3.0), sbRad=r, velRad=r,
                      velProf=110.0 * (2 / np.pi) * np.arctan(r * kpc / 1.5), intFlux=100.0)

    return median_time(run, repeats)


def galpak_timer(repeats: int) -> float:
    logging.disable(logging.INFO)
    import galpak
    from astropy.io import fits

    nw, ny, nx = GO3149_SHAPE
    hdr = fits.Header({
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "deg", "CUNIT2": "deg",
        "CRPIX1": (nx + 1) / 2, "CRPIX2": (ny + 1) / 2, "CRVAL1": 0.0, "CRVAL2": 0.0,
        "CDELT1": -0.1 / 3600, "CDELT2": 0.1 / 3600, "CTYPE3": "WAVE", "CUNIT3": "um",
        "CRPIX3": 1.0, "CRVAL3": 0.9703, "CDELT3": (1.89 - 0.9703) / (nw - 1)})
    cube = galpak.HyperspectralCube(data=np.zeros(GO3149_SHAPE, np.float32), header=hdr)
    inst = galpak.Generic(psf_fwhm=0.15, psf_pa=0.0, psf_ba=1.0, lsf_fwhm=HALPHA_UM / 1000.0)
    gk = galpak.GalPaK3D(cube, instrument=inst, quiet=True,
                         model=galpak.DiskModel(flux_profile="exponential",
                                                rotation_curve="arctan"))
    g = galpak.GalaxyParameters(x=nx / 2, y=ny / 2, z=(HALPHA_UM - 0.9703) / 0.000636,
                                flux=100.0, radius=3.0, inclination=85.0, pa=30.0,
                                turnover_radius=2.0, maximum_velocity=110.0,
                                velocity_dispersion=30.0)

    def run() -> None:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            gk.create_convolved_cube(g, GO3149_SHAPE)

    return median_time(run, repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--baseline-repeats", type=int, default=3)
    ap.add_argument("--skip-baselines", action="store_true")
    args = ap.parse_args()
    voxels = int(np.prod(GO3149_SHAPE))
    print(f"cube {GO3149_SHAPE} = {voxels:,} voxels; load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus {os.cpu_count()}")
    cpu: dict[str, float] = {}
    rows = {f"exocube {k}": exocube_timer(k, args.repeats, cpu) for k in ("disk", "bowshock")}
    if not args.skip_baselines:
        rows["KinMS disk"] = kinms_timer(args.baseline_repeats)
        rows["GalPaK3D disk"] = galpak_timer(args.baseline_repeats)
    ref = rows["exocube disk"]
    print(f"{'model':<18}{'ms/cube':>10}{'ns/voxel':>10}{'x exocube disk':>16}"
          f"{'cpu ms/cube':>13}")
    for name, t in rows.items():
        c = f"{cpu[name] * 1e3:>13.1f}" if name in cpu else f"{'':>13}"
        print(f"{name:<18}{t * 1e3:>10.1f}{t / voxels * 1e9:>10.2f}{t / ref:>16.1f}{c}")
    if "GalPaK3D disk" in rows:
        print(f"exocube disk vs GalPaK3D per voxel: {rows['GalPaK3D disk'] / ref:.1f}x "
              "(target >= 10x); target < 50 ms per cube")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
