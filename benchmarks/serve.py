"""HTTP serving latency and throughput, against baselines measured in the same run.

Starts ``exocube serve`` in a subprocess (response cache disabled, so every
request reaches the model) and drives it from a second process with 1, 8 and
32 concurrent clients for a bounded time each. Prints p50/p95/p99 latency and
requests/s for scalar requests (JSON), datacube requests as JSON and as NumPy
binary, the error count (a 503 from a full queue counts as one), and the
bytes of one datacube answer as JSON and as binary.

Baselines printed next to the figures, measured in this run: GET /health from
the same driver at each concurrency (the HTTP floor: the driver's own cost
shows there); the in-process model call without HTTP (one ``predict_physical``
call for the datacube, the scalar head for the scalar); and the in-process
JSON encoding of one datacube answer by the encoder before issue 11
(``json.dumps`` of nested lists) against the current one (orjson). Quoted:
the seed system's 0.4 s (scalar) and 5 s (datacube). Targets (issue 11): at 32
clients the JSON datacube p99 under 3x its p50; the scalar p50 under 5 ms.

The model is the one the server would choose in the catalogue given by
--database-url (e.g. the demo's); without one, a small one is built under
--workdir: a 12-run ensemble from the built-in generator on the default
20 x 32 x 64 grid, and one epoch of the configs/surrogate_cpu_small.yaml U-Net
(the weights do not change the cost).

A model with an uncertainty (a std head, or an ensemble) is driven with its datacube
answers carrying it: JSON with ``fields_std``, and also NumPy binary of the 3-D fields with
their ``<var>_std`` (kind ``datacube-npy-std``).

With ``--members N`` (N >= 2) it then serves a deep ensemble of N such models
(seeds 0 .. N-1, grouped by ``exocube models ensemble`` in a catalogue of its own
under --workdir; its members run as one stacked network) and drives datacube
requests whose answers carry the uncertainty: JSON (``fields_std`` beside
``fields``) and NumPy binary of the 3-D fields with their ``<var>_std``, at 1 and
8 clients. Baselines in the same run: the single model's datacube p50 above and the
in-process ``Surrogate.predict`` of the ensemble (mean and std, no HTTP). Target
(issue 14): a datacube with its uncertainty under 100 ms.

    .venv/bin/python benchmarks/serve.py [--database-url URL] [--duration 4] [--members 5]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from timing import median_time

ROOT = Path(__file__).resolve().parents[1]
EXOCUBE = str(Path(sys.executable).with_name("exocube"))
SEED_SCALAR_S, SEED_DATACUBE_S = 0.4, 5.0
CLIENTS = (1, 8, 32)
KINDS = ("health", "scalar", "datacube-json", "datacube-npy")
ENSEMBLE_KINDS = ("datacube-json", "datacube-npy-std")
ENSEMBLE_CLIENTS = (1, 8)
VARIABLES_3D = ("ta", "ua", "va", "hus", "zg")


def build_model(workdir: Path) -> str:
    """A catalogue with one small trained model on the default grid; its URL."""
    db = f"sqlite:///{workdir / 'catalog.sqlite'}"
    env = {**os.environ, "EXOCUBE_HOME": str(workdir / "home"), "EXOCUBE_DATABASE_URL": db}
    if list(workdir.glob("fit/**/best-*.ckpt")):
        return db
    runs = workdir / "runs"

    def sh(*args: str) -> None:
        print("+ exocube", " ".join(args[:3]), "...", flush=True)
        subprocess.run([EXOCUBE, *args], check=True, env=env, cwd=ROOT)

    sh("generate", "--out", str(runs), "--runs", "12", "--seed", "7")
    sh("ingest", *sorted(glob.glob(str(runs / "*.nc"))), "--store", str(workdir / "cube.zarr"))
    sh("train", "fit", "--config", "configs/surrogate_cpu_small.yaml",
       "--data.zarr_root", str(workdir / "cube.zarr"), "--trainer.max_epochs", "1",
       "--trainer.default_root_dir", str(workdir / "fit"))
    return db


def build_ensemble(workdir: Path, db: str, members: int) -> str:
    """A catalogue of its own holding ``members`` models like :func:`build_model`'s
    (seeds 0 .. N-1, trained on its store) grouped into one ensemble; its URL."""
    manifest = workdir / f"ensemble{members}.json"
    ens_db = f"sqlite:///{workdir / f'ensemble{members}.sqlite'}"
    if manifest.is_file():
        return ens_db
    env = {**os.environ, "EXOCUBE_HOME": str(workdir / "home"), "EXOCUBE_DATABASE_URL": ens_db}
    for seed in range(members):
        print(f"+ exocube train fit ... --seed_everything {seed}", flush=True)
        subprocess.run([EXOCUBE, "train", "fit", "--config", "configs/surrogate_cpu_small.yaml",
                        "--data.zarr_root", str(workdir / "cube.zarr"),
                        "--data.database_url", db, "--trainer.max_epochs", "1",
                        "--seed_everything", str(seed),
                        "--trainer.default_root_dir", str(workdir / f"fit-member{seed}")],
                       check=True, env=env, cwd=ROOT)
    subprocess.run([EXOCUBE, "models", "ensemble", *map(str, range(1, members + 1)), "--name",
                    f"bench-ensemble{members}", "--manifest", str(manifest), "--url", ens_db],
                   check=True, env=env, cwd=ROOT)
    return ens_db


def training_body(db: str) -> tuple[dict[str, float], object]:
    from exocube.serve.schemas import EARTH
    from exocube.surrogate import Surrogate

    s = Surrogate.from_catalogue(db)
    model = s.models["datacube"]
    # fields a v2 model does not use but the HTTP schema requires keep the Sun's values
    return {**EARTH, **model.training_request(model.task.spec.split.train[0])}, s


def in_process_baselines(s: object, body: dict[str, float], repeats: int = 20
                         ) -> tuple[float, float]:
    """Median seconds of one in-process model call: scalar head, full datacube."""
    import torch

    from exocube.surrogate import check_request

    task = s.models["datacube"].task  # type: ignore[attr-defined]
    checked = check_request(body, task.spec.params.names)
    p = torch.tensor([task.spec.params.vector({**checked.params, **checked.drivers})],
                     dtype=torch.float32)
    locked = torch.tensor([checked.tidally_locked])

    torch.set_num_threads(1)  # as the server (serve.torch_threads)
    with torch.inference_mode():
        scalar = median_time(lambda: task.scalar_model(task.encode(p, locked)), repeats)
        cube = median_time(lambda: task.predict_physical(p, locked), repeats)
    return scalar, cube


def json_dumps_encoding(p: object) -> bytes:
    """The datacube JSON encoder before issue 11: json.dumps of nested lists (baseline)."""
    from exocube.grid import CF_META
    from exocube.surrogate.prediction import FIELD_DIMS_2D, FIELD_DIMS_3D, SCALAR_META

    doc = p.metadata()  # type: ignore[attr-defined]
    fields = p.fields  # type: ignore[attr-defined]
    doc["scalars"] = p.scalars  # type: ignore[attr-defined]
    doc["units"] = {**{n: SCALAR_META[n] for n in doc["scalars"]},
                    **{n: CF_META[n][1] for n in fields}}
    doc["coords"] = {k: v.tolist() for k, v in p.coords.items()}  # type: ignore[attr-defined]
    doc["dims"] = {n: list(FIELD_DIMS_3D if a.ndim == 3 else FIELD_DIMS_2D)
                   for n, a in fields.items()}
    doc["dims"]["temperature_field"] = doc["dims"]["ta"]

    def arr(a: np.ndarray) -> str:
        return json.dumps(a.tolist()).replace("NaN", "null")

    parts = [f'"{n}": {arr(a)}' for n, a in fields.items()]
    parts.append(f'"temperature_field": {arr(fields["ta"])}')
    return (json.dumps(doc)[:-1] + ', "fields": {' + ", ".join(parts) + "}}").encode()


def encoding_baselines(s: object, body: dict[str, float], repeats: int = 10
                       ) -> tuple[float, float]:
    """Median seconds to encode one datacube answer as JSON: before issue 11, now (the
    answer without its uncertainty, which the encoder before issue 11 did not know)."""
    from dataclasses import replace

    from exocube.serve.encoding import to_json

    p = replace(s.predict(body, "datacube", allow_extrapolation=True),  # type: ignore
                fields_std={}, scalars_std={})

    assert json.loads(to_json(p)) == json.loads(json_dumps_encoding(p))
    return (median_time(lambda: json_dumps_encoding(p), repeats),
            median_time(lambda: to_json(p), repeats))


def datacube_sizes(url: str, body: dict[str, float]) -> tuple[int, int, int, int]:
    """Bytes of one datacube answer: JSON, JSON without the temperature_field copy, the
    default NumPy answer (3-D fields), and the two NumPy answers (3-D fields, 2-D fields)
    that carry the same arrays as the JSON."""
    r = httpx.post(url + "/predict/datacube", json=body, timeout=60)
    r.raise_for_status()
    json_b = len(r.content)
    dedup_b = max(r.content.rfind(b',"temperature_field":'),  # orjson, or json.dumps before
                  r.content.rfind(b', "temperature_field": ')) + 2
    d = httpx.post(url + "/predict/datacube", json=body, headers={"Accept": "application/x-npy"},
                   timeout=60)
    d.raise_for_status()
    npy_b = 0
    for variables in ("ta,ua,va,hus,zg", "ps,ts"):
        b = httpx.post(url + "/predict/datacube", params={"variables": variables}, json=body,
                       headers={"Accept": "application/x-npy"}, timeout=60)
        b.raise_for_status()
        npy_b += len(b.content)
    return json_b, dedup_b, len(d.content), npy_b


def start_server(db: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "EXOCUBE_DATABASE_URL": db, "EXOCUBE_SERVE__CACHE_SIZE": "0",
           "EXOCUBE_HOME": tempfile.mkdtemp(prefix="exocube-bench-home-")}
    proc = subprocess.Popen([EXOCUBE, "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"exocube serve exited with {proc.returncode}")
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("exocube serve did not become ready in 120 s")


async def _drive(url: str, kind: str, clients: int, duration: float,
                 body: dict[str, float]) -> dict[str, object]:
    path, accept = {"scalar": ("/predict/scalar", "application/json"),
                    "datacube-json": ("/predict/datacube", "application/json"),
                    "datacube-npy": ("/predict/datacube", "application/x-npy"),
                    "datacube-npy-std": ("/predict/datacube", "application/x-npy"),
                    "health": ("/health", "application/json")}[kind]
    query = ({"variables": ",".join([*VARIABLES_3D, *(v + "_std" for v in VARIABLES_3D)])}
             if kind == "datacube-npy-std" else None)
    lat: list[float] = []
    errors = 0
    counter = 0
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def worker() -> None:
            nonlocal errors, counter
            while time.perf_counter() < stop:
                counter += 1  # distinct bodies: no two requests are identical
                b = {**body, "pco2_bar": body["pco2_bar"] * (1 + 1e-6 * counter)}
                t0 = time.perf_counter()
                try:
                    if kind == "health":
                        r = await http.get(path)
                    else:
                        r = await http.post(path, json=b, headers={"Accept": accept},
                                            params=query)
                    ok = r.status_code == 200
                    await r.aread()
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {"kind": kind, "clients": clients, "n": len(lat), "errors": errors,
            "p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)), "rps": len(lat) / wall}


async def _abandon(url: str, body: dict[str, float], rounds: int = 3) -> dict[str, object]:
    """32 clients send a datacube request and leave after 0.2 s; then one more request is
    timed. Before issue 11 the server computed the 32 anyway and the next one waited."""
    host, port = url.removeprefix("http://").split(":")
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for k in range(rounds):
            writers = []
            for i in range(32):
                b = json.dumps({**body, "pco2_bar": body["pco2_bar"] * (1 + 1e-5 * (i + 1)),
                                "radius_earth": body["radius_earth"] * (1 + 1e-6 * k)}).encode()
                _, w = await asyncio.open_connection(host, int(port))
                w.write(b"POST /predict/datacube HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: " + str(len(b)).encode()
                        + b"\r\n\r\n" + b)
                writers.append(w)
            await asyncio.sleep(0.2)
            for w in writers:
                w.close()
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            r = await http.post("/predict/datacube", json={**body, "pco2_bar": body["pco2_bar"]
                                                          * (1 - 1e-5 * (k + 1))})
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
            await asyncio.sleep(1.0)  # let a call in progress at the departures finish
    return {"kind": "abandon", "median": statistics.median(times), "times": times}


def drive_main(args: argparse.Namespace) -> None:
    """The second process: one load level, JSON result on stdout."""
    body = json.loads(args.body)
    if args.kind == "abandon":
        print(json.dumps(asyncio.run(_abandon(args.drive, body))))
        return
    print(json.dumps(asyncio.run(_drive(args.drive, args.kind, args.clients, args.duration,
                                        body))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="catalogue with a trained model")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir())
                    / "exocube-bench-serve")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per load level")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--members", type=int, default=0,
                    help="also serve a deep ensemble of this many models (>= 2)")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--body", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        drive_main(args)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.database_url or build_model(args.workdir)
    body, surrogate = training_body(db)
    answer = surrogate.predict(body, "datacube", allow_extrapolation=True)  # type: ignore
    kinds = (*KINDS, "datacube-npy-std") if answer.has_uncertainty else KINDS
    print(f"model: {answer.model.describe()}; datacube answers "
          + (f"carry their uncertainty ({answer.uncertainty_method}, {answer.n_members} "
             "network(s))" if answer.has_uncertainty else "have no uncertainty"))
    base_scalar, base_cube = in_process_baselines(surrogate, body)
    enc_before, enc_now = encoding_baselines(surrogate, body)
    print(f"cores: {os.cpu_count()} (shared machine: other processes compete for them); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"in-process model call (measured baseline): scalar head {base_scalar * 1e3:.2f} ms, "
          f"datacube {base_cube * 1e3:.1f} ms")
    print(f"in-process JSON encoding of one datacube answer: json.dumps of nested lists "
          f"(before issue 11, baseline) {enc_before * 1e3:.1f} ms, orjson now "
          f"{enc_now * 1e3:.2f} ms: {enc_before / enc_now:.0f}x faster")
    proc = start_server(db, args.port)
    url = f"http://127.0.0.1:{args.port}"
    try:
        sizes = datacube_sizes(url, body)
        results = []
        for kind in kinds:
            for clients in CLIENTS:
                out = subprocess.run(
                    [sys.executable, __file__, "--drive", url, "--kind", kind, "--clients",
                     str(clients), "--duration", str(args.duration), "--body", json.dumps(body)],
                    check=True, capture_output=True, text=True)
                results.append(json.loads(out.stdout))
        out = subprocess.run([sys.executable, __file__, "--drive", url, "--kind", "abandon",
                              "--body", json.dumps(body)],
                             check=True, capture_output=True, text=True)
        abandon = json.loads(out.stdout)
        still_ready = httpx.get(url + "/ready", timeout=10).json()["ready"]
    finally:
        proc.terminate()
        proc.wait(30)
    report(results, base_scalar, base_cube, sizes, still_ready)
    n1 = next(r for r in results if r["kind"] == "datacube-json" and r["clients"] == 1)
    print(f"next datacube request after 32 clients left theirs: median "
          f"{abandon['median'] * 1e3:.0f} ms of {len(abandon['times'])} rounds (each "
          f"{', '.join(f'{t * 1e3:.0f}' for t in abandon['times'])} ms) vs the 1-client JSON "
          f"p50 {n1['p50'] * 1e3:.0f} ms (baseline)")
    if args.members >= 2:
        ensemble_case(args, build_ensemble(args.workdir, db, args.members), body, n1)
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def drive(url: str, kind: str, clients: int, duration: float, body: dict[str, float]
          ) -> dict[str, object]:
    """One load level, driven from a second process."""
    out = subprocess.run([sys.executable, __file__, "--drive", url, "--kind", kind,
                          "--clients", str(clients), "--duration", str(duration),
                          "--body", json.dumps(body)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def ensemble_case(args: argparse.Namespace, ens_db: str, body: dict[str, float],
                  single: dict[str, object]) -> None:
    """The ensemble's datacube answers with their uncertainty over HTTP, next to the
    single model's and to the in-process ensemble call."""
    from exocube.surrogate import Surrogate

    ens = Surrogate.from_catalogue(ens_db)
    answer = ens.predict(body, "datacube", allow_extrapolation=True)
    assert answer.n_members == args.members and set(answer.fields_std) == set(answer.fields)
    in_process = median_time(lambda: ens.predict(body, "datacube", allow_extrapolation=True),
                             20)
    proc = start_server(ens_db, args.port)
    url = f"http://127.0.0.1:{args.port}"
    try:
        r = httpx.post(url + "/predict/datacube", json=body, timeout=60)
        r.raise_for_status()
        doc = r.json()
        assert set(VARIABLES_3D) <= set(doc["fields_std"]), "no std fields over HTTP"
        results = [drive(url, kind, clients, args.duration, body)
                   for kind in ENSEMBLE_KINDS for clients in ENSEMBLE_CLIENTS]
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"\nensemble of {args.members} members (stacked), datacube with its uncertainty; "
          f"in-process Surrogate.predict (baseline) {in_process * 1e3:.1f} ms")
    print(f"{'kind':<18}{'clients':>8}{'requests':>10}{'errors':>8}{'p50 ms':>10}"
          f"{'p95 ms':>10}{'p99 ms':>10}{'req/s':>9}  baseline")
    for r in results:
        print(f"{r['kind']:<18}{r['clients']:>8}{r['n']:>10}{r['errors']:>8}"
              f"{r['p50'] * 1e3:>10.2f}{r['p95'] * 1e3:>10.2f}{r['p99'] * 1e3:>10.2f}"
              f"{r['rps']:>9.1f}  single model JSON p50 (1 client) "
              f"{single['p50'] * 1e3:.1f} ms; target < 100 ms")
    j1 = next(r for r in results if r["kind"] == "datacube-json" and r["clients"] == 1)
    print(f"ensemble datacube + std JSON p50 (1 client) {j1['p50'] * 1e3:.1f} ms = "
          f"{j1['p50'] / single['p50']:.2f}x the single model's, "
          f"{j1['p50'] / in_process:.2f}x the in-process call; target < 100 ms")


def report(results: list[dict], base_scalar: float, base_cube: float,
           sizes: tuple[int, int, int, int], still_ready: bool) -> None:
    print(f"\n{'kind':<14}{'clients':>8}{'requests':>10}{'errors':>8}{'p50 ms':>10}"
          f"{'p95 ms':>10}{'p99 ms':>10}{'p99/p50':>9}{'req/s':>9}  baseline")
    floor = {r["clients"]: r for r in results if r["kind"] == "health"}
    for r in results:
        note = "(HTTP floor: GET /health, same driver)" if r["kind"] == "health" else (
            f"floor p50 {floor[r['clients']]['p50'] * 1e3:.2f} ms; seed quoted "
            f"{SEED_SCALAR_S if r['kind'] == 'scalar' else SEED_DATACUBE_S:g} s")
        print(f"{r['kind']:<14}{r['clients']:>8}{r['n']:>10}{r['errors']:>8}"
              f"{r['p50'] * 1e3:>10.2f}{r['p95'] * 1e3:>10.2f}{r['p99'] * 1e3:>10.2f}"
              f"{r['p99'] / r['p50']:>9.2f}{r['rps']:>9.1f}  {note}")
    by = {(r["kind"], r["clients"]): r for r in results}
    s1, h1 = by[("scalar", 1)], by[("health", 1)]
    print(f"\nscalar p50 (1 client) {s1['p50'] * 1e3:.2f} ms; target < 5 ms; the HTTP floor "
          f"(GET /health, same client) is {h1['p50'] * 1e3:.2f} ms and the in-process scalar "
          f"head {base_scalar * 1e3:.2f} ms")
    j32 = by[("datacube-json", 32)]
    print(f"datacube JSON at 32 clients: p50 {j32['p50'] * 1e3:.0f} ms, p99 "
          f"{j32['p99'] * 1e3:.0f} ms, p99/p50 {j32['p99'] / j32['p50']:.2f}; target < 3")
    n1 = by[("datacube-npy", 1)]
    print(f"datacube p50 (1 client, binary) {n1['p50'] * 1e3:.1f} ms; in-process "
          f"predict_physical {base_cube * 1e3:.1f} ms (ratio {n1['p50'] / base_cube:.2f})")
    json_b, dedup_b, default_b, npy_b = sizes
    print(f"default datacube responses: JSON {json_b:,} bytes vs NumPy binary {default_b:,} "
          f"(the 3-D fields): {json_b / default_b:.1f}x smaller")
    print(f"datacube response bytes, all 7 fields: JSON {json_b:,} ({dedup_b:,} without the "
          f"compatibility copy of ta as temperature_field) vs NumPy binary {npy_b:,} "
          f"(3-D and 2-D arrays); binary {json_b / npy_b:.1f}x smaller "
          f"({dedup_b / npy_b:.1f}x without the copy)")
    errors = sum(r["errors"] for r in results if r["clients"] == 32)
    print(f"errors at 32 clients: {errors}; server still ready afterwards: {still_ready}")

if __name__ == "__main__":
    main()
