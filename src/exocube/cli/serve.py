"""``exocube serve`` (the HTTP service) and ``exocube predict`` (one planet or a catalogue)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exocube.config import get_settings
from exocube.data import PSCOMPPARS_SNAPSHOT
from exocube.errors import ParameterError
from exocube.params import from_legacy_name

console = Console()
PSCOMPPARS = PSCOMPPARS_SNAPSHOT
DEMO_PLANETS = ("TRAPPIST-1 e", "LHS 1140 b", "TOI-700 d", "Proxima Cen b")


ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Answer with this catalogue model: an id, or a name (the newest model of "
    "that name). Default: the promoted model of each mode, else the newest.")]
SelectOpt = Annotated[str | None, typer.Option(
    "--select", help="Choose the models by a rule: newest (ignore promotions), promoted (the "
    "default), best:METRIC or min:METRIC (lowest recorded value, e.g. best:val/loss), "
    "max:METRIC (highest).")]


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (serve.port).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    model: ModelOpt = None,
    select: SelectOpt = None,
) -> None:
    """Serve predictions over HTTP (FastAPI + uvicorn); OpenAPI docs at /docs. The start-up
    log names the model answering each mode and how it was chosen."""
    import logging

    import uvicorn

    from exocube.serve import create_app
    from exocube.surrogate import ModelChoice

    choice = ModelChoice.parse(model, select)
    settings = get_settings()
    if log_level.lower() in ("info", "debug", "trace"):
        logging.getLogger("exocube.serve").setLevel(logging.INFO)
    uvicorn.run(create_app(settings, choice=choice), host=host or settings.serve.host,
                port=port if port is not None else settings.serve.port, log_level=log_level)


def parse_params(items: list[str]) -> dict[str, float | str]:
    """``name=value`` pairs (legacy names accepted) into a parameter mapping."""
    out: dict[str, float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError("--param", item, "NAME=VALUE, e.g. radius_earth=1.0")
        out[from_legacy_name(name.strip())] = value.strip()
    return out


def predict(
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A parameter as NAME=VALUE (repeat for each).")] = None,
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", exists=True, dir_okay=False,
        help="A NASA Exoplanet Archive pscomppars CSV: predict every usable planet.")] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="NetCDF file (one planet) or directory (--catalog).")] = Path(
        "prediction.nc"),
    mode: Annotated[str, typer.Option(help="scalar, datacube, joint or spectral.")] = "joint",
    allow_extrapolation: Annotated[bool, typer.Option(
        "--allow-extrapolation", help="Answer far outside the training data too.")] = False,
    show: Annotated[list[str] | None, typer.Option(
        "--show", help="With --catalog: print these planets' scalar results.")] = None,
    model: ModelOpt = None,
    select: SelectOpt = None,
) -> None:
    """Predict one planet (--param) or a catalogue, with the promoted catalogue model of the
    mode (else the newest), or the one --model or --select gives; prints which model answered."""
    from exocube.surrogate import ModelChoice, Surrogate

    if (catalog is None) == (not param):
        raise typer.BadParameter("give either --param NAME=VALUE ... or --catalog FILE.csv")
    surrogate = Surrogate.from_catalogue(choice=ModelChoice.parse(model, select))
    if catalog is not None:
        console.print(surrogate.model_for(mode).info.describe(), highlight=False,
                      soft_wrap=True)
        from exocube.surrogate import predict_catalogue

        with console.status(f"predicting the planets of {catalog.name}"):
            summary = predict_catalogue(catalog, out, surrogate, mode, allow_extrapolation)
        print_catalogue_summary(summary, show or [])
        return
    prediction = surrogate.predict(parse_params(param or []), mode, allow_extrapolation)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    prediction.to_dataset().to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, out)
    console.print(f"{prediction.model.describe()}; out of domain: {prediction.out_of_domain} "
                  f"(hull distance {prediction.hull_distance:.3f})", highlight=False,
                  soft_wrap=True)
    if prediction.defaulted:
        console.print("defaults used for: " + ", ".join(
            f"{n}={prediction.params[n]:g}" for n in prediction.defaulted), highlight=False)
    if prediction.has_uncertainty:
        how = (f"deep ensemble of {prediction.n_members} members; <var>_std in the file is "
               "their standard deviation" if prediction.n_members > 1 else
               "std head; <var>_std in the file is the network's predicted standard "
               "deviation")
        console.print(f"uncertainty: {how}", highlight=False)
    for name, value in prediction.scalars.items():
        std = prediction.scalars_std.get(name)
        console.print(f"{name:>20} = {value:.4g}" + (f" +- {std:.2g}" if std is not None
                                                      else ""), highlight=False)
    console.print(f"wrote {out}", highlight=False)


def print_catalogue_summary(summary: object, show: list[str]) -> None:
    """Counts by outcome and reason, the files written, and the chosen planets."""
    from exocube.surrogate import BatchSummary

    assert isinstance(summary, BatchSummary)
    console.print(f"{summary.n_rows} planets: {len(summary.predicted)} predicted, "
                  f"{len(summary.skipped)} skipped", highlight=False)
    for reason, n in summary.reason_counts.most_common():
        console.print(f"  skipped, {reason}: {n}", highlight=False)
    for path in (summary.store, summary.scalars_csv, summary.summary_csv):
        if path is not None:
            console.print(f"wrote {path}", highlight=False)
    if not show:
        return
    import pandas as pd

    scalars = (pd.read_csv(summary.scalars_csv).set_index("pl_name")
               if summary.predicted and summary.scalars_csv else pd.DataFrame())
    for name in show:
        if name in summary.skipped:
            line = f"skipped ({summary.skipped[name]})"
        elif name in scalars.index and "global_mean_ts" in scalars.columns:
            r = scalars.loc[name]
            line = (f"global mean Ts {r['global_mean_ts']:.1f} K, day-night contrast "
                    f"{r['day_night_contrast']:.1f} K, habitable fraction "
                    f"{r['habitable_fraction']:.2f}, out of domain {bool(r['out_of_domain'])} "
                    f"(hull distance {r['hull_distance']:.2f})")
        elif name in scalars.index:
            line = "predicted; no scalar results in this mode"
        else:
            line = "not in the table"
        console.print(f"{name}: {line}", highlight=False, soft_wrap=True)


def demo_planets(out: Path, catalog: Path = PSCOMPPARS) -> None:
    """The demo's last step: scalar predictions of the catalogue's model for every usable planet
    of the archive snapshot, printing a few named ones (extrapolation allowed and flagged)."""
    from exocube.surrogate import Surrogate, predict_catalogue

    summary = predict_catalogue(catalog, out, Surrogate.from_catalogue(), mode="scalar",
                                allow_extrapolation=True)
    print_catalogue_summary(summary, list(DEMO_PLANETS))
