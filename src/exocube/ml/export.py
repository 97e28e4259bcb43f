"""Exported models: a trained surrogate (or ensemble) as one self-contained folder.

An exported model is a folder that can be moved, shipped or published::

    model.ckpt | member-0.ckpt, member-1.ckpt, ...
    manifest.json      (an ensemble or a calibrated std-head network only)
    provenance.json
    metrics.csv        (the first network's training log, where it had one)

Each ``.ckpt`` holds a network's weights and hyperparameters (its data spec among
them: variables, grid, normalisation, split and the training runs' parameters), not the
optimiser, scheduler and loop state of a training checkpoint, so it is a third of the
size and loads with :func:`~exocube.ml.task.load_task` (torch's weights-only
unpickler: loading an exported model runs no code from it). ``manifest.json`` is an
ensemble manifest (:mod:`exocube.ml.ensemble`) naming the files relative to the folder,
with their SHA-256 and the spread calibration. ``provenance.json`` says where the model
came from: its catalogue record (name, metrics, training configuration), the data it was
trained on, the exocube version that exported it, the SHA-256 of every file, and a free
``note`` (the training command, say). :func:`model_entry` is the file to load.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from exocube import __version__
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.ml.ensemble import (
    is_manifest,
    load_members,
    read_manifest,
    sha256_of,
    versioned_json,
    write_manifest,
)
from exocube.ml.task import SurrogateTask, load_task, read_checkpoint

EXPORT_FORMAT = "exocube-model"
EXPORT_VERSION = 1
MANIFEST = "manifest.json"
PROVENANCE = "provenance.json"
SINGLE = "model.ckpt"
#: What a loaded, not a resumed, model needs of a Lightning checkpoint (epoch and step
#: are kept for the record).
KEPT_KEYS = ("state_dict", "hyper_parameters", "pytorch-lightning_version", "epoch",
             "global_step")

__all__ = ["EXPORT_FORMAT", "export_model", "load_exported", "model_entry",
           "read_provenance", "slim_checkpoint"]


def slim_checkpoint(src: str | Path, dst: Path) -> None:
    """Write ``src``'s weights and hyperparameters to ``dst`` (via a temporary name)."""
    ckpt = read_checkpoint(src)
    missing = [k for k in ("state_dict", "hyper_parameters") if k not in ckpt]
    if missing:
        raise ModelUnavailableError(f"checkpoint {Path(src).name} lacks {missing}: not a "
                                    "trained exocube surrogate")
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save({k: ckpt[k] for k in KEPT_KEYS if k in ckpt}, tmp)
    os.replace(tmp, dst)


def export_model(checkpoint: str, out: Path, provenance: dict[str, Any]) -> Path:
    """Export ``checkpoint`` (a ``.ckpt`` or an ensemble manifest) into the new folder
    ``out`` with ``provenance`` (JSON-serialisable); return the file to load. The folder
    appears complete or not at all."""
    if out.exists():
        raise ParameterError("out", str(out), "a folder that does not exist yet")
    manifest = read_manifest(checkpoint) if is_manifest(checkpoint) else None
    sources = [m.checkpoint for m in manifest.members] if manifest else [checkpoint]
    names = [f"member-{i}.ckpt" for i in range(len(sources))] if manifest else [SINGLE]
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        for src, name in zip(sources, names, strict=True):
            slim_checkpoint(src, tmp / name)
        curves = Path(sources[0]).resolve().parents[1] / "metrics.csv"
        if curves.is_file():  # the (first) network's training log: the report's curves
            shutil.copyfile(curves, tmp / "metrics.csv")
        if manifest is not None:
            write_manifest(tmp / MANIFEST, manifest.name, [str(tmp / n) for n in names],
                           std_scale=manifest.std_scale, relative=True)
        doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
               "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "exocube_version": __version__, **provenance,
               "files": {n: sha256_of(tmp / n) for n in names}}
        (tmp / PROVENANCE).write_text(json.dumps(doc, indent=1, default=str))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_entry(out)


def model_entry(folder: Path) -> Path:
    """The file of an exported model to load or record: its manifest, else its network."""
    for name in (MANIFEST, SINGLE):
        if (folder / name).is_file():
            return folder / name
    raise ModelUnavailableError(f"{folder} is not an exported exocube model: it has neither "
                                f"{MANIFEST} nor {SINGLE}")


def read_provenance(folder: Path) -> dict[str, Any]:
    """The folder's ``provenance.json``, checked to be an exported model's."""
    if not (folder / PROVENANCE).is_file():
        raise ModelUnavailableError(f"{folder} is not an exported exocube model: it has no "
                                    f"{PROVENANCE}")
    try:
        text = (folder / PROVENANCE).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelUnavailableError(f"{folder / PROVENANCE} is unreadable: {exc}") from exc
    return versioned_json(text, EXPORT_FORMAT, EXPORT_VERSION, str(folder / PROVENANCE))


def load_exported(folder: Path) -> list[SurrogateTask]:
    """The exported model's networks on the CPU (each file checked against its hash)."""
    entry = model_entry(folder)
    if is_manifest(entry):
        manifest = read_manifest(entry)
        inside = folder.resolve()
        for i, member in enumerate(manifest.members):
            if not Path(member.checkpoint).resolve().is_relative_to(inside):
                raise ModelUnavailableError(
                    f"{entry}: member {i} names {member.checkpoint}, outside the exported "
                    "folder; an exported model holds its own files")
        return load_members(manifest)
    expected = read_provenance(folder).get("files", {}).get(SINGLE)
    if expected != sha256_of(entry):
        raise ModelUnavailableError(f"{entry} differs from the SHA-256 in its provenance "
                                    "(changed or corrupt)")
    return [load_task(entry)]
