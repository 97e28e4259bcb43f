"""Campaigns of brokered fits: inject-recover and jackknife.

A campaign is a row of the catalogue's ``campaigns`` table (id, kind, spec, number of
tasks) plus its tasks. Every task is a pure function of the spec and its index: task
``i`` of campaign ``C`` has the id ``C:i`` and derives its random numbers from
``numpy.random.SeedSequence([spec.seed, i])``. Submitting a campaign again therefore
queues nothing twice (:meth:`~exocube.ifu.broker.WorkQueue.submit_once`, and tasks
with a stored result are skipped), and a task delivered twice stores its result once
(``task_results`` is unique on the task id).

- **inject-recover**: for each truth hypothesis in ``models``, each S/N in ``snr`` and
  ``k < n``, draw the free parameters from that hypothesis' priors, synthesise a cube on
  the footprint (a real cube given with ``like``, whose DQ and ERR are used, or the
  package's synthetic footprint of ``shape``) at that S/N, fit every model in
  ``models`` until the gate holds or the budget ends, and compare them by PSIS-LOO
  when all fits converged.
- **jackknife**: for each model, fit the whole cube (subset 0) and the cube with one of
  ``groups`` groups of spaxels left out (subsets 1..groups; the left-out spaxels are
  masked with DQ ``DO_NOT_USE``).

Each fit is an ordinary fit in the catalogue (``fits``, ``fit_blocks``); the task result
holds the fit ids, the gate's verdict and numbers, and the posterior summary (5, 50,
95 % quantiles, mean, sd). A fit that fails the gate keeps its numbers under
``converged: false``; :mod:`exocube.ifu.campaign_report` never pools them with results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from exocube.catalog import Campaign, TaskResult, redacted_url, session_scope
from exocube.errors import ExocubeError
from exocube.ifu._jax import use_compile_cache
from exocube.ifu.broker import Handler, Task, WorkQueue, result_exists, store_result
from exocube.ifu.chains import ChainStore, data_sha256
from exocube.ifu.cube import IFUCube, read_s3d
from exocube.ifu.dq import JWST_DQ_FLAGS
from exocube.ifu.fit import (
    FitProblem,
    FitSettings,
    advance,
    loo_compare,
    posterior_summary,
    prepare,
    start,
)
from exocube.ifu.forward import ForwardModel
from exocube.ifu.instrument import GaussianPSF, ResolvingPower
from exocube.ifu.params import check_params
from exocube.ifu.priors import Prior, priors_for, priors_json
from exocube.ifu.sampling import SamplerConfig
from exocube.ifu.synth import synthesize
from exocube.ifu.template import build_template

log = logging.getLogger(__name__)

KINDS = ("inject-recover", "jackknife")
DEFAULT_QUEUE = "exocube:ifu"
MAX_TRUTH_DRAWS = 1000  # draws per task before a campaign's priors are called unusable
MODELS = ("bowshock", "disk")
# The package's synthetic footprint: Halpha and [NII] at z = 0.964 in the GO-3149
# channel spacing (0.000636 um), 9 x 9 spaxels of the GO-3149 footprint.
DEFAULT_SHAPE = (40, 9, 9)
CHANNEL_UM = 0.000636
CENTRE_UM = 1.2904

# Default campaign priors: four free parameters per hypothesis (the others fixed at the
# values below or the parameter's default), sized for the default footprint.
CAMPAIGN_PRIORS: dict[str, dict[str, list]] = {
    "bowshock": {"v_sys": ["normal", 0.0, 200.0], "sigma": ["loguniform", 20.0, 150.0],
                 "sb_tip": ["loguniform", 10.0, 160.0], "v_far": ["uniform", -800.0, 800.0],
                 "pa_deg": ["fixed", 210.0], "sb_wake": ["fixed", 20.0]},
    "disk": {"v_sys": ["normal", 0.0, 200.0], "sigma": ["loguniform", 20.0, 150.0],
             "sb_halpha": ["loguniform", 10.0, 160.0], "h_r": ["loguniform", 1.0, 10.0],
             "pa_deg": ["fixed", 210.0], "incl_deg": ["fixed", 85.0]},
}


class CampaignError(ExocubeError):
    """A campaign cannot be created, submitted or run (the message says why)."""


class UnknownCampaignError(CampaignError, KeyError):
    """No campaign with this id is in the catalogue."""

    def __str__(self) -> str:
        return str(self.args[0])


class CampaignMismatchError(CampaignError, ValueError):
    """A campaign id is already used by a campaign with another spec."""


def campaign_priors(model: str, overrides: Mapping[str, Any] | None = None
                    ) -> dict[str, Prior]:
    """The campaign default priors of ``model`` (see :data:`CAMPAIGN_PRIORS`), overlaid."""
    base = {n: ["fixed", p.spec.default] for n, p in priors_for(model).items()}
    base.update(CAMPAIGN_PRIORS.get(model, {}))
    base.update(dict(overrides or {}))
    return priors_for(model, base)


@dataclass(frozen=True)
class FitBudget:
    """Per-fit sampler settings of a campaign (each fit runs until converged or out of budget)."""

    chains: int = 4
    warmup: int = 500
    block_size: int = 250
    max_draws: int = 4000
    max_seconds: float | None = None
    start: str = "prior"  # where chains start (SamplerConfig.start); stored campaigns: prior

    def __post_init__(self) -> None:
        SamplerConfig(num_chains=self.chains, num_warmup=self.warmup,
                      block_size=self.block_size, start=self.start)  # raises if unusable
        if self.max_draws < self.block_size:
            raise CampaignError(f"max_draws={self.max_draws}: expected >= block_size="
                                f"{self.block_size}")

    def sampler(self, seed: int) -> SamplerConfig:
        return SamplerConfig(num_chains=self.chains, num_warmup=self.warmup,
                             block_size=self.block_size, seed=seed, start=self.start)


@dataclass(frozen=True)
class Footprint:
    """The cube synthetic data are made on: a real cube (path and sha256), or the
    package's synthetic footprint of ``shape`` around Halpha (``like`` None)."""

    like: str | None = None
    sha256: str | None = None
    shape: tuple[int, int, int] = DEFAULT_SHAPE

    def build(self) -> IFUCube:
        if self.like is None:
            nw = self.shape[0]
            lo = CENTRE_UM - 0.5 * (nw - 1) * CHANNEL_UM
            return build_template(self.shape, (lo, lo + (nw - 1) * CHANNEL_UM))
        return _read_checked(self.like, self.sha256)


@dataclass(frozen=True)
class CampaignSpec:
    """Everything a campaign's tasks are derived from (stored as the campaign's spec)."""

    kind: str
    seed: int
    models: tuple[str, ...]
    priors: Mapping[str, Mapping[str, list]]  # model -> priors JSON
    fit: Mapping[str, Any]  # FitSettings fields other than the model
    budget: FitBudget = field(default_factory=FitBudget)
    # inject-recover
    n: int = 0
    snr: tuple[float, ...] = ()
    footprint: Footprint | None = None
    # jackknife
    cube: str | None = None
    cube_sha256: str | None = None
    groups: int = 0
    scheme: str = "bands"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CampaignError(f"campaign kind {self.kind!r}: expected one of {KINDS}")
        if not self.models or len(set(self.models)) != len(self.models):
            raise CampaignError(f"models {self.models}: expected distinct model names")
        if self.kind == "inject-recover":
            if self.n < 1 or not self.snr:
                raise CampaignError(f"inject-recover needs n >= 1 and S/N levels; got "
                                    f"n={self.n}, snr={list(self.snr)}")
            if not all(math.isfinite(s) and s > 0 for s in self.snr):
                raise CampaignError(f"snr {list(self.snr)}: expected positive numbers")
        else:
            if self.cube is None or self.groups < 2:
                raise CampaignError(f"jackknife needs a cube and groups >= 2; got "
                                    f"cube={self.cube}, groups={self.groups}")
            if self.scheme not in ("bands", "random"):
                raise CampaignError(f"jackknife scheme {self.scheme!r}: expected 'bands' "
                                    "or 'random'")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CampaignSpec:
        d = dict(d)
        fp = d.get("footprint")
        d["footprint"] = None if fp is None else Footprint(
            fp["like"], fp["sha256"], tuple(fp["shape"]))
        d["budget"] = FitBudget(**d["budget"])
        d["models"], d["snr"] = tuple(d["models"]), tuple(d["snr"])
        return cls(**d)

    def default_id(self) -> str:
        """``ir-`` or ``jk-`` and 12 hex digits of the spec's sha256 (same spec, same id)."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        return f"{'ir' if self.kind == 'inject-recover' else 'jk'}-{digest.hexdigest()[:12]}"

    @property
    def n_tasks(self) -> int:
        if self.kind == "inject-recover":
            return len(self.models) * len(self.snr) * self.n
        return len(self.models) * (self.groups + 1)

    def describe(self, index: int) -> dict[str, Any]:
        """What task ``index`` does (its payload besides the campaign id and index)."""
        if not 0 <= index < self.n_tasks:
            raise CampaignError(f"task index {index}: the campaign has {self.n_tasks} tasks")
        if self.kind == "inject-recover":
            per_model = len(self.snr) * self.n
            model = self.models[index // per_model]
            snr = self.snr[(index % per_model) // self.n]
            return {"truth_model": model, "snr": snr, "k": index % self.n}
        return {"model": self.models[index // (self.groups + 1)],
                "subset": index % (self.groups + 1)}

    def priors_of(self, model: str) -> dict[str, Prior]:
        return priors_for(model, self.priors[model])

    def settings(self, model: str) -> FitSettings:
        kw = dict(self.fit)
        if kw.get("lines") is not None:
            kw["lines"] = tuple(kw["lines"])
        return FitSettings(model, **kw)


def inject_recover_spec(*, n: int, snr: Sequence[float], models: Sequence[str] = MODELS,
                        seed: int = 0, like: str | None = None,
                        shape: tuple[int, int, int] = DEFAULT_SHAPE,
                        priors: Mapping[str, Mapping[str, Prior]] | None = None,
                        fit: FitSettings | None = None,
                        budget: FitBudget | None = None) -> CampaignSpec:
    """An inject-recover spec; ``priors`` default to :func:`campaign_priors`."""
    if like is None:
        footprint = Footprint(shape=tuple(shape))
    else:
        real = read_s3d(like)
        footprint = Footprint(str(Path(like).resolve()), real.sha256, tuple(real.shape))
    return CampaignSpec("inject-recover", seed, tuple(models), _priors(models, priors),
                        _fit_fields(fit), budget or FitBudget(), n=n,
                        snr=tuple(float(s) for s in snr), footprint=footprint)


def jackknife_spec(cube: str, *, groups: int, models: Sequence[str] = MODELS,
                   scheme: str = "bands", seed: int = 0,
                   priors: Mapping[str, Mapping[str, Prior]] | None = None,
                   fit: FitSettings | None = None,
                   budget: FitBudget | None = None) -> CampaignSpec:
    """A jackknife spec over ``groups`` groups of spaxels of ``cube``."""
    priors = {m: (priors or {}).get(m) or priors_for(m) for m in models}
    return CampaignSpec("jackknife", seed, tuple(models), _priors(models, priors),
                        _fit_fields(fit), budget or FitBudget(), cube=str(Path(cube).resolve()),
                        cube_sha256=read_s3d(cube).sha256, groups=groups, scheme=scheme)


def _priors(models: Sequence[str], priors: Mapping[str, Mapping[str, Prior]] | None):
    out = {}
    for m in models:
        given = (priors or {}).get(m)
        out[m] = priors_json(given if given is not None else campaign_priors(m))
    return out


def _fit_fields(fit: FitSettings | None) -> dict[str, Any]:
    d = (fit or FitSettings("bowshock")).to_dict()
    d.pop("model")
    return d


# -- the catalogue ---------------------------------------------------------------------
def register(db_url: str, spec: CampaignSpec, campaign_id: str | None = None) -> str:
    """Store the campaign (once); its id. The same id with another spec is refused."""
    cid = campaign_id or spec.default_id()
    if not cid or len(cid) > 48 or ":" in cid:
        raise CampaignError(f"campaign id {cid!r}: expected 1-48 characters without ':'")
    stored = spec.to_dict()
    with session_scope(db_url) as s:
        row = s.get(Campaign, cid)
        if row is None:
            s.add(Campaign(id=cid, kind=spec.kind, spec=stored, n_tasks=spec.n_tasks))
            log.info("campaign %s registered (%d tasks)", cid, spec.n_tasks)
            return cid
        if dict(row.spec) != stored:
            diff = sorted(k for k in stored if row.spec.get(k) != stored[k])
            raise CampaignMismatchError(
                f"campaign {cid} exists with another spec (differs in {diff}); give another "
                "--id, or repeat the command with the settings it was created with")
    return cid


def load_campaign(db_url: str, campaign_id: str) -> tuple[CampaignSpec, int]:
    """The campaign's spec and number of tasks; :class:`UnknownCampaignError` if absent."""
    with session_scope(db_url) as s:
        row = s.get(Campaign, campaign_id)
        if row is None:
            raise UnknownCampaignError(
                f"no campaign {campaign_id!r} in the catalogue at {redacted_url(db_url)}; "
                "check the id (`exocube ifu campaign status` of a known id, or the id printed "
                "when it was submitted) and --db")
        return CampaignSpec.from_dict(row.spec), int(row.n_tasks)


def is_campaign(db_url: str, campaign_id: str) -> bool:
    with session_scope(db_url) as s:
        return s.get(Campaign, campaign_id) is not None


def task_id(campaign_id: str, index: int) -> str:
    return f"{campaign_id}:{index:05d}"


def tasks_of(campaign_id: str, spec: CampaignSpec) -> list[Task]:
    return [Task(task_id(campaign_id, i), spec.kind,
                 {"campaign": campaign_id, "index": i, **spec.describe(i)})
            for i in range(spec.n_tasks)]


def stored_results(db_url: str, campaign_id: str) -> list[TaskResult]:
    """The campaign's stored task results, in task order."""
    with session_scope(db_url) as s:
        mine = TaskResult.task_id.startswith(f"{campaign_id}:", autoescape=True)
        q = sa.select(TaskResult).where(mine).order_by(TaskResult.task_id)
        return list(s.scalars(q))


def records(db_url: str, campaign_id: str) -> list[dict[str, Any]]:
    """The stored results of the campaign (the report's input), in task order."""
    load_campaign(db_url, campaign_id)
    return [dict(r.result) for r in stored_results(db_url, campaign_id)]


@dataclass(frozen=True)
class Submission:
    """What one submission of a campaign did."""

    campaign_id: str
    n_tasks: int
    stored: int  # results already in the catalogue: not submitted
    queued_now: int
    already_queued: int  # submitted before (pending, running, done or dead)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def submit(queue: WorkQueue, db_url: str, campaign_id: str) -> Submission:
    """Queue every task of the campaign that has no stored result and was never queued."""
    spec, n = load_campaign(db_url, campaign_id)
    done = {r.task_id for r in stored_results(db_url, campaign_id)}
    todo = [t for t in tasks_of(campaign_id, spec) if t.id not in done]
    queued = queue.submit_once(todo)
    log.info("campaign %s: %d tasks queued now, %d stored", campaign_id, queued, len(done))
    return Submission(campaign_id, n, len(done), queued, len(todo) - queued)


def status(db_url: str, campaign_id: str, queue: WorkQueue | None = None) -> dict[str, Any]:
    """Counts of the campaign's tasks: stored (and fits converged or not), and on the broker
    pending, processing and dead (with ``queue``)."""
    spec, n = load_campaign(db_url, campaign_id)
    rows = stored_results(db_url, campaign_id)
    fits = [f for r in rows for f in _fits_of(r.result)]
    out: dict[str, Any] = {
        "campaign": campaign_id, "kind": spec.kind, "tasks": n, "stored": len(rows),
        "fits": len(fits), "fits_converged": sum(bool(f["converged"]) for f in fits),
        "fits_not_converged": sum(not f["converged"] for f in fits)}
    if queue is not None:
        ids = queue.queued_ids()
        mine = {k: [i for i in v if i.startswith(f"{campaign_id}:")] for k, v in ids.items()}
        out.update({k: len(v) for k, v in mine.items()})
        out["dead_tasks"] = mine["dead"]
    return out


def _fits_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "fits" in result:
        return list(result["fits"].values())
    return [result["fit"]]


# -- running tasks ---------------------------------------------------------------------
def handlers(db_url: str) -> dict[str, Handler]:
    """The campaign task handlers of a worker that stores fits in ``db_url``."""
    return {"inject-recover": lambda p: run_task(db_url, p),
            "jackknife": lambda p: run_task(db_url, p)}


@lru_cache(maxsize=16)
def _cached_spec(db_url: str, campaign_id: str) -> CampaignSpec:
    return load_campaign(db_url, campaign_id)[0]


def run_task(db_url: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run task ``payload['index']`` of campaign ``payload['campaign']``; its result."""
    spec = _cached_spec(db_url, str(payload["campaign"]))
    index = int(payload["index"])
    if spec.kind == "inject-recover":
        return run_inject_recover(db_url, spec, index)
    return run_jackknife(db_url, spec, index)


def task_rng(spec: CampaignSpec, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([spec.seed, index]))


def draw_truth(priors: Mapping[str, Prior], rng: np.random.Generator) -> dict[str, float]:
    """One draw of every parameter from its prior (fixed ones at their value)."""
    from scipy.stats import truncnorm

    out = {}
    for name, p in priors.items():
        a = float(p.args[0])
        if p.kind == "fixed":
            out[name] = a
        elif p.kind == "uniform":
            out[name] = float(rng.uniform(a, float(p.args[1])))
        elif p.kind == "loguniform":
            out[name] = float(np.exp(rng.uniform(np.log(a), np.log(float(p.args[1])))))
        else:  # normal, truncated to the parameter's range (as the fit's prior)
            sd = float(p.args[1])
            lo, hi = (p.spec.low - a) / sd, (p.spec.high - a) / sd
            out[name] = float(truncnorm.rvs(lo, hi, loc=a, scale=sd, random_state=rng))
    return out


def run_inject_recover(db_url: str, spec: CampaignSpec, index: int) -> dict[str, Any]:
    """Draw a truth, synthesise its cube, fit every model, compare them; the result."""
    d = spec.describe(index)
    rng = task_rng(spec, index)
    truth, redraws = representable_truth(spec, d["truth_model"], rng)
    noise_seed, fit_seed = (int(x) for x in rng.integers(0, 2**31 - 1, size=2))
    t0 = time.monotonic()
    cube, err_scale = synthetic_cube(spec, d["truth_model"], truth, d["snr"], noise_seed)
    cube = replace(cube, source=f"campaign task {index}",
                   sha256=data_sha256({"flux": cube.flux, "err": cube.err, "dq": cube.dq}))
    seconds = {"synth": time.monotonic() - t0}
    store = ChainStore(db_url)
    fits, problems = {}, {}
    for model in spec.models:
        t0 = time.monotonic()
        problems[model] = prepare(cube, spec.settings(model), spec.priors_of(model))
        fits[model] = fit_once(store, problems[model], spec.budget, fit_seed)
        seconds[model] = time.monotonic() - t0
    t0 = time.monotonic()
    loo, loo_note = compare_fits(store, problems, fits)
    seconds["loo"] = time.monotonic() - t0
    return {"kind": spec.kind, "index": index, **d, "truth": truth,
            "free": {m: p.free for m, p in problems.items()}, "noise_seed": noise_seed,
            "fit_seed": fit_seed, "truth_redraws": redraws, "err_scale": err_scale,
            "cube_sha256": cube.sha256,
            "fits": fits, "loo": loo, "loo_note": loo_note, "seconds": seconds}


def synthetic_cube(spec: CampaignSpec, model: str, truth: Mapping[str, float], snr: float,
                   seed: int) -> tuple[IFUCube, float]:
    """The model's cube at ``truth`` on the spec's footprint with noise at peak S/N ``snr``."""
    res = synthesize(model, dict(truth), _footprint(spec.footprint), z=spec.fit["z"],
                     snr=snr, seed=seed, **_instrument(spec))
    return res.cube, float(res.truth["noise"]["err_scale"])


def representable_truth(spec: CampaignSpec, model: str,
                        rng: np.random.Generator) -> tuple[dict[str, float], int]:
    """A truth drawn from the priors whose lines stay inside the forward model's velocity
    window (a cube of any other cannot be made), and how many draws were rejected first."""
    fm = ForwardModel.build(model, _footprint(spec.footprint), spec.fit["z"],
                            **_instrument(spec))
    priors = spec.priors_of(model)
    for rejected in range(MAX_TRUTH_DRAWS):
        truth = draw_truth(priors, rng)
        if fm.reach(check_params(model, truth)) <= fm.window_kms:
            return truth, rejected
    raise CampaignError(
        f"{MAX_TRUTH_DRAWS} truths drawn from the {model} priors all reach beyond the "
        f"model's velocity window of +-{fm.window_kms:.0f} km/s: narrow the v_sys, speed "
        "or sigma priors, or fit with a larger window_kms")


def _instrument(spec: CampaignSpec) -> dict[str, Any]:
    """PSF, resolving power and velocity window of the spec (synthesis and its check)."""
    f = spec.fit
    return {"psf": GaussianPSF(fwhm_arcsec=f["psf_fwhm"]) if f["psf_fwhm"] > 0 else None,
            "resolving_power": ResolvingPower.linear(f["resolving_power"]),
            "window_kms": f["window_kms"]}


@lru_cache(maxsize=4)
def _footprint(fp: Footprint) -> IFUCube:
    return fp.build()


def fit_once(store: ChainStore, problem: FitProblem, budget: FitBudget, seed: int
             ) -> dict[str, Any]:
    """Fit until the gate holds or the budget ends; the fit's id, verdict and summary."""
    config = budget.sampler(seed)
    fit_id = start(store, problem, config)
    optima = problem.sampler(config).start_report
    advance(store, problem, fit_id, until_converged=True, max_draws=budget.max_draws,
            max_seconds=budget.max_seconds)
    res = store.result(fit_id, allow_unconverged=True)
    rep = res.report
    return {"fit_id": fit_id, "converged": rep.passed, "failures": rep.failures(),
            "draws_per_chain": rep.n_draws, "chains": rep.n_chains,
            "divergences": rep.divergences, "gate": rep.to_dict()["parameters"],
            "posterior": posterior_summary(res.draws),
            "start": None if optima is None else optima.to_dict()}


def compare_fits(store: ChainStore, problems: Mapping[str, FitProblem],
                 fits: Mapping[str, Mapping[str, Any]]) -> tuple[dict | None, str]:
    """PSIS-LOO of the fits when there are two or more and all converged; else a reason."""
    if len(fits) < 2:
        return None, "one model: nothing to compare"
    bad = sorted(m for m, f in fits.items() if not f["converged"])
    if bad:
        return None, f"not compared: {', '.join(bad)} not converged"
    out = loo_compare({m: (store, problems[m], fits[m]["fit_id"]) for m in fits})
    return out, ""


def jackknife_groups(cube: IFUCube, groups: int, scheme: str, seed: int) -> np.ndarray:
    """The group (0..groups-1) of each usable spaxel, -1 elsewhere: (ny, nx).

    ``bands``: contiguous runs of the usable spaxels in raster order (rows of the
    cube); ``random``: a seeded random permutation dealt round-robin.
    """
    usable = np.flatnonzero((~cube.mask).any(axis=0).ravel())
    if usable.size < groups:
        raise CampaignError(f"{cube.source}: {usable.size} usable spaxels for {groups} "
                            "jackknife groups; use fewer groups")
    order = (usable if scheme == "bands"
             else np.random.default_rng(seed).permutation(usable))
    label = np.full(cube.shape[1] * cube.shape[2], -1)
    if scheme == "bands":
        label[order] = np.arange(order.size) * groups // order.size
    else:
        label[order] = np.arange(order.size) % groups
    return label.reshape(cube.shape[1:])


def run_jackknife(db_url: str, spec: CampaignSpec, index: int) -> dict[str, Any]:
    """Fit one model to the cube with one group of spaxels masked (none for subset 0)."""
    d = spec.describe(index)
    cube = _read_checked(spec.cube, spec.cube_sha256)
    labels = jackknife_groups(cube, spec.groups, spec.scheme, spec.seed)
    left_out = labels == d["subset"] - 1
    if d["subset"] > 0:
        dq = np.array(cube.dq)
        dq[:, left_out] |= np.uint32(JWST_DQ_FLAGS["DO_NOT_USE"])
        cube = replace(cube.with_data(cube.flux, cube.err, dq), source=cube.source,
                       sha256=cube.sha256)
    t0 = time.monotonic()
    problem = prepare(cube, spec.settings(d["model"]), spec.priors_of(d["model"]))
    seed = int(task_rng(spec, index).integers(0, 2**31 - 1))
    fit = fit_once(ChainStore(db_url), problem, spec.budget, seed)
    return {"kind": spec.kind, "index": index, **d, "groups": spec.groups,
            "left_out_spaxels": int(left_out.sum()) if d["subset"] > 0 else 0,
            "fit_seed": seed, "free": problem.free, "fit": fit,
            "seconds": {d["model"]: time.monotonic() - t0}}


def _read_checked(path: str, sha256: str | None) -> IFUCube:
    cube = read_s3d(path)
    if sha256 is not None and cube.sha256 != sha256:
        raise CampaignError(f"{path}: sha256 {cube.sha256} is not the campaign's {sha256}: "
                            "every worker must read the same cube file")
    return cube


# -- Dask ------------------------------------------------------------------------------
def _dask_task(db_url: str, message: str, queue: str, compile_cache: str | None = None
               ) -> bool:
    """Run one task on a Dask worker and store its result once; whether stored now."""
    import os
    import socket

    if compile_cache is not None:
        use_compile_cache(compile_cache)
    task = Task.from_message(message)
    if result_exists(db_url, task.id):
        return False
    result = run_task(db_url, task.payload)
    return store_result(db_url, queue, task, result,
                        f"dask:{socket.gethostname()}:{os.getpid()}")


def run_on_dask(client, db_url: str, campaign_id: str, on_done=None,
                compile_cache: str | None = None) -> int:
    """Run the campaign's tasks without a stored result on a Dask ``client``; how many
    were stored now. Results go to ``task_results`` as with brokered workers. With
    ``compile_cache`` (a directory the workers reach), they keep JAX's compiled programs
    there (:func:`exocube.ifu._jax.use_compile_cache`)."""
    from distributed import as_completed

    spec, _ = load_campaign(db_url, campaign_id)
    done = {r.task_id for r in stored_results(db_url, campaign_id)}
    todo = [t for t in tasks_of(campaign_id, spec) if t.id not in done]
    futures = [client.submit(_dask_task, db_url, t.message(), f"dask:{campaign_id}",
                             compile_cache, key=f"campaign-{t.id}", pure=False)
               for t in todo]
    stored = 0
    for fut in as_completed(futures):
        stored += bool(fut.result())
        if on_done is not None:
            on_done()
    return stored
