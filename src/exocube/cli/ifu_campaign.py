"""``exocube ifu campaign inject-recover|jackknife|status`` and ``exocube ifu worker``:
campaigns of fits through a Redis-protocol broker (or on Dask), and the campaign report
that ``exocube ifu report CAMPAIGN_ID`` prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from exocube.cli.ifu import Start, _settings, _split, _store, progress_bar, use_jax_cache

app = typer.Typer(name="campaign", help="Inject-recover and jackknife campaigns of fits, "
                  "run by `exocube ifu worker` processes or on Dask.", no_args_is_help=True)

QUEUE_HELP = "Queue (key prefix) on the broker; workers must use the same."
Broker = Annotated[str | None, typer.Option(help="Broker URL, e.g. redis://127.0.0.1:6379/0.")]
Cluster = Annotated[str | None, typer.Option(
    help="Run on Dask instead of a broker: 'local' or a scheduler address.")]
Db = Annotated[str | None, typer.Option(help="Catalogue database URL.")]
Queue = Annotated[str, typer.Option(help=QUEUE_HELP)]
Workers = Annotated[int, typer.Option(help="Dask LocalCluster workers.")]
Chains = Annotated[int, typer.Option(help="Chains per fit.")]
Warmup = Annotated[int, typer.Option(help="Warm-up draws per chain.")]
BlockSize = Annotated[int, typer.Option(help="Draws per committed block.")]
MaxDraws = Annotated[int, typer.Option(help="Budget per fit: draws per chain.")]
MaxSeconds = Annotated[float | None, typer.Option(help="Budget per fit: seconds.")]
Redshift = Annotated[float, typer.Option(help="Redshift.")]
Lines = Annotated[list[str] | None, typer.Option(help="Lines to fit.")]
ContinuumDegree = Annotated[int, typer.Option(help="Continuum polynomial degree.")]
ResolvingPower = Annotated[float, typer.Option(help="R at 1.2893 um.")]


def _budget(chains: int, warmup: int, block_size: int, max_draws: int,
            max_seconds: float | None, start: str):
    from exocube.ifu import FitBudget

    return FitBudget(chains=chains, warmup=warmup, block_size=block_size,
                     max_draws=max_draws, max_seconds=max_seconds, start=start)


def _shape(text: str) -> tuple[int, int, int]:
    from exocube.ifu import CampaignError

    try:
        nw, ny, nx = (int(v) for v in text.split(","))
    except ValueError:
        raise CampaignError(f"--cube-shape {text!r}: expected NW,NY,NX, e.g. 40,9,9") from None
    if min(nw, ny, nx) < 2:
        raise CampaignError(f"--cube-shape {text!r}: every axis needs >= 2 pixels")
    return nw, ny, nx


def _priors(models: list[str], bowshock: Path | None, disk: Path | None, default):
    from exocube.ifu import load_priors_toml

    files = {"bowshock": bowshock, "disk": disk}
    return {m: load_priors_toml(files[m], m) if files.get(m) else default(m) for m in models}


def _launch(spec, campaign_id: str | None, broker: str | None, cluster: str | None,
            db: str | None, queue: str, wait: bool, workers: int) -> None:
    """Register the campaign, then submit it to the broker or run it on Dask."""
    from exocube.ifu import CampaignError, WorkQueue, register, submit

    if (broker is None) == (cluster is None):
        raise CampaignError("give exactly one of --broker URL (workers: `exocube ifu worker`) "
                            "and --cluster local|ADDRESS (Dask)")
    store = _store(db)
    if broker is not None:
        wq = WorkQueue(broker, queue)
        wq.pending()  # a broker that does not answer stops here, before anything is stored
    cid = register(store.url, spec, campaign_id)
    if broker is not None:
        out = submit(wq, store.url, cid).to_dict()
        print(json.dumps({**out, "queue": queue, "broker": broker}, indent=1))
        if wait:
            _wait(store.url, cid, wq)
        return
    _run_dask(store.url, cid, cluster, workers)


def _wait(db_url: str, cid: str, wq, poll: float = 2.0) -> None:
    """A progress bar of stored tasks until every task is stored or parked as dead."""
    from exocube.ifu import campaign_status

    st = campaign_status(db_url, cid, wq)
    progress, task = progress_bar(st["tasks"], st["stored"], f"campaign {cid}")
    with progress:
        while st["stored"] + st["dead"] < st["tasks"]:
            time.sleep(poll)
            st = campaign_status(db_url, cid, wq)
            progress.update(task, completed=st["stored"])
    print(json.dumps(st, indent=1))


def _run_dask(db_url: str, cid: str, cluster: str, workers: int) -> None:
    from exocube.ifu import campaign_status, run_on_dask
    from exocube.parallel import cluster_client

    st = campaign_status(db_url, cid)
    progress, task = progress_bar(st["tasks"], st["stored"], f"campaign {cid} (Dask)")
    with cluster_client(cluster, n_workers=workers) as client, progress:
        run_on_dask(client, db_url, cid, on_done=lambda: progress.advance(task),
                    compile_cache=use_jax_cache())
    print(json.dumps(campaign_status(db_url, cid), indent=1))


@app.command("inject-recover")
def inject_recover(
    n: Annotated[int, typer.Option(help="Cubes per truth hypothesis and S/N.")],
    snr: Annotated[str, typer.Option(help="Peak S/N levels, comma-separated, e.g. 5,10,20.")],
    broker: Broker = None,
    cluster: Cluster = None,
    models: Annotated[str, typer.Option(
        help="Hypotheses: each is drawn as the truth and fitted to every cube.")
                      ] = "bowshock,disk",
    seed: Annotated[int, typer.Option(help="Campaign seed (truths, noise, samplers).")] = 0,
    like: Annotated[Path | None, typer.Option(
        help="A real s3d cube whose grid, footprint, DQ and ERR the synthetic cubes use.")
                    ] = None,
    cube_shape: Annotated[str, typer.Option(
        help="NW,NY,NX of the package's synthetic footprint (without --like).")] = "40,9,9",
    bowshock_priors: Annotated[Path | None, typer.Option(
        help="Priors TOML of the bow shock (truths drawn from them and fitted with them; "
             "default: the campaign priors, 4 free parameters).")] = None,
    disk_priors: Annotated[Path | None, typer.Option(help="Priors TOML of the disk.")] = None,
    campaign_id: Annotated[str | None, typer.Option(
        "--id", help="Campaign id (default: derived from the spec; the same command gives "
                     "the same id and submits nothing twice).")] = None,
    db: Db = None,
    queue: Queue = "exocube:ifu",
    wait: Annotated[bool, typer.Option(help="Show a progress bar until every task is "
                                            "stored (broker).")] = False,
    workers: Workers = 2,
    chains: Chains = 4,
    warmup: Warmup = 500,
    block_size: BlockSize = 250,
    max_draws: MaxDraws = 4000,
    max_seconds: MaxSeconds = None,
    start: Start = "optimum",
    z: Redshift = 0.964,
    lines: Lines = None,
    continuum_degree: ContinuumDegree = 1,
    psf_fwhm: Annotated[float, typer.Option(help="PSF FWHM (arcsec) at 1.2893 um; 0: none "
                                                "(synthesis and fits).")] = 0.15,
    resolving_power: ResolvingPower = 1000.0,
) -> None:
    """Draw truths from each hypothesis' priors, synthesise cubes at each S/N, fit both
    hypotheses to every cube, compare them; results in the catalogue."""
    from exocube.ifu import campaign_priors, inject_recover_spec

    names = _split([models])
    spec = inject_recover_spec(
        n=n, snr=[float(s) for s in _split([snr])], models=names, seed=seed,
        like=None if like is None else str(like), shape=_shape(cube_shape),
        priors=_priors(names, bowshock_priors, disk_priors, campaign_priors),
        fit=_settings(names[0], z, lines, continuum_degree, "1.0", psf_fwhm,
                      resolving_power, None),
        budget=_budget(chains, warmup, block_size, max_draws, max_seconds, start))
    _launch(spec, campaign_id, broker, cluster, db, queue, wait, workers)


@app.command()
def jackknife(
    cube: Annotated[Path, typer.Argument(help="An s3d FITS cube.")],
    broker: Broker = None,
    cluster: Cluster = None,
    groups: Annotated[int, typer.Option(help="Groups of spaxels; each is left out once.")
                      ] = 8,
    scheme: Annotated[str, typer.Option(help="bands (contiguous rows) | random.")] = "bands",
    models: Annotated[str, typer.Option(help="Models to fit.")] = "bowshock,disk",
    seed: Annotated[int, typer.Option(help="Campaign seed.")] = 0,
    bowshock_priors: Annotated[Path | None, typer.Option(help="Priors TOML (bowshock).")
                               ] = None,
    disk_priors: Annotated[Path | None, typer.Option(help="Priors TOML (disk).")] = None,
    campaign_id: Annotated[str | None, typer.Option("--id", help="Campaign id.")] = None,
    db: Db = None,
    queue: Queue = "exocube:ifu",
    wait: Annotated[bool, typer.Option(help="Progress bar until done (broker).")] = False,
    workers: Workers = 2,
    chains: Chains = 4,
    warmup: Warmup = 500,
    block_size: BlockSize = 250,
    max_draws: MaxDraws = 4000,
    max_seconds: MaxSeconds = None,
    start: Start = "optimum",
    z: Redshift = 0.964,
    lines: Lines = None,
    continuum_degree: ContinuumDegree = 1,
    error_inflation: Annotated[str, typer.Option(help="A factor >= 1 or 'auto'.")] = "1.0",
    psf_fwhm: Annotated[float, typer.Option(help="PSF FWHM (arcsec) at 1.2893 um.")] = 0.15,
    resolving_power: ResolvingPower = 1000.0,
) -> None:
    """Fit the cube and the cube with each group of spaxels left out, for every model."""
    from exocube.ifu import jackknife_spec, priors_for

    names = _split([models])
    spec = jackknife_spec(
        str(cube), groups=groups, models=names, scheme=scheme, seed=seed,
        priors=_priors(names, bowshock_priors, disk_priors, priors_for),
        fit=_settings(names[0], z, lines, continuum_degree, error_inflation, psf_fwhm,
                      resolving_power, None),
        budget=_budget(chains, warmup, block_size, max_draws, max_seconds, start))
    _launch(spec, campaign_id, broker, cluster, db, queue, wait, workers)


@app.command("status")
def status_cmd(
    campaign_id: Annotated[str, typer.Argument(help="A campaign id.")],
    broker: Broker = None,
    db: Db = None,
    queue: Queue = "exocube:ifu",
) -> None:
    """Tasks stored, fits converged or not, and (with --broker) pending, running, dead."""
    from exocube.ifu import WorkQueue, campaign_status

    store = _store(db)
    wq = None if broker is None else WorkQueue(broker, queue)
    print(json.dumps(campaign_status(store.url, campaign_id, wq), indent=1))


def worker(
    broker: Broker = None,
    db: Db = None,
    queue: Queue = "exocube:ifu",
    idle_timeout: Annotated[float | None, typer.Option(
        help="Exit after this many seconds without a task (default: run until stopped).")
                            ] = None,
    visibility_timeout: Annotated[float, typer.Option(
        help="Seconds a task's lease lives without a heartbeat; a dead worker's task is "
             "re-delivered after it.")] = 60.0,
    name: Annotated[str | None, typer.Option(help="Worker name (default host:pid).")] = None,
) -> None:
    """Process campaign tasks from the broker: fit, store the result once, acknowledge."""
    import logging

    from exocube.ifu import CampaignError, Worker, WorkQueue, campaign_handlers

    if broker is None:
        raise CampaignError("--broker URL is required, e.g. redis://127.0.0.1:6379/0")
    logging.getLogger("exocube").setLevel(logging.INFO)
    store = _store(db)
    wq = WorkQueue(broker, queue, visibility_timeout=visibility_timeout)
    wq.pending()  # a broker that does not answer: a clear error before anything runs
    use_jax_cache()
    done = Worker(wq, store.url, campaign_handlers(store.url), name=name).run(
        idle_timeout=idle_timeout)
    print(json.dumps({"worker": name, "tasks": done}))


def report(campaign_id: str, db_url: str, out: Path | None) -> None:
    """Print a campaign's tables (markdown) and write them, their JSON and figures to ``out``."""
    from exocube.ifu import (
        bias_figure,
        bias_rows,
        campaign_markdown,
        campaign_records,
        campaign_tables,
        coverage_figure,
        coverage_rows,
        load_campaign,
        save_figure,
    )

    spec, n_tasks = load_campaign(db_url, campaign_id)
    records = campaign_records(db_url, campaign_id)
    text = campaign_markdown(campaign_id, spec.kind, records, n_tasks)
    print(text)
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{campaign_id}_report.md", out / f"{campaign_id}_tables.json"]
    written[0].write_text(text)
    written[1].write_text(json.dumps(campaign_tables(spec.kind, records), indent=1))
    if spec.kind == "inject-recover":
        written.append(save_figure(coverage_figure(coverage_rows(records)),
                                   out / f"{campaign_id}_coverage.png"))
        written.append(save_figure(bias_figure(bias_rows(records)),
                                   out / f"{campaign_id}_bias.png"))
    from exocube.cli import err_console

    err_console.print("wrote " + ", ".join(str(w) for w in written), highlight=False)
