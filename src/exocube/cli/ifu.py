"""``exocube ifu ...``: IFU cubes (template, info, synth, moments, pv, params, fetch) and
fits (fit, compare, report); campaigns and workers are in :mod:`exocube.cli.ifu_campaign`.

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
                  "moment maps, PV diagrams, archive downloads, Bayesian fits.",
                  no_args_is_help=True)


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
    from exocube.ifu import write_template

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

    from exocube.ifu import DEFAULT_MASK_FLAGS, lines_in_band, read_s3d

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
    from exocube.ifu import spec_for

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
    from exocube.ifu import (
        GaussianPSF,
        ResolvingPower,
        check_params,
        load_params_toml,
        read_s3d,
        synthesize,
        write_synth,
    )

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
    from exocube.ifu import (
        DEFAULT_MASK_FLAGS,
        ResolvingPower,
        get_lines,
        moment_maps,
        plot_moments,
        read_s3d,
        write_moments,
    )

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
    from exocube.ifu import get_lines, plot_pv, pv_diagram, read_s3d, write_pv

    try:
        cx, cy = (float(v) for v in centre.split(","))
    except ValueError:
        raise CubeFormatError(f"--centre {centre!r}: expected 'x,y' in arcsec") from None
    from exocube.ifu import DEFAULT_MASK_FLAGS

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
    from exocube.acquire import Quotas, gb
    from exocube.catalog import upgrade
    from exocube.cli.acquire import RichProgress, _plan_table, _progress, _summary_table, console
    from exocube.config import get_settings
    from exocube.ifu import fetch_program, plan_program, program_settings

    settings = program_settings(get_settings(), program, _split(products) or None, instrument,
                                max_observations)
    plan = plan_program(settings, record, answers)
    console.print(_plan_table(plan))
    if dry_run:
        print(json.dumps({"program": settings.acquire.mast.proposal_id,
                          "plan": plan.totals(), "files": plan.to_json()}, indent=1))
        return
    upgrade(settings.database_url)
    with _progress() as progress:
        summary = fetch_program(settings, plan, dest, Quotas(gb(max_download_gb), None),
                                RichProgress(progress, plan))
    console.print(_summary_table(summary))
    print(json.dumps(summary, indent=1))
    if summary["totals"]["failed"]:
        raise typer.Exit(code=2)


# -- fits ------------------------------------------------------------------------------
NOT_CONVERGED_EXIT = 3


def _store(db: str | None):
    """The chain store at ``db`` (default: the configured catalogue), migrated."""
    from exocube.catalog import upgrade
    from exocube.config import get_settings
    from exocube.ifu import ChainStore

    url = db or get_settings().database_url
    upgrade(url)  # a database that does not answer stops here: CatalogError
    return ChainStore(url)


def use_jax_cache() -> str | None:
    """Turn on JAX's persistent compilation cache at the configured directory (setting
    ``jax_compile_cache``); the directory, or None when off."""
    from exocube.config import get_settings
    from exocube.ifu import use_compile_cache

    directory = get_settings().jax_cache_dir
    if directory is None:
        return None
    use_compile_cache(directory)
    return str(directory)


def _settings(model: str, z: float, lines: list[str] | None, continuum_degree: int,
              error_inflation: str, psf_fwhm: float, resolving_power: float,
              window_kms: float | None):
    from exocube.errors import ModelParameterError
    from exocube.ifu import FitSettings

    if error_inflation != "auto":
        try:
            inflation: float | str = float(error_inflation)
        except ValueError:
            raise ModelParameterError("--error-inflation", error_inflation,
                                      "'auto' or a factor >= 1") from None
    else:
        inflation = "auto"
    return FitSettings(model, z=z, lines=tuple(_split(lines)) or None,
                       continuum_degree=continuum_degree, error_inflation=inflation,
                       psf_fwhm=psf_fwhm, resolving_power=resolving_power,
                       window_kms=window_kms)


def progress_bar(total: int, done: int, what: str):
    """A rich progress bar on stderr; returns (progress, task)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from exocube.cli import err_console

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console)
    return progress, progress.add_task(what, total=total, completed=done)


def _sampling_progress(total_draws: int, done: int, what: str):
    """A progress bar of draws per chain; returns (progress, on_block)."""
    progress, task = progress_bar(total_draws, done, what)

    def on_block(index, block) -> None:
        progress.update(task, advance=block.n_draws)

    return progress, on_block


def _run_fit(store, problem, fit_id: str, *, draws: int, until_converged: bool,
             max_draws: int, max_seconds: float | None) -> dict:
    """Continue a fit with a progress bar; the fit's JSON summary."""
    from exocube.ifu import advance

    done = sum(b.n_draws for b in store.blocks(fit_id))
    target = max_draws if until_converged else draws
    progress, on_block = _sampling_progress(target, done, f"{problem.settings.model} {fit_id[:8]}")
    with progress:
        advance(store, problem, fit_id, draws=draws, until_converged=until_converged,
                max_draws=max_draws, max_seconds=max_seconds, on_block=on_block)
    return _fit_summary(store, fit_id)


def _fit_summary(store, fit_id: str) -> dict:
    from exocube.ifu import posterior_summary

    res = store.result(fit_id, allow_unconverged=True)
    rep = res.report
    out = {"fit_id": fit_id, "model": res.provenance["model"],
           "status": "converged" if rep.passed else "not_converged",
           "chains": rep.n_chains, "draws_per_chain": rep.n_draws,
           "divergences": rep.divergences, "gate": rep.to_dict()["parameters"]}
    if res.start_report is not None:  # the optima, without their positions
        out["start"] = {**{k: v for k, v in res.start_report.items() if k != "optima"},
                        "optima": [{k: o[k] for k in ("potential", "delta", "starts")}
                                   for o in res.start_report["optima"]]}
    if rep.passed:
        out["posterior"] = posterior_summary(res.draws)
    else:
        out["failures"] = rep.failures()
    return out


def _print_fit(summary: dict) -> None:
    from exocube.cli import err_console

    print(json.dumps(summary, indent=1))
    if summary["status"] != "converged":
        err_console.print(f"fit {summary['fit_id']} is NOT converged (not a result): "
                          + "; ".join(summary["failures"]), highlight=False, markup=False)
        raise typer.Exit(code=NOT_CONVERGED_EXIT)


START_HELP = ("Where the chains start: optimum (Laplace draws at the best of 16 local "
              "posterior optima, every optimum reported) or prior (random prior points).")
Start = Annotated[str, typer.Option(help=START_HELP)]


@app.command()
def fit(
    cube: Annotated[Path, typer.Argument(help="An s3d FITS cube.")],
    model: Annotated[ModelKind, typer.Option(help="Hypothesis to fit.")],
    priors_file: Annotated[Path | None, typer.Option(
        "--priors", help="TOML with a [priors] table overriding the model's defaults.")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue this fit id.")] = None,
    until_converged: Annotated[bool, typer.Option(
        help="Sample until the R-hat/ESS gate holds or --max-draws/--max-seconds.")] = False,
    db: Annotated[str | None, typer.Option(help="Catalogue database URL.")] = None,
    draws: Annotated[int, typer.Option(help="Draws per chain (without --until-converged).")
                     ] = 1000,
    max_draws: Annotated[int, typer.Option(help="Budget: draws per chain.")] = 10_000,
    max_seconds: Annotated[float | None, typer.Option(help="Budget: wall time (s).")] = None,
    chains: Annotated[int, typer.Option(help="NUTS chains (>= 4).")] = 4,
    warmup: Annotated[int, typer.Option(help="Warm-up draws per chain.")] = 500,
    block_size: Annotated[int, typer.Option(help="Draws per committed block.")] = 250,
    seed: Annotated[int, typer.Option(help="Sampler seed.")] = 0,
    start_at: Annotated[str, typer.Option("--start", help=START_HELP)
                        ] = "prior",
    z: Annotated[float, typer.Option(help="Redshift.")] = 0.964,
    lines: Annotated[list[str] | None, typer.Option(
        help="Lines to fit (default: every model line in the band).")] = None,
    continuum_degree: Annotated[int, typer.Option(help="Continuum polynomial degree.")] = 1,
    error_inflation: Annotated[str, typer.Option(
        help="Variance factor for correlated noise: a number >= 1 or 'auto'.")] = "1.0",
    psf_fwhm: Annotated[float, typer.Option(help="PSF FWHM (arcsec) at 1.2893 um; 0: none.")
                        ] = 0.15,
    resolving_power: Annotated[float, typer.Option(help="R at 1.2893 um.")] = 1000.0,
    window_kms: Annotated[float | None, typer.Option(help="Model window half width (km/s).")
                          ] = None,
    netcdf: Annotated[Path | None, typer.Option(
        help="Write the converged fit as arviz InferenceData (netCDF) here.")] = None,
) -> None:
    """Fit a hypothesis to a cube with NUTS; blocks are committed as they are drawn.

    Exit status 0: converged (posterior summary printed); 3: not converged (the
    gate's numbers, not a result); 1: an error (nothing half-written).
    """
    from exocube.cli import err_console
    from exocube.ifu import (
        FitMismatchError,
        SamplerConfig,
        load_priors_toml,
        prepare,
        priors_for,
        problem_for_fit,
        start,
    )

    store = _store(db)
    use_jax_cache()  # once the database answered: nothing is written before
    if resume:
        row = store.fit(resume)
        if row.model_name != model.value:
            raise FitMismatchError(f"fit {resume} is a {row.model_name!r} fit, not "
                                   f"{model.value!r}")
        problem = problem_for_fit(store, resume, cube)
        fit_id = resume
    else:
        settings = _settings(model.value, z, lines, continuum_degree, error_inflation,
                             psf_fwhm, resolving_power, window_kms)
        priors = (load_priors_toml(priors_file, model.value) if priors_file
                  else priors_for(model.value))
        problem = prepare(cube, settings, priors)
        config = SamplerConfig(num_chains=chains, num_warmup=warmup, block_size=block_size,
                               seed=seed, start=start_at)
        err_console.print(f"warm-up of {chains} chains x {warmup} draws", highlight=False)
        fit_id = start(store, problem, config, on_created=lambda i: err_console.print(
            f"fit {i} created", highlight=False))
        _print_optima(problem.sampler(config).start_report)
    summary = _run_fit(store, problem, fit_id, draws=draws, until_converged=until_converged,
                       max_draws=max_draws, max_seconds=max_seconds)
    if netcdf is not None and summary["status"] == "converged":
        loglik = problem.pointwise({k: v for k, v in store.draws(fit_id).items()
                                    if k in problem.free})
        summary["netcdf"] = str(store.export_netcdf(fit_id, netcdf,
                                                    log_likelihood={"cube": loglik}))
    _print_fit(summary)


def _print_optima(report) -> None:
    if report is None:
        return
    gaps = ", ".join(f"{o.delta:.1f} ({o.starts})" for o in report.optima[:6])
    print(f"chains start at the best of {len(report.optima)} optima from {report.n_starts} "
          f"starts; gaps to it in nats (starts): {gaps}")


@app.command()
def compare(
    cube: Annotated[Path, typer.Argument(help="An s3d FITS cube.")],
    db: Annotated[str | None, typer.Option(help="Catalogue database URL.")] = None,
    bowshock_priors: Annotated[Path | None, typer.Option(help="Priors TOML (bowshock).")
                               ] = None,
    disk_priors: Annotated[Path | None, typer.Option(help="Priors TOML (disk).")] = None,
    bowshock_fit: Annotated[str | None, typer.Option(help="Use this converged fit id.")
                            ] = None,
    disk_fit: Annotated[str | None, typer.Option(help="Use this converged fit id.")] = None,
    max_draws: Annotated[int, typer.Option(help="Budget per fit: draws per chain.")] = 10_000,
    max_seconds: Annotated[float | None, typer.Option(help="Budget per fit: wall time (s).")
                           ] = None,
    warmup: Annotated[int, typer.Option(help="Warm-up draws per chain.")] = 500,
    block_size: Annotated[int, typer.Option(help="Draws per committed block.")] = 250,
    seed: Annotated[int, typer.Option(help="Sampler seed.")] = 0,
    z: Annotated[float, typer.Option(help="Redshift.")] = 0.964,
    lines: Annotated[list[str] | None, typer.Option(help="Lines to fit.")] = None,
    continuum_degree: Annotated[int, typer.Option(help="Continuum polynomial degree.")] = 1,
    error_inflation: Annotated[str, typer.Option(help="A factor >= 1 or 'auto'.")] = "1.0",
    psf_fwhm: Annotated[float, typer.Option(help="PSF FWHM (arcsec) at 1.2893 um.")] = 0.15,
    resolving_power: Annotated[float, typer.Option(help="R at 1.2893 um.")] = 1000.0,
    evidence: Annotated[bool, typer.Option(
        help="Also the Bayes factor ln B (bowshock vs disk) from nested sampling.")] = False,
    evidence_live: Annotated[int, typer.Option(help="Nested sampling: live points.")] = 500,
    evidence_delete: Annotated[int, typer.Option(
        help="Nested sampling: points replaced per iteration.")] = 50,
    evidence_inner_steps: Annotated[int | None, typer.Option(
        help="Nested sampling: slice moves per new point (default max(5, 2 x free)).")
                                    ] = None,
    evidence_dlogz: Annotated[float, typer.Option(
        help="Nested sampling: stop when the live points could add less than this to "
             "ln Z.")] = 0.01,
    evidence_max_iterations: Annotated[int, typer.Option(
        help="Nested sampling: budget of iterations per model.")] = 20_000,
    out: Annotated[Path | None, typer.Option(
        help="Also write the comparison (JSON) to this file.")] = None,
) -> None:
    """Fit bowshock and disk to one cube (until converged) and compare them by PSIS-LOO
    and, with --evidence, by the Bayes factor from nested sampling."""
    from exocube.ifu import (
        NestedConfig,
        SamplerConfig,
        load_priors_toml,
        loo_compare,
        prepare,
        priors_for,
        problem_for_fit,
        start,
    )

    nested = (NestedConfig(num_live=evidence_live, num_delete=evidence_delete,
                           num_inner_steps=evidence_inner_steps, dlogz=evidence_dlogz,
                           max_iterations=evidence_max_iterations, seed=seed)
              if evidence else None)  # settings checked before any fit starts

    store = _store(db)
    use_jax_cache()  # once the database answered: nothing is written before
    fits = {}
    for name, prior_file, fit_id in (("bowshock", bowshock_priors, bowshock_fit),
                                     ("disk", disk_priors, disk_fit)):
        if fit_id:
            problem = problem_for_fit(store, fit_id, cube)
        else:
            settings = _settings(name, z, lines, continuum_degree, error_inflation, psf_fwhm,
                                 resolving_power, None)
            priors = load_priors_toml(prior_file, name) if prior_file else priors_for(name)
            problem = prepare(cube, settings, priors)
            fit_id = start(store, problem, SamplerConfig(num_warmup=warmup,
                                                         block_size=block_size, seed=seed))
            summary = _run_fit(store, problem, fit_id, draws=0, until_converged=True,
                               max_draws=max_draws, max_seconds=max_seconds)
            if summary["status"] != "converged":
                _print_fit(summary)  # exits: no comparison of unconverged fits
        fits[name] = (store, problem, fit_id)
    result = loo_compare(fits)
    if nested is not None:
        result["evidence"] = _bayes_factor({n: f[1] for n, f in fits.items()}, nested)
        _print_verdict(result)
    if out is not None:
        _write_json(out, result)
    print(json.dumps(result, indent=1))


def _bayes_factor(problems: dict, config) -> dict:
    """ln B (bowshock vs disk) by nested sampling, with a progress bar per model."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from exocube.cli import err_console
    from exocube.ifu import bayes_factor, problem_evidence

    evidence = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[d]}"),
                  TimeElapsedColumn(), console=err_console) as progress:
        for name, problem in problems.items():
            task = progress.add_task(f"ln Z {name}", total=config.max_iterations, d="")

            def on_chunk(iterations: int, remaining: float, task=task) -> None:
                progress.update(task, completed=iterations,
                                d=f"ln(1 + Z_live/Z) {remaining:.3g}")

            evidence[name] = problem_evidence(problem, config, on_chunk)
            progress.update(task, completed=config.max_iterations)
    return bayes_factor(evidence, "bowshock", "disk")


def _print_verdict(result: dict) -> None:
    """ln B next to the LOO ELPD difference, on stderr."""
    from exocube.cli import err_console

    ev, (best, other) = result["evidence"], result["ranking"]
    err_console.print(
        f"Bayes factor ln B (bowshock vs disk) = {ev['ln_B']:.2f} +- {ev['ln_B_err']:.2f}; "
        f"PSIS-LOO: {best['model']} ahead by elpd_diff {other['elpd_diff']:.2f} +- "
        f"{other['dse']:.2f}", highlight=False, markup=False)


def _write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` through a temporary name (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


@app.command()
def report(
    fit_id: Annotated[str, typer.Argument(help="A fit id or a campaign id.")],
    db: Annotated[str | None, typer.Option(help="Catalogue database URL.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the figures (PNG) and, for a campaign, the tables (markdown, JSON).")
                   ] = None,
    cube: Annotated[Path | None, typer.Option(
        help="The fitted cube (for the data-vs-model, PV and residual figures).")] = None,
    line: Annotated[str, typer.Option(help="Line of the moment maps and PV diagram.")
                    ] = "Halpha",
) -> None:
    """A fit's gate table, posterior summary (converged fits only) and figures; or a
    campaign's coverage, bias and hypothesis-preference tables (or jackknife table)."""
    from exocube.cli import err_console
    from exocube.ifu import (
        corner_figure,
        data_and_model,
        data_model_figure,
        is_campaign,
        median_draw,
        problem_for_fit,
        rank_figure,
        save_figure,
        trace_figure,
    )

    store = _store(db)
    if is_campaign(store.url, fit_id):
        from exocube.cli.ifu_campaign import report as campaign_report

        campaign_report(fit_id, store.url, out)
        return
    summary = _fit_summary(store, fit_id)
    res = store.result(fit_id, allow_unconverged=True)
    err_console.print(res.report.table(), highlight=False, markup=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        written = [save_figure(trace_figure(res.draws), out / f"{fit_id}_trace.png"),
                   save_figure(rank_figure(res.draws), out / f"{fit_id}_rank.png")]
        if summary["status"] == "converged":
            written.append(save_figure(corner_figure(res.draws),
                                         out / f"{fit_id}_corner.png"))
            if cube is not None:
                problem = problem_for_fit(store, fit_id, cube)
                draw = median_draw({k: res.draws[k] for k in problem.free})
                data, model, chi = data_and_model(problem, draw)
                p = {k: float(v) for k, v in problem.values(draw).items()}
                fig = data_model_figure(
                    data, model, chi, problem.settings.z, line=line, pa_deg=p["pa_deg"],
                    centre=(p["x0"], p["y0"]))
                written.append(save_figure(fig, out / f"{fit_id}_data_model.png"))
        summary["figures"] = [str(w) for w in written]
    _print_fit(summary)
