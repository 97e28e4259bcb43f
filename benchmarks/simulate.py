"""ExoPlaSim ensemble throughput: 4 short T21 runs on 2 Dask workers vs 1 worker, and the
driver's overhead next to ExoPlaSim's own run time, measured in the same run.

Each run is ``--years`` model years of ``--year-days`` days (a restart segment each), the
same design for both cluster sizes, each in a fresh ensemble directory and catalogue.
Output is written twice a year and kept as 2 time steps: ExoPlaSim 3.4.2's post-processor
fails when it averages 10 daily outputs into 2 steps (``zg`` comes out on 11 half levels for
10 levels; its own error report then raises ``TypeError: _log() takes 2 positional
arguments``), and the driver records that as a failed run.
Printed:

1. wall time of the whole ensemble on 1 worker and on 2 workers, and the speed-up
   (target: at least 1.8x on 2 free cores);
2. ExoPlaSim's own time (the ``Model.run(years=1)`` calls, model plus its post-processor)
   summed over the runs, next to the driver's time (everything else: Dask task start,
   design validation, ``Model`` set-up and ``configure``, diagnostics, output file,
   catalogue), as a fraction (target: under 5 %; short runs make it look worse than a
   real year-long segment would).

The model is compiled first (outside the timings). The machine may be shared: the load
average is printed before and after; a figure measured with a load average above the
number of cores is not meaningful.
Usage: python benchmarks/simulate.py [--years 2] [--year-days 10] [--runs 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from exocube import parallel
from exocube.config import DaskOptions
from exocube.gcm.exoplasim_config import RunLength, design_row
from exocube.gcm.exoplasim_ensemble import ExoPlaSimEnsembleResult, simulate_ensemble

EARTHLIKE = {
    "radius_earth": "1.0", "mass_earth": "1.0", "orbital_period_days": "365.0",
    "insolation_earth": "1.0", "stellar_teff_k": "5772", "stellar_logg_cgs": "4.44",
    "stellar_metallicity_dex": "0.0", "host_mass_msun": "1.0", "rotation_period_days": "1.0",
}


def design(n: int) -> list:
    return [design_row({**EARTHLIKE, "run_id": f"bench{i}",
                        "insolation_earth": f"{0.8 + 0.1 * i:.2f}"}, f"benchmark row {i}")
            for i in range(n)]


def run(workers: int, root: Path, length: RunLength,
        n: int) -> tuple[float, ExoPlaSimEnsembleResult]:
    out = root / f"ens-{workers}"
    db = f"sqlite:///{root / f'catalog-{workers}.sqlite'}"
    opts = DaskOptions(n_workers=workers, threads_per_worker=1)
    with parallel.client(options=opts) as client:
        t0 = time.perf_counter()
        result = simulate_ensemble(design(n), out, db, client, length=length)
        wall = time.perf_counter() - t0
    bad = [f"{o.run_id} ({o.status}): {o.error}" for o in result.outcomes
           if o.status != "complete"]
    if bad:
        raise SystemExit("runs did not complete:\n" + "\n".join(bad))
    return wall, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--year-days", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=4)
    args = ap.parse_args()
    length = RunLength(years=args.years, year_days=args.year_days,
                       write_days=args.year_days / 2, times=2)
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="exocube-bench-simulate-") as tmp:
        root = Path(tmp)
        run(1, root / "warm-up", RunLength(years=1, year_days=1.0, write_days=1.0, times=1), 1)
        one, res1 = run(1, root, length, args.runs)
        two, res2 = run(2, root, length, args.runs)
    print(f"{args.runs} runs x {args.years} years x {args.year_days} days, T21")
    print(f"baseline 1 worker : {one:8.2f} s wall")
    print(f"2 workers         : {two:8.2f} s wall   speed-up {one / two:.2f}x (target >= 1.8x)")
    for label, result, wall in (("1 worker", res1, one), ("2 workers", res2, two)):
        model = sum(o.model_time_s for o in result.outcomes)
        tasks = sum(o.task_time_s for o in result.outcomes)
        print(f"{label:9s}: ExoPlaSim's own time {model:8.2f} s, driver overhead inside tasks "
              f"{tasks - model:6.2f} s ({(tasks - model) / model:.1%}), outside tasks "
              f"{max(wall * int(label[0]) - tasks, 0.0):6.2f} worker-s "
              f"({max(wall * int(label[0]) - tasks, 0.0) / model:.1%}) (target < 5 %)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
