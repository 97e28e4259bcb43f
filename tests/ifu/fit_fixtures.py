"""A small synthetic cube and priors for fit tests (Halpha + [NII], 9 x 9 spaxels).

The truth is the bow shock's defaults with a brighter tip; four parameters are free
(``FREE``), the others fixed at the truth, so a fit takes a few minutes on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

from exocube.ifu.params import check_params

SHAPE = (40, 9, 9)
WAVE_UM = (1.278, 1.3028)
TRUTH = {"sb_tip": 40.0, "sb_wake": 20.0, "pa_deg": 210.0}
FREE = ("v_sys", "sigma", "sb_tip", "v_far")
WARMUP, BLOCK = 200, 100


def write_cube(folder: Path, seed: int = 1, snr: float = 15.0) -> tuple[Path, dict]:
    """The synthetic cube (no PSF) and its truth."""
    from exocube.ifu.synth import synthesize, write_synth
    from exocube.ifu.template import build_template

    template = build_template(shape=SHAPE, wave_um=WAVE_UM)
    truth = check_params("bowshock", TRUTH)
    result = synthesize("bowshock", truth, template, snr=snr, seed=seed, psf=None)
    path, _ = write_synth(result, folder / "small_bowshock_s3d.fits")
    return path, truth


def write_priors(folder: Path, truth: dict) -> Path:
    """Fixed priors for every parameter but ``FREE`` (those keep their defaults)."""
    rows = [f"{k} = {json.dumps(['fixed', v])}" for k, v in truth.items() if k not in FREE]
    path = folder / "priors.toml"
    path.write_text('model = "bowshock"\n[priors]\n' + "\n".join(rows) + "\n")
    return path


def cli_args(cube: Path, priors: Path, db: str) -> list[str]:
    return ["ifu", "fit", str(cube), "--model", "bowshock", "--priors", str(priors),
            "--db", db, "--psf-fwhm", "0", "--warmup", str(WARMUP),
            "--block-size", str(BLOCK)]
