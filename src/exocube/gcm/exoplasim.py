"""Drive one ExoPlaSim run through ExoPlaSim's own API, restartable year by year.

A run is a directory ``<out>/runs/<run_id>/``:

- ``state.json``: the run's state (``running``, ``complete`` or ``failed``), the years done
  and, per year, where it started from (``cold`` or the restart file) and how long
  ExoPlaSim took; rewritten atomically after every model year;
- ``model/``: ExoPlaSim's working directory (``exoplasim.Model(workdir=...)``), keeping the
  last restart file ``MOST_REST.<year>`` and the last two post-processed years;
- ``exoplasim.log``: everything ExoPlaSim and its Fortran model printed;
- ``<run_id>_crashed/``: where ExoPlaSim moves the working files when the model crashes.

:func:`run_exoplasim` (what a Dask worker executes) runs the missing years with
``Model.run(years=1)``; a run stopped part-way (SIGKILL, node failure) continues from its last
restart file, passed to ``Model.configure(restartfile=...)``, never from a cold start. A model
crash (ExoPlaSim raises ``RuntimeError``) is recorded as ``failed`` with the model's reason and
the log tail. The finished run's last year is copied to ``<out>/<run_id>.nc`` with the planet's
parameters and equilibrium diagnostics as global attributes (temporary name, then rename).

ExoPlaSim builds its Fortran model into its own package directory (``site-packages/exoplasim``)
at first use; builds are serialised with a lock file there. Its Python FFT helper (``pyfft``)
cannot be built by ExoPlaSim 3.4.2 on Python 3.11 with numpy 2 (numpy.distutils is broken
with current setuptools), so it is built here with f2py's meson backend, once, in the same
place.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from exocube import __version__
from exocube.errors import InputDataError, MissingToolError, SimulationError
from exocube.gcm.equilibrium import DEFAULT_CRITERIA, EquilibriumCriteria, diagnose
from exocube.gcm.exoplasim_config import ExoPlaSimRunConfig
from exocube.gcm.netcdf import sha256_of
from exocube.params import ALL_NAMES
from exocube.physics import surface_gravity

log = logging.getLogger(__name__)

GCM_NAME = "exoplasim"
STATE_FORMAT = 1
LOG_TAIL_LINES = 40
REASON_MARKERS = ("Program received signal", "Abort", "Non-finite", "NaN", "Error", "error")
NOT_REASONS = ("Backtrace for this error", "ExoPlaSim has crashed")
# ExoPlaSim changes the working directory and exocube redirects file descriptors 1 and 2:
# both are per process, so runs in one process (a worker with several threads) take turns.
PROCESS_LOCK = threading.Lock()
STALE = ("plasim_output", "plasim_status", "plasim_diag", "plasim_snapshot", "Abort_Message")


def exoplasim_version() -> str:
    return metadata.version("exoplasim")


@dataclass
class RunState:
    """The content of a run's ``state.json``."""

    run_id: str
    config_digest: str
    years_target: int
    status: str = "running"
    years_done: int = 0
    segments: list[dict[str, Any]] = field(default_factory=list)
    resumes: list[dict[str, Any]] = field(default_factory=list)
    stopped_models: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    log_tail: str | None = None
    output: str | None = None
    sha256: str | None = None
    diagnostics: dict[str, Any] | None = None
    r_gas_j_kg_k: float | None = None
    wall_time_s: float = 0.0
    model_time_s: float = 0.0
    gcm_version: str = ""
    format: int = STATE_FORMAT

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise SimulationError(f"run state {path} is unreadable ({exc}); delete the run "
                                  "directory to start that run again") from exc


@dataclass(frozen=True)
class RunOutcome:
    """What one run task reports back to the ensemble driver."""

    run_id: str
    status: str
    years_done: int
    output: str | None
    sha256: str | None
    parameters: dict[str, float]
    diagnostics: dict[str, Any] | None
    error: str | None
    log_tail: str | None
    wall_time_s: float
    model_time_s: float
    task_time_s: float
    resumed_from: list[str]
    gcm_version: str
    ran: bool


def check_tools(ncpus: int) -> None:
    """Refuse to start without the compilers ExoPlaSim needs, naming the Debian packages."""
    if shutil.which("gfortran") is None:
        raise MissingToolError(
            "gfortran is not installed (ExoPlaSim compiles its Fortran model at first use): "
            "install the Debian package gfortran (apt-get install gfortran)")
    if ncpus > 1 and (shutil.which("mpiexec") is None or shutil.which("mpif90") is None):
        raise MissingToolError(
            f"ncpus={ncpus} needs MPI (mpiexec, mpif90): install the Debian packages "
            "openmpi-bin and libopenmpi-dev, or run with ncpus=1")


def package_dir() -> Path:
    """Where ExoPlaSim is installed (and builds its model)."""
    spec = importlib.util.find_spec("exoplasim")
    if spec is None or spec.origin is None:
        raise MissingToolError(
            "the Python package exoplasim is not installed: pip install 'exocube[gcm]'")
    return Path(spec.origin).parent


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Serialise ExoPlaSim's first-use configuration and compilation (one per install)."""
    with open(package_dir() / ".exocube-build.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_pyfft(nlat: int) -> None:
    """Build ExoPlaSim's f2py FFT module with the meson backend when it is missing."""
    name = "pyfft991" if nlat in (192, 320) else "pyfft"
    pkg = package_dir()
    if list(pkg.glob(f"{name}.cpython-*.so")):
        return
    with tempfile.TemporaryDirectory(prefix="exocube-pyfft-") as tmp:
        shutil.copy(pkg / f"{name}.f90", tmp)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        proc = subprocess.run(
            [sys.executable, "-m", "numpy.f2py", "-c", "--backend", "meson", "-m", name,
             f"{name}.f90"], cwd=tmp, env=env, capture_output=True, text=True, check=False)
        built = list(Path(tmp).glob(f"{name}.cpython-*.so"))
        if proc.returncode != 0 or not built:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise SimulationError(f"building ExoPlaSim's {name} module with f2py failed "
                                  f"(exit {proc.returncode}):\n{tail}")
        tmp_target = pkg / f".{built[0].name}.{uuid.uuid4().hex}.tmp"
        shutil.copy(built[0], tmp_target)
        os.replace(tmp_target, pkg / built[0].name)


NLATS = {"T21": 32, "T42": 64, "T63": 96, "T85": 128, "T106": 160, "T127": 192, "T170": 256}


def executable_path(config: ExoPlaSimRunConfig) -> Path:
    nsp = int(config.resolution[1:])
    return (package_dir() / "plasim" / "run"
            / f"most_plasim_t{nsp}_l{config.layers}_p{config.ncpus}.x")


@contextlib.contextmanager
def captured_output(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so the Fortran model's
    and the shell commands' output too) to ``path`` for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    cwd = os.getcwd()
    with path.open("ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            os.chdir(cwd)  # ExoPlaSim changes directory and does not always change back


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock; a run another live process is driving is refused."""
    fh = (run_dir / ".lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise SimulationError(
            f"run {run_dir.name} is being run by another process (lock {run_dir / '.lock'}); "
            "wait for it to finish or stop it") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def run_exoplasim(config_doc: dict[str, Any], run_dir: str, out_dir: str,
                  criteria: EquilibriumCriteria = DEFAULT_CRITERIA) -> RunOutcome:
    """Run (or continue, or report) one ExoPlaSim run; the Dask task of an ensemble."""
    started = time.perf_counter()
    config = ExoPlaSimRunConfig.from_dict(config_doc)
    rdir = Path(run_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    state_path = rdir / "state.json"
    with PROCESS_LOCK, run_lock(rdir):
        state = _initial_state(state_path, config)
        if state.status in ("complete", "failed"):
            return _outcome(state, config, started, [], ran=False)
        check_tools(config.ncpus)
        resumed: list[str] = []
        with captured_output(rdir / "exoplasim.log"):
            _drive(config, rdir, Path(out_dir), state, state_path, criteria, resumed)
        return _outcome(state, config, started, resumed, ran=True)


def _initial_state(path: Path, config: ExoPlaSimRunConfig) -> RunState:
    if not path.exists():
        state = RunState(run_id=config.row.run_id, config_digest=config.digest(),
                         years_target=config.length.years, gcm_version=exoplasim_version())
        state.save(path)
        return state
    state = RunState.load(path)
    if state.config_digest != config.digest():
        raise InputDataError(
            f"{path.parent} was made from another configuration of run {config.row.run_id} "
            "(design row, year length or resolution changed); write to another --out "
            "directory or delete that run directory")
    state.years_target = config.length.years
    if state.status == "complete" and _extended(config, state):
        log.info("run %s: extending from %d to %d years", state.run_id, state.years_done,
                 state.years_target)
        state.status = "running"
    return state


def _extended(config: ExoPlaSimRunConfig, state: RunState) -> bool:
    """A complete run given a higher year cap continues, unless it stopped at equilibrium."""
    if state.years_done >= config.length.years:
        return False
    stopped_early = config.length.min_years is not None and bool(
        (state.diagnostics or {}).get("equilibrated"))
    return not stopped_early


def _drive(config: ExoPlaSimRunConfig, rdir: Path, out_dir: Path, state: RunState,
           state_path: Path, criteria: EquilibriumCriteria, resumed: list[str]) -> None:
    t0 = time.perf_counter()
    workdir = rdir / "model"
    restart = _restart_file(workdir, state.years_done)
    stopped = stop_stray_models(workdir)
    if stopped:
        state.stopped_models.append({"year": state.years_done, "pids": stopped})
    _clear_unfinished_year(workdir, state.years_done)
    model = _model(config, workdir, state.years_done, restart)
    if restart is not None:
        resumed.append(restart.name)
        state.resumes.append({"year": state.years_done, "restart": restart.name,
                              "pid": os.getpid()})
    state.r_gas_j_kg_k = float(model.gascon)
    while (state.status == "running" and state.years_done < state.years_target
           and not _equilibrated_early(config, workdir, state, criteria)):
        year = state.years_done
        y0 = time.perf_counter()
        try:
            model.run(years=1, crashifbroken=True, clean=True)
        except RuntimeError as exc:
            _record_crash(state, rdir, year, exc)
            break
        finally:
            _close_leaked_datasets()
        seconds = time.perf_counter() - y0
        state.segments.append({"year": year, "start": restart.name if restart else "cold",
                               "model_seconds": round(seconds, 3)})
        state.years_done += 1
        state.model_time_s += seconds
        state.wall_time_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        _prune(workdir, year)
        state.save(state_path)
        restart = workdir / f"MOST_REST.{year:05d}"
    if state.status == "running":
        _finish(config, workdir, out_dir, state, criteria)
    state.wall_time_s += time.perf_counter() - t0
    state.save(state_path)


def _close_leaked_datasets() -> None:
    """Close the netCDF4 datasets ExoPlaSim's integrity check leaves open.

    ``exoplasim.gcmt.load`` holds each year file in a reference cycle (dataset and its
    variables), so its file stays open until the cyclic garbage collector runs, at a random
    later allocation. One CI run failed to open such a year file ("NetCDF: Can't open HDF5
    attribute"; not reproduced since); collecting after each year means no collection can
    close a shared HDF5 file while the driver reads it.
    """
    gc.collect()


def _year_files(workdir: Path, years_done: int) -> list[Path]:
    """The last two post-processed years (what the diagnostics read)."""
    return [workdir / f"MOST.{y:05d}.nc" for y in range(max(0, years_done - 2), years_done)]


def _equilibrated_early(config: ExoPlaSimRunConfig, workdir: Path, state: RunState,
                        criteria: EquilibriumCriteria) -> bool:
    """With ``min_years`` set: stop once that many years are done and the run is equilibrated."""
    min_years = config.length.min_years
    if min_years is None or state.years_done < max(min_years, 2):
        return False
    return diagnose(_year_files(workdir, state.years_done), config.year_days,
                    criteria).equilibrated


def _model(config: ExoPlaSimRunConfig, workdir: Path, year: int, restart: Path | None) -> Any:
    import exoplasim

    with build_lock():
        model = exoplasim.Model(**config.model_kwargs(workdir, year))
        if not executable_path(config).exists():
            raise SimulationError(
                f"ExoPlaSim could not compile {executable_path(config).name}; its compiler "
                f"output is in {workdir.parent / 'exoplasim.log'}")
        ensure_pyfft(NLATS[config.resolution])
    model.configure(**config.configure_kwargs(restart))
    model.cfgpostprocessor(**config.postprocessor_kwargs())
    return model


def _restart_file(workdir: Path, years_done: int) -> Path | None:
    if years_done == 0:
        return None
    path = workdir / f"MOST_REST.{years_done - 1:05d}"
    if not path.is_file():
        raise SimulationError(
            f"{workdir.parent.name}: {years_done} years are done but the restart file {path} "
            "is missing, so the run cannot continue; delete the run directory to start again")
    return path


def stray_models(workdir: Path) -> list[int]:
    """Process ids of ExoPlaSim model executables still running in ``workdir``: left by a
    driver that was killed (its Dask worker dies with it, the Fortran model runs on until
    the end of its year). Linux only (reads ``/proc``)."""
    target = str(workdir.resolve())
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (os.readlink(proc / "cwd") == target
                    and (proc / "comm").read_text().startswith("most_plasim")):
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to inspect
            continue
    return found


def stop_stray_models(workdir: Path, timeout_s: float = 30.0) -> list[int]:
    """Kill leftover model processes of this run (we hold its lock, so nobody drives it);
    the ids of those stopped."""
    pids = stray_models(workdir) if workdir.is_dir() else []
    stopped = list(pids)
    for pid in pids:
        log.warning("stopping ExoPlaSim process %d left running in %s", pid, workdir)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + timeout_s
    while pids and time.monotonic() < end:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.1)
    if pids:
        raise SimulationError(f"ExoPlaSim processes {pids} in {workdir} did not stop; stop "
                              "them before running this run again")
    return stopped


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _clear_unfinished_year(workdir: Path, years_done: int) -> None:
    """Remove what a killed year left behind (its raw output, diagnostics, restart)."""
    if not workdir.is_dir():
        return
    for name in STALE:
        (workdir / name).unlink(missing_ok=True)
    for pattern in ("MOST.*", "MOST_DIAG.*", "MOST_REST.*", "MOST_SNOW.*"):
        for path in workdir.glob(pattern):
            digits = path.name.split(".")[1]
            if digits.isdigit() and int(digits) >= years_done:
                path.unlink()


def _prune(workdir: Path, year: int) -> None:
    """Keep the last restart file and the last two post-processed years."""
    for path in (workdir / f"MOST_REST.{year - 1:05d}", workdir / f"MOST.{year - 2:05d}.nc",
                 workdir / f"MOST_SNOW.{year - 1:05d}"):
        path.unlink(missing_ok=True)


def _record_crash(state: RunState, rdir: Path, year: int, exc: RuntimeError) -> None:
    tail = _tail(rdir / "exoplasim.log")
    state.status = "failed"
    state.error = f"ExoPlaSim crashed in model year {year}: {crash_reason(exc, rdir, tail)}"
    state.log_tail = tail
    log.warning("run %s failed: %s", state.run_id, state.error)


def crash_reason(exc: BaseException, rdir: Path, tail: str) -> str:
    """The model's own reason: its Abort_Message, a signal or NaN line of its log, and
    ExoPlaSim's exception chain."""
    parts = []
    for abort in rdir.glob("*_crashed/Abort_Message"):
        parts.append(abort.read_text(errors="replace").strip())
    lines = [ln.strip() for ln in tail.splitlines()
             if any(m in ln for m in REASON_MARKERS) and not any(n in ln for n in NOT_REASONS)]
    parts.extend(lines[-3:])
    chain: list[str] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 4:
        chain.append(f"{type(cur).__name__}: {cur}")
        cur = cur.__context__
    parts.append(" <- ".join(chain))
    return "; ".join(p for p in parts if p)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return ""
    text = path.read_bytes()[-65536:].decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _finish(config: ExoPlaSimRunConfig, workdir: Path, out_dir: Path, state: RunState,
            criteria: EquilibriumCriteria) -> None:
    years = _year_files(workdir, state.years_done)
    diag = diagnose([p for p in years if p.exists()], config.year_days, criteria)
    target = out_dir / f"{config.row.run_id}.nc"
    write_output(years[-1], target, config, state, diag.to_dict())
    state.status = "complete"
    state.diagnostics = diag.to_dict()
    state.output = str(target.resolve())
    state.sha256 = sha256_of(target)


def output_attrs(config: ExoPlaSimRunConfig, state: RunState,
                 diagnostics: dict[str, Any]) -> dict[str, Any]:
    """Global attributes of a run's output file: what ``exocube ingest`` needs, and provenance."""
    row = config.row
    attrs: dict[str, Any] = {
        "source": f"ExoPlaSim {exoplasim_version()} (driven by exocube {__version__})",
        "run_id": row.run_id,
        **{name: float(row.planet_params[name]) for name in ALL_NAMES},
        "gravity_m_s2": float(surface_gravity(row.params["mass_earth"],
                                              row.params["radius_earth"])),
        "tidally_locked": int(row.tidally_locked),
        "surface": row.surface, "obliquity_deg": row.obliquity_deg,
        "timestep_minutes": row.timestep_minutes, "resolution": config.resolution,
        "layers": config.layers, "years_run": state.years_done,
        "year_days": config.year_days,
        "exoplasim_configure": json.dumps(config.configure_kwargs(None), sort_keys=True),
    }
    if state.r_gas_j_kg_k is not None:  # ExoPlaSim's gas constant for the composition
        attrs["r_gas_j_kg_k"] = float(state.r_gas_j_kg_k)
    for key, value in diagnostics.items():
        attrs[key] = int(value) if isinstance(value, bool) else value
    return attrs


def write_output(source: Path, target: Path, config: ExoPlaSimRunConfig, state: RunState,
                 diagnostics: dict[str, Any]) -> None:
    """Copy the last year's file to ``target`` with the run's attributes, atomically."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(source, tmp)
        with netCDF4.Dataset(tmp, "a") as ds:
            for key, value in output_attrs(config, state, diagnostics).items():
                ds.setncattr(key, np.float64(value) if isinstance(value, float) else value)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run_parameters(config: ExoPlaSimRunConfig, state: RunState) -> dict[str, float]:
    """The parameter vector stored in the catalogue (as for generator runs, plus extras)."""
    attrs = output_attrs(config, state, {})
    return {k: attrs[k] for k in (*ALL_NAMES, "gravity_m_s2", "tidally_locked",
                                  "r_gas_j_kg_k", "obliquity_deg") if k in attrs}


def _outcome(state: RunState, config: ExoPlaSimRunConfig, started: float,
             resumed: list[str], ran: bool) -> RunOutcome:
    return RunOutcome(
        run_id=state.run_id, status=state.status, years_done=state.years_done,
        output=state.output, sha256=state.sha256, parameters=run_parameters(config, state),
        diagnostics=state.diagnostics, error=state.error, log_tail=state.log_tail,
        wall_time_s=state.wall_time_s, model_time_s=state.model_time_s,
        task_time_s=time.perf_counter() - started, resumed_from=resumed,
        gcm_version=state.gcm_version, ran=ran)
