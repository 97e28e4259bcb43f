"""``exocube ifu ...``: IFU cubes (template, info, synth, moments, pv, params, fetch).

JAX and the models are imported inside the commands, so ``exocube --help``
stays fast.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(name="ifu", help="JWST/HST IFU cubes: templates, synthetic cubes, "
                  "moment maps, PV diagrams, archive downloads.", no_args_is_help=True)


class ModelKind(StrEnum):
    bowshock = "bowshock"
    disk = "disk"
    disk_arctan = "disk_arctan"


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@app.command()
def template(
    out: Annotated[Path, typer.Option(help="Where to write the s3d template.")],
    wave_table: Annotated[bool, typer.Option(help="Write the wavelengths as a WCS-TABLE "
                                                  "(CTYPE3 = 'WAVE-TAB').")] = False,
    ra: Annotated[float, typer.Option(help="CRVAL1 (deg).")] = 0.0,
    dec: Annotated[float, typer.Option(help="CRVAL2 (deg).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the template's noise and dithers.")] = 3149,
) -> None:
    """Write an s3d template with the GO-3149 cube's geometry (1447 x 53 x 49)."""
    from exocube.ifu.template import write_template

    path = write_template(out, ra=ra, dec=dec, seed=seed, wave_table=wave_table)
    print(json.dumps({"template": str(path)}))


@app.command()
def info(
    cube: Annotated[Path, typer.Argument(help="An s3d FITS cube.")],
    z: Annotated[float, typer.Option(help="Redshift for the line list.")] = 0.964,
    mask_flags: Annotated[list[str] | None, typer.Option(
        help="DQ flags that mask a voxel (default DO_NOT_USE,NON_SCIENCE).")] = None,
) -> None:
    """Summarise a cube: shape, wavelengths, unit, masked fraction, lines in the band."""
    import numpy as np

    from exocube.ifu.cube import read_s3d
    from exocube.ifu.dq import DEFAULT_MASK_FLAGS
    from exocube.ifu.lines import lines_in_band

    c = read_s3d(cube, mask_flags=_split(mask_flags) or DEFAULT_MASK_FLAGS)
    good = ~c.mask
    print(json.dumps({
        "file": str(cube), "sha256": c.sha256, "shape": list(c.shape), "unit": str(c.unit),
        "wavelength_um": [float(c.wavelength_um[0]), float(c.wavelength_um[-1])],
        "wave_table": c.wave_table, "spaxel_arcsec": c.spaxel_arcsec,
        "masked_fraction": float(c.mask.mean()),
        "sci_median": float(np.median(c.flux[good])), "err_median": float(np.median(c.err[good])),
        "lines_in_band": [ln.name for ln in lines_in_band(c.wavelength_um, z)],
        "provenance": {k: v for k, v in c.provenance.items() if isinstance(v, str | int | float)},
    }, indent=1))


@app.command()
def params(model: Annotated[ModelKind, typer.Option(help="Model.")]) -> None:
    """Print the model's parameters as a TOML file of defaults (edit it for --params)."""
    from exocube.ifu.params import spec_for

    print(f'model = "{model.value}"\n\n[params]')
    for p in spec_for(model.value):
        print(f"{p.name} = {p.default!r}  # {p.unit} [{p.low}, {p.high}] {p.doc}")


@app.command()
def synth(
    model: Annotated[ModelKind, typer.Option(help="Forward model.")],
    like: Annotated[Path, typer.Option(help="Template s3d cube (grid, footprint, DQ, ERR).")],
    out: Annotated[Path, typer.Option(help="Output s3d file; truth in <out>.truth.json.")],
    params_file: Annotated[Path | None, typer.Option(
        "--params", help="TOML with a [params] table (defaults for what it omits).")] = None,
    snr: Annotated[float | None, typer.Option(help="Peak signal-to-noise (scales ERR).")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    z: Annotated[float, typer.Option(help="Redshift.")] = 0.964,
    err: Annotated[float | None, typer.Option(help="Constant ERR in the cube's unit "
                                                   "instead of the template's.")] = None,
    psf_fwhm: Annotated[float, typer.Option(help="PSF FWHM (arcsec) at 1.2893 um; 0: none.")
                        ] = 0.15,
    resolving_power: Annotated[float, typer.Option(help="R at 1.2893 um (R grows as lambda).")
                               ] = 1000.0,
    window_kms: Annotated[float | None, typer.Option(
        help="Half width (km/s) of the channels modelled around each line (default 1500 for "
             "bowshock, 1000 for the disks).")] = None,
) -> None:
    """Write a synthetic cube of a model on a template's grid, with seeded noise."""
    from exocube.ifu.cube import read_s3d
    from exocube.ifu.instrument import GaussianPSF, ResolvingPower
    from exocube.ifu.params import check_params, load_params_toml
    from exocube.ifu.synth import synthesize, write_synth

    values = (load_params_toml(params_file, model.value) if params_file
              else check_params(model.value, {}))
    result = synthesize(model.value, values, read_s3d(like), z=z, snr=snr, seed=seed, err=err,
                        psf=None if psf_fwhm == 0 else GaussianPSF(fwhm_arcsec=psf_fwhm),
                        resolving_power=ResolvingPower.linear(resolving_power),
                        window_kms=window_kms)
    cube_path, truth_path = write_synth(result, out)
    print(json.dumps({"cube": str(cube_path), "truth": str(truth_path),
                      "err_scale": result.truth["noise"]["err_scale"]}))


@app.command()
def moments(
    cube: Annotated[Path, typer.Argument(help="An s3d FITS cube.")],
    out: Annotated[Path, typer.Option(help="Output prefix: <out>_<line>_moments.fits/.png")],
    line: Annotated[list[str] | None, typer.Option(help="Lines (default Halpha).")] = None,
    z: Annotated[float, typer.Option(help="Redshift.")] = 0.964,
    half_width: Annotated[float, typer.Option(help="Half width of the window (km/s).")] = 800.0,
    continuum: Annotated[str, typer.Option(help="none | sidebands")] = "none",
    min_snr: Annotated[float, typer.Option(help="Blank spaxels whose line S/N is below "
                                             "this (0: keep all).")] = 3.0,
    png: Annotated[bool, typer.Option(help="Also write a PNG.")] = True,
    mask_flags: Annotated[list[str] | None, typer.Option(
        help="DQ flags that mask a voxel (default DO_NOT_USE,NON_SCIENCE).")] = None,
    resolving_power: Annotated[float, typer.Option(
        help="R at 1.2893 um (R grows as lambda), for DISP_INT.")] = 1000.0,
) -> None:
    """Flux, velocity and dispersion maps per line, as FITS (and PNG)."""
    from exocube.ifu.cube import read_s3d
    from exocube.ifu.dq import DEFAULT_MASK_FLAGS
    from exocube.ifu.instrument import ResolvingPower
    from exocube.ifu.lines import get_lines
    from exocube.ifu.quicklook import moment_maps, plot_moments, write_moments

    rpow = ResolvingPower.linear(resolving_power)
    c = read_s3d(cube, mask_flags=_split(mask_flags) or DEFAULT_MASK_FLAGS)
    written = []
    for ln in get_lines(_split(line) or ["Halpha"]):
        maps = moment_maps(c, ln, z, half_width_kms=half_width, continuum=continuum,
                           min_snr=min_snr or None, resolving_power=rpow)
        stem = f"{out}_{_safe(ln.name)}_moments"
        written.append(str(write_moments(maps, c, f"{stem}.fits")))
        if png:
            written.append(str(plot_moments(maps, c, f"{stem}.png")))
    print(json.dumps({"written": written}))


@app.command()
def pv(
    cube: Annotated[Path, typer.Argument(help="An s3d FITS cube.")],
    out: Annotated[Path, typer.Option(help="Output prefix: <out>_<line>_pv.fits/.png")],
    pa: Annotated[float, typer.Option(help="Position angle of the axis (deg, N through E).")],
    line: Annotated[str, typer.Option(help="Line.")] = "Halpha",
    slit: Annotated[float, typer.Option(help="Slit width (arcsec).")] = 0.3,
    centre: Annotated[str, typer.Option(help="Axis centre 'x,y' (arcsec east, north).")
                      ] = "0,0",
    z: Annotated[float, typer.Option(help="Redshift.")] = 0.964,
    half_width: Annotated[float, typer.Option(help="Half width of the window (km/s).")
                          ] = 1000.0,
    png: Annotated[bool, typer.Option(help="Also write a PNG.")] = True,
    mask_flags: Annotated[list[str] | None, typer.Option(
        help="DQ flags that mask a voxel (default DO_NOT_USE,NON_SCIENCE).")] = None,
) -> None:
    """A position-velocity diagram along an axis, as FITS (and PNG)."""
    from exocube.errors import CubeFormatError
    from exocube.ifu.cube import read_s3d
    from exocube.ifu.lines import get_lines
    from exocube.ifu.quicklook import plot_pv, pv_diagram, write_pv

    try:
        cx, cy = (float(v) for v in centre.split(","))
    except ValueError:
        raise CubeFormatError(f"--centre {centre!r}: expected 'x,y' in arcsec") from None
    from exocube.ifu.dq import DEFAULT_MASK_FLAGS

    c = read_s3d(cube, mask_flags=_split(mask_flags) or DEFAULT_MASK_FLAGS)
    (ln,) = get_lines([line])
    diagram = pv_diagram(c, ln, z, pa_deg=pa, slit_width_arcsec=slit, centre_arcsec=(cx, cy),
                         half_width_kms=half_width)
    stem = f"{out}_{_safe(ln.name)}_pv"
    written = [str(write_pv(diagram, c, f"{stem}.fits"))]
    if png:
        written.append(str(plot_pv(diagram, f"{stem}.png")))
    print(json.dumps({"written": written}))


def _safe(name: str) -> str:
    return name.replace("[", "").replace("]", "")


@app.command()
def fetch(
    program: Annotated[str, typer.Option(help="JWST program number, e.g. 3149.")],
    products: Annotated[list[str] | None, typer.Option(
        help="Product subgroups (comma-separated; default S3D,X1D,CAL).")] = None,
    instrument: Annotated[str | None, typer.Option(
        help="MAST instrument_name filter, e.g. NIRSPEC/IFU.")] = None,
    dest: Annotated[str | None, typer.Option(help="Local directory or s3://bucket/prefix.")
                    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan, download nothing.")] = False,
    record: Annotated[Path | None, typer.Option(
        help="Save MAST's planning answers in this folder (online).")] = None,
    answers: Annotated[Path | None, typer.Option(
        help="Plan from answers saved with --record, without the network.")] = None,
    max_download_gb: Annotated[float | None, typer.Option(help="Download quota (GB).")] = None,
    max_observations: Annotated[int, typer.Option(help="At most this many observations.")
                                ] = 50,
) -> None:
    """Plan and download a JWST program's products from MAST (resumable, verified)."""
    from exocube.acquire.run import Quotas, gb
    from exocube.catalog import db as catalog_db
    from exocube.cli.acquire import RichProgress, _plan_table, _progress, _summary_table, console
    from exocube.config import get_settings
    from exocube.ifu.fetch import fetch_program, plan_program, program_settings

    settings = program_settings(get_settings(), program, _split(products) or None, instrument,
                                max_observations)
    plan = plan_program(settings, record, answers)
    console.print(_plan_table(plan))
    if dry_run:
        print(json.dumps({"program": settings.acquire.mast.proposal_id,
                          "plan": plan.totals(), "files": plan.to_json()}, indent=1))
        return
    catalog_db.upgrade(settings.database_url)
    with _progress() as progress:
        summary = fetch_program(settings, plan, dest, Quotas(gb(max_download_gb), None),
                                RichProgress(progress, plan))
    console.print(_summary_table(summary))
    print(json.dumps(summary, indent=1))
    if summary["totals"]["failed"]:
        raise typer.Exit(code=2)
