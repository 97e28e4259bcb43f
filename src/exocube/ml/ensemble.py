"""Deep ensembles of trained surrogates: the manifest, its members and their statistics.

An ensemble is N :class:`~exocube.ml.task.SurrogateTask` checkpoints trained on the
same data (same store version, spec and split) from different seeds, e.g. N runs of
``exocube train fit --seed_everything K``. Its artefact is one JSON manifest::

    {"format": "exocube-ensemble", "version": 1, "name": "...",
     "members": [{"checkpoint": "/abs/path/best.ckpt", "sha256": "...",
                  "model_id": 3}, ...],
     "std_scale": {"ta": 1.4, ...}}

A member's ``checkpoint`` may be relative: it is then relative to the manifest's folder
(an exported model, :mod:`exocube.ml.export`, names its files so, and moves as one
folder).

Loading verifies every member's file and SHA-256 and that the members share one data
spec and one architecture (so that they run as one stacked network,
:mod:`exocube.ml.stacked`); a missing, changed or unreadable member is a
ModelUnavailableError naming it by index and catalogue id (file paths go to the log:
the messages reach HTTP clients).

The ensemble's prediction is the members' mean; its uncertainty the members' sample
standard deviation (``ddof=1``) at every point. The evaluation widens it by
``sqrt((N+1)/N)`` for the predictive spread of a finite ensemble
(:mod:`exocube.ml.uncertainty`); predictions report the plain sample std.

A manifest of one member holds a network with a std head (``predict_std``): its
uncertainty is its own predicted standard deviation, and the manifest carries that
network's ``std_scale``. A manifest of several members holds plain networks (the
members' mixture of Gaussians is not built).

``std_scale`` (optional, per variable and scalar) is a post-hoc spread calibration
fitted on the validation runs (``exocube models ensemble --calibrate``): the members'
deviations from their mean are multiplied by it, so the std is ``std_scale`` times the
members' sample std, in predictions and in the evaluation alike (the mean is unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from exocube.errors import ModelUnavailableError
from exocube.ml.stacked import check_stackable
from exocube.ml.task import SurrogateTask, load_task

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "exocube-ensemble"
MANIFEST_VERSION = 1
MIN_MEMBERS = 1
#: How a prediction's ``*_std`` values are made (:class:`exocube.surrogate.Prediction`).
DEEP_ENSEMBLE = "deep ensemble"
STD_HEAD = "std head"


@dataclass(frozen=True)
class Member:
    """One member: its checkpoint file, that file's SHA-256 and its catalogue id."""

    checkpoint: str
    sha256: str
    model_id: int | None = None


@dataclass(frozen=True)
class EnsembleManifest:
    """The members of one ensemble (see the module docstring for the file format)."""

    name: str
    members: tuple[Member, ...]
    std_scale: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "name": self.name,
               "members": [m.__dict__ for m in self.members]}
        if self.std_scale:
            out["std_scale"] = dict(self.std_scale)
        return out


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_manifest(path: str | Path) -> bool:
    """True for a file that names itself an exocube ensemble manifest (by its suffix)."""
    return str(path).endswith(".json")


def write_manifest(path: Path, name: str, checkpoints: Sequence[str],
                   model_ids: Sequence[int | None] | None = None,
                   std_scale: dict[str, float] | None = None, relative: bool = False
                   ) -> EnsembleManifest:
    """Write the manifest of ``checkpoints`` (hashing each) to ``path``; return it (its
    members' paths absolute). With ``relative``, the file names the members relative to
    ``path``'s folder (they must lie in it)."""
    if len(checkpoints) < MIN_MEMBERS:
        raise ModelUnavailableError(f"an ensemble needs at least {MIN_MEMBERS} member, got "
                                    f"{len(checkpoints)}")
    ids = list(model_ids) if model_ids is not None else [None] * len(checkpoints)
    members = []
    for i, ckpt in enumerate(checkpoints):
        file = Path(ckpt).resolve()
        if not file.is_file():
            raise ModelUnavailableError(f"ensemble member {i} ({ckpt}): no such checkpoint")
        members.append(Member(str(file), sha256_of(file), ids[i]))
    manifest = EnsembleManifest(name, tuple(members), dict(std_scale or {}))
    doc = manifest.to_dict()
    if relative:
        folder = path.parent.resolve()
        for m in doc["members"]:
            m["checkpoint"] = str(Path(m["checkpoint"]).relative_to(folder))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)
    return manifest


def read_manifest(path: str | Path) -> EnsembleManifest:
    """The manifest at ``path``; ModelUnavailableError for a missing or malformed file."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("ensemble manifest %s: %s", path, exc)
        raise ModelUnavailableError("the ensemble manifest file is missing or unreadable "
                                    "(see the log)") from exc
    doc = versioned_json(text, MANIFEST_FORMAT, MANIFEST_VERSION, "the ensemble manifest")
    raw = doc.get("members")
    if not isinstance(raw, list) or len(raw) < MIN_MEMBERS:
        raise ModelUnavailableError(f"the ensemble manifest's 'members' must list at least "
                                    f"{MIN_MEMBERS} member")
    members = []
    for i, m in enumerate(raw):
        if not (isinstance(m, dict) and isinstance(m.get("checkpoint"), str)
                and isinstance(m.get("sha256"), str)):
            raise ModelUnavailableError(f"ensemble member {i} lacks its 'checkpoint' or "
                                        "'sha256' string in the manifest")
        mid = m.get("model_id")
        file = Path(m["checkpoint"])
        if not file.is_absolute():
            file = Path(path).resolve().parent / file
        members.append(Member(str(file), m["sha256"], mid if isinstance(mid, int) else None))
    return EnsembleManifest(str(doc.get("name", Path(path).stem)), tuple(members),
                            _std_scale(doc.get("std_scale", {})))


def versioned_json(text: str, fmt: str, version: int, what: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object whose ``format`` is ``fmt`` and ``version`` is
    ``version`` (the files exocube writes for models); ModelUnavailableError naming
    ``what`` otherwise."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelUnavailableError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ModelUnavailableError(f"{what} is not an exocube {fmt} file (its 'format' is "
                                    f"not {fmt!r})")
    if doc.get("version") != version:
        raise ModelUnavailableError(f"{what} has version {doc.get('version')!r}; this "
                                    f"exocube reads version {version}")
    return doc


def _std_scale(raw: object) -> dict[str, float]:
    """The manifest's ``std_scale``: names to positive finite factors."""
    ok = isinstance(raw, dict) and all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        and math.isfinite(v) and v > 0 for k, v in raw.items())
    if not ok:
        raise ModelUnavailableError("the ensemble manifest's 'std_scale' must map variable "
                                    "names to positive finite numbers")
    return {k: float(v) for k, v in raw.items()}  # type: ignore[union-attr]


def load_member(member: Member, index: int) -> SurrogateTask:
    """One member on the CPU in evaluation mode, after checking its file and hash."""
    where = f"ensemble member {index} (catalogue model {member.model_id})"
    if not Path(member.checkpoint).is_file():
        log.warning("%s: checkpoint %s is missing", where, member.checkpoint)
        raise ModelUnavailableError(f"{where}: its checkpoint file is missing (see the log)")
    if sha256_of(member.checkpoint) != member.sha256:
        log.warning("%s: checkpoint %s does not match its SHA-256", where, member.checkpoint)
        raise ModelUnavailableError(f"{where}: its checkpoint file differs from the one "
                                    "recorded in the manifest (SHA-256 mismatch: changed or "
                                    "corrupt; see the log)")
    try:
        return load_task(member.checkpoint)
    except ModelUnavailableError as exc:
        log.warning("%s: %s", where, exc)
        raise ModelUnavailableError(f"{where}: its checkpoint cannot be loaded (see the "
                                    "log)") from exc


def load_members(manifest: EnsembleManifest) -> list[SurrogateTask]:
    """Every member of ``manifest``; they must be stackable
    (:func:`~exocube.ml.stacked.check_stackable`: one data spec, one architecture), and
    one member alone must have a std head while several must not."""
    tasks = [load_member(m, i) for i, m in enumerate(manifest.members)]
    check_members(tasks, manifest.name)
    log.info("loaded ensemble %s: %d members", manifest.name, len(tasks))
    return tasks


def check_members(tasks: Sequence[SurrogateTask], name: str) -> None:
    """ModelUnavailableError unless ``tasks`` make an ensemble: one network with a std
    head, or several stackable networks without one."""
    if len(tasks) == 1 and not tasks[0].predict_std:
        raise ModelUnavailableError(f"ensemble {name!r} has one member without a std head "
                                    "(predict_std); it has no uncertainty: an ensemble "
                                    "needs at least 2 such members")
    if len(tasks) > 1:
        with_head = [i for i, t in enumerate(tasks) if t.predict_std]
        if with_head:
            raise ModelUnavailableError(
                f"ensemble {name!r}: member {with_head[0]} has a std head (predict_std); "
                "an ensemble of several networks takes networks without one")
        check_stackable(tasks, name)


def mean_and_std(stack: NDArray[np.floating[Any]]) -> tuple[NDArray[np.float64],
                                                            NDArray[np.float64]]:
    """Members' mean and sample standard deviation (``ddof=1``) over axis 0."""
    values = np.asarray(stack, dtype=np.float64)
    return values.mean(axis=0), values.std(axis=0, ddof=1)


def scale_spread(stack: NDArray[np.floating[Any]], factor: float) -> NDArray[np.float64]:
    """The members ``stack`` (axis 0) with their deviations from the mean times ``factor``:
    the same mean, ``factor`` times the std."""
    values = np.asarray(stack, dtype=np.float64)
    mean = values.mean(axis=0)
    return mean + factor * (values - mean)
