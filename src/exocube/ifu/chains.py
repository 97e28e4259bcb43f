"""Durable chains: a fit's draws committed to the catalogue block by block.

Each block of draws is written in one transaction together with the sampler state
after it (``fit_blocks``, unique on ``(fit_id, block_index)``, so a block is never
stored twice). The state after warm-up is committed to ``fits.warmup_state`` before
the first block. A process killed at any moment therefore loses at most the block
in flight: :func:`run_fit` on the same fit id reloads the last committed state and
continues with the next block index, and because the state holds every chain's RNG
key the continued chain is the one an uninterrupted run would have drawn.

Draws are stored as ``.npz`` bytes (float arrays, exact); states as the ``.npz`` of
:func:`exocube.ifu.sampling.encode_state`. :meth:`ChainStore.result` refuses an
unconverged fit (:class:`~exocube.ifu.gate.NotConvergedError`) unless the caller
asks for it with ``allow_unconverged=True``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from exocube import __version__
from exocube.catalog import Fit, FitBlock, redacted_url, session_scope, utcnow
from exocube.errors import CatalogError, ExocubeError
from exocube.ifu.gate import (
    GateConfig,
    GateReport,
    NotConvergedError,
    diagnose,
    import_arviz,
)
from exocube.ifu.sampling import (
    Block,
    BlockSampler,
    count_divergences,
    decode_state,
    encode_state,
)

log = logging.getLogger(__name__)


class UnknownFitError(ExocubeError, KeyError):
    """No fit with this id is in the catalogue."""

    def __str__(self) -> str:
        return str(self.args[0])


class FitMismatchError(ExocubeError, ValueError):
    """A resumed fit was started with other data, model or sampler settings."""


class BlockConflictError(ExocubeError):
    """A block index of a fit is already stored (two processes continuing one fit)."""


class EmptyFitError(ExocubeError):
    """A fit has no committed draws yet."""


@dataclass(frozen=True)
class Provenance:
    """Where a fit's numbers come from (stored with the fit and in the netCDF attrs)."""

    data_sha256: str
    model: str
    priors: Mapping[str, Any]
    seed: int
    code_version: str = __version__
    settings: Mapping[str, Any] = field(default_factory=dict)  # e.g. the likelihood's

    def to_dict(self) -> dict[str, Any]:
        return {"data_sha256": self.data_sha256, "model": self.model,
                "priors": dict(self.priors), "seed": self.seed,
                "code_version": self.code_version, "settings": dict(self.settings)}


def data_sha256(arrays: Mapping[str, Any]) -> str:
    """A sha256 over named arrays: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class FitResult:
    """A fit's draws (site -> (chain, draw, *shape)), its gate report, provenance and (for a
    start at the optimum) every optimum found before the chains started."""

    fit_id: str
    draws: dict[str, np.ndarray]
    report: GateReport
    provenance: dict[str, Any]
    start_report: dict[str, Any] | None = None


class ChainStore:
    """Fits and their blocks in the catalogue at ``url`` (migrated to ``0004_chains``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create_fit(self, provenance: Provenance, sampler: Mapping[str, Any]) -> str:
        """A new fit row; its id."""
        fit_id = uuid.uuid4().hex
        with session_scope(self.url) as s:
            s.add(Fit(id=fit_id, model_name=provenance.model, status="warmup",
                      provenance=provenance.to_dict(), sampler=dict(sampler)))
        log.info("fit %s created (%s)", fit_id, provenance.model)
        return fit_id

    def fit(self, fit_id: str) -> Fit:
        with session_scope(self.url) as s:
            row = s.get(Fit, fit_id)
            if row is None:
                raise UnknownFitError(
                    f"no fit {fit_id!r} in the catalogue at {redacted_url(self.url)}; "
                    "check the id (ChainStore.fit_ids() lists them) or start a new fit"
                )
            return row

    def fit_ids(self, model_name: str | None = None) -> list[str]:
        """The ids of the stored fits (of one model if given), oldest first."""
        with session_scope(self.url) as s:
            q = sa.select(Fit.id).order_by(Fit.created_at, Fit.id)
            if model_name is not None:
                q = q.where(Fit.model_name == model_name)
            return list(s.scalars(q))

    def save_warmup(self, fit_id: str, state_blob: bytes,
                    start_report: Mapping[str, Any] | None = None) -> None:
        """Commit the state after warm-up (and what the start's optimisation found)."""
        with session_scope(self.url) as s:
            row = s.get(Fit, fit_id)
            row.warmup_state, row.status, row.updated_at = state_blob, "sampling", utcnow()
            row.start_report = _as_json(dict(start_report)) if start_report else None

    def append_block(self, fit_id: str, index: int, block: Block) -> None:
        """Commit ``block`` as block ``index`` with its state, in one transaction."""
        try:
            with session_scope(self.url) as s:
                s.add(FitBlock(fit_id=fit_id, block_index=index, n_draws=block.n_draws,
                               divergences=int(np.sum(block.diverging)),
                               draws=_pack(block.draws, block.diverging),
                               state=encode_state(block.state)))
                row = s.get(Fit, fit_id)
                row.updated_at = utcnow()
        except CatalogError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise BlockConflictError(
                    f"block {index} of fit {fit_id} is already stored: another process is "
                    "continuing this fit (or it was resumed twice); nothing was written"
                ) from exc
            raise
        log.info("fit %s: block %d committed (%d draws/chain)", fit_id, index, block.n_draws)

    def block_indices(self, fit_id: str) -> list[int]:
        with session_scope(self.url) as s:
            q = sa.select(FitBlock.block_index).where(FitBlock.fit_id == fit_id)
            return sorted(s.scalars(q.order_by(FitBlock.block_index)))

    def last_state_blob(self, fit_id: str) -> tuple[int, bytes | None]:
        """(number of committed blocks, the state to continue from or ``None``)."""
        row = self.fit(fit_id)
        with session_scope(self.url) as s:
            last = s.scalars(
                sa.select(FitBlock).where(FitBlock.fit_id == fit_id)
                .order_by(FitBlock.block_index.desc()).limit(1)
            ).first()
            if last is None:
                return 0, row.warmup_state
            return last.block_index + 1, last.state

    def blocks(self, fit_id: str) -> list[Block]:
        """Every committed block in order (states left as bytes)."""
        self.fit(fit_id)
        with session_scope(self.url) as s:
            rows = s.scalars(
                sa.select(FitBlock).where(FitBlock.fit_id == fit_id)
                .order_by(FitBlock.block_index)
            ).all()
            return [Block(*_unpack(r.draws), state=r.state) for r in rows]

    def draws(self, fit_id: str) -> dict[str, np.ndarray]:
        blocks = self.blocks(fit_id)
        if not blocks:
            return {}
        return {k: np.concatenate([b.draws[k] for b in blocks], axis=1) for k in blocks[0].draws}

    def finish(self, fit_id: str, report: GateReport) -> None:
        with session_scope(self.url) as s:
            row = s.get(Fit, fit_id)
            row.status = "converged" if report.passed else "not_converged"
            row.diagnostics, row.updated_at = report.to_dict(), utcnow()

    def result(
        self, fit_id: str, gate: GateConfig | None = None, allow_unconverged: bool = False
    ) -> FitResult:
        """The fit's draws and report; :class:`NotConvergedError` unless it passes the gate."""
        row = self.fit(fit_id)
        blocks = self.blocks(fit_id)
        if not blocks:
            raise EmptyFitError(
                f"fit {fit_id} has no committed blocks (status {row.status!r}); "
                "continue it with --resume"
            )
        draws = self.draws(fit_id)
        report = diagnose(draws, gate, divergences=count_divergences(blocks))
        if not report.passed and not allow_unconverged:
            raise NotConvergedError(report, context=f"fit {fit_id}")
        return FitResult(fit_id, draws, report, dict(row.provenance), row.start_report)

    def to_inference_data(self, fit_id: str, allow_unconverged: bool = False,
                          log_likelihood: Mapping[str, np.ndarray] | None = None):
        """An arviz ``InferenceData`` (posterior + sample_stats) with provenance attrs.

        ``log_likelihood`` (site -> (chain, draw, *points)), e.g. a cube fit's per-spaxel
        values recomputed from the draws, becomes the ``log_likelihood`` group (PSIS-LOO).
        """
        az = import_arviz()
        res = self.result(fit_id, allow_unconverged=allow_unconverged)
        blocks = self.blocks(fit_id)
        diverging = np.concatenate([b.diverging for b in blocks], axis=1)
        attrs = _attrs(fit_id, res)
        idata = az.from_dict(posterior=res.draws, sample_stats={"diverging": diverging},
                             log_likelihood=dict(log_likelihood) if log_likelihood else None)
        for group in idata.groups():
            idata[group].attrs.update(attrs)
        return idata

    def export_netcdf(self, fit_id: str, path: Path, allow_unconverged: bool = False,
                      log_likelihood: Mapping[str, np.ndarray] | None = None) -> Path:
        """Write the fit as netCDF at ``path`` (temporary name, then rename)."""
        idata = self.to_inference_data(fit_id, allow_unconverged=allow_unconverged,
                                       log_likelihood=log_likelihood)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        try:
            idata.to_netcdf(tmp)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not the file's mode
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def start_fit(store: ChainStore, sampler: BlockSampler, provenance: Provenance,
              on_created: Callable[[str], None] | None = None) -> str:
    """Create the fit row, run and commit the warm-up (with the optima found, for a start
    at the optimum); the fit id (``on_created`` gets it first)."""
    if provenance.seed != sampler.config.seed:
        raise FitMismatchError(
            f"provenance seed {provenance.seed} differs from the sampler seed "
            f"{sampler.config.seed}"
        )
    fit_id = store.create_fit(provenance, sampler.config.to_dict())
    if on_created is not None:
        on_created(fit_id)
    state = sampler.warmup()
    report = sampler.start_report
    store.save_warmup(fit_id, encode_state(state), report.to_dict() if report else None)
    return fit_id


def run_fit(
    store: ChainStore,
    sampler: BlockSampler,
    fit_id: str,
    n_blocks: int | None = None,
    gate: GateConfig | None = None,
    max_draws: int = 10_000,
    provenance: Provenance | None = None,
    on_block: Callable[[int, Block], None] | None = None,
    max_seconds: float | None = None,
) -> GateReport | None:
    """Continue ``fit_id`` from its last committed state, committing each block.

    With ``n_blocks`` it stops when that many blocks are stored; without it, it
    continues until the gate holds or ``max_draws`` per chain are stored
    (``--until-converged``). The fit's status and diagnostics are updated at the end.
    With ``provenance``, a fit started on other data, model or priors is refused.
    ``on_block(index, block)`` is called after each block is committed (progress bars).
    ``max_seconds``: no new block is started once that much wall time has passed.
    """
    row = store.fit(fit_id)
    _check_same_sampler(row, sampler)
    if provenance is not None and _as_json(provenance.to_dict()) != dict(row.provenance):
        raise FitMismatchError(
            f"fit {fit_id} was started with provenance {row.provenance}, not "
            f"{provenance.to_dict()}: resume it on the same data, model and priors"
        )
    index, blob = store.last_state_blob(fit_id)
    if blob is None:  # killed during warm-up: warm-up is deterministic, redo it
        store.save_warmup(fit_id, encode_state(sampler.warmup()))
        index, blob = store.last_state_blob(fit_id)
    state = decode_state(blob, sampler.state_template())
    report = _progress_report(store, fit_id, gate)
    t0 = time.monotonic()
    while _more(index, sampler.config.block_size, n_blocks, max_draws, report):
        if max_seconds is not None and time.monotonic() - t0 >= max_seconds:
            break
        block = sampler.sample_block(state)
        store.append_block(fit_id, index, block)
        if on_block is not None:
            on_block(index, block)
        index, state = index + 1, block.state
        report = _progress_report(store, fit_id, gate)
    if report is not None:
        store.finish(fit_id, report)
    return report


def _more(index: int, block_size: int, n_blocks: int | None, max_draws: int,
          report: GateReport | None) -> bool:
    if n_blocks is not None:
        return index < n_blocks
    if report is not None and report.passed:
        return False
    return (index + 1) * block_size <= max_draws


def _progress_report(store: ChainStore, fit_id: str, gate: GateConfig | None):
    blocks = store.blocks(fit_id)
    if not blocks or sum(b.n_draws for b in blocks) < 4:
        return None
    draws = {k: np.concatenate([b.draws[k] for b in blocks], axis=1) for k in blocks[0].draws}
    return diagnose(draws, gate, divergences=count_divergences(blocks))


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from a JSON column (tuples become lists)."""
    return json.loads(json.dumps(value))


def _check_same_sampler(row: Fit, sampler: BlockSampler) -> None:
    # settings added since the fit was stored take their defaults
    stored = {**type(sampler.config)().to_dict(), **dict(row.sampler)}
    current = sampler.config.to_dict()
    if stored != current:
        diff = {k: (stored.get(k), current.get(k)) for k in current if stored.get(k) != current[k]}
        raise FitMismatchError(
            f"fit {row.id} was started with other sampler settings {diff} (stored, given); "
            "resume it with the settings it was started with"
        )


def _pack(draws: Mapping[str, np.ndarray], diverging: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, __diverging__=np.asarray(diverging), **{f"s:{k}": v for k, v in draws.items()})
    return buf.getvalue()


def _unpack(blob: bytes) -> tuple[dict[str, np.ndarray], np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        draws = {k[2:]: npz[k] for k in npz.files if k.startswith("s:")}
        return draws, npz["__diverging__"]


def _attrs(fit_id: str, res: FitResult) -> dict[str, Any]:
    p = res.provenance
    return {"fit_id": fit_id, "data_sha256": p["data_sha256"], "model": p["model"],
            "priors": json.dumps(p["priors"], sort_keys=True), "seed": int(p["seed"]),
            "code_version": p["code_version"],
            "settings": json.dumps(p.get("settings") or {}, sort_keys=True),
            "converged": int(res.report.passed),
            "diagnostics": json.dumps(res.report.to_dict(), sort_keys=True),
            "start_report": json.dumps(res.start_report, sort_keys=True)}
