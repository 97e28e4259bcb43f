"""A deep ensemble's members run as one network: stacked weights, one batched pass.

The members of an ensemble (:mod:`exocube.ml.ensemble`) share their architecture and
data spec, so their U-Nets and scalar models differ only in their weights.
:class:`StackedMembers` stacks those weights (``torch.func.stack_module_state``) and
runs all members in one ``torch.vmap`` of ``torch.func.functional_call`` (every
convolution becomes one grouped convolution over the members). What does not depend on
the weights is the first member's: the forcing maps and encoded parameters going in
(computed once for all members), and the de-normalisation, hard constraints,
below-ground mask and scalar de-normalisation coming out (applied to the members'
outputs flattened into the batch), so each member's answer is the one it gives alone.

Members that cannot be stacked (another architecture, another data spec) are refused by
:func:`check_stackable`, which :func:`~exocube.ml.ensemble.load_members` calls.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from exocube.errors import ModelUnavailableError
from exocube.ml.scalar import denormalise_scalars
from exocube.ml.task import SurrogateTask

#: The hyperparameters that shape a member's network or its outputs (the others only
#: shape its training: learning rate, weight decay, physics terms and their weighting).
ARCHITECTURE: tuple[str, ...] = ("depth", "base_features", "scalar_head", "constraints",
                                 "substellar_lon_deg")


def check_stackable(tasks: Sequence[SurrogateTask], name: str) -> None:
    """ModelUnavailableError unless every member shares member 0's data spec, the
    hyperparameters of :data:`ARCHITECTURE` and the shapes of its weights."""
    first = tasks[0]
    for i, task in enumerate(tasks[1:], start=1):
        where = f"ensemble {name!r}: member {i}"
        if _spec_text(task) != _spec_text(first):
            raise ModelUnavailableError(
                f"{where} was trained on another data spec (store version, variables, grid, "
                "split or inputs) than member 0; an ensemble's members must share their "
                "training data")
        for key in ARCHITECTURE:
            if task.hparams.get(key) != first.hparams.get(key):
                raise ModelUnavailableError(
                    f"{where} has {key}={task.hparams.get(key)!r} but member 0 "
                    f"{first.hparams.get(key)!r}; an ensemble's members must share their "
                    "architecture")
        if task.has_scalars != first.has_scalars:
            raise ModelUnavailableError(f"{where} and member 0 differ in having the "
                                        "scalar head")
        if _shapes(task) != _shapes(first):
            raise ModelUnavailableError(f"{where} has weights of other shapes than member "
                                        "0; an ensemble's members must share their "
                                        "architecture")


def _spec_text(task: SurrogateTask) -> str:
    """The data spec as canonical JSON (its statistics hold NaN, which != itself)."""
    return json.dumps(task.spec.to_dict(), sort_keys=True)


def _shapes(task: SurrogateTask) -> dict[str, tuple[int, ...]]:
    nets = {"unet": task.unet, "scalar": task.scalar_model}
    return {f"{k}.{n}": tuple(p.shape) for k, net in nets.items() if net is not None
            for n, p in net.state_dict().items()}


class _Stack:
    """Modules of one architecture as one function of their stacked weights."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        params, buffers = stack_module_state(list(modules))
        self.params = {k: v.detach() for k, v in params.items()}
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        self.base = copy.deepcopy(modules[0]).to("meta")

    def _one(self, params: dict[str, Tensor], buffers: dict[str, Tensor], *args: Tensor
             ) -> Any:
        return functional_call(self.base, (params, buffers), args)

    def __call__(self, *args: Tensor, out_dims: Any = 0) -> Any:
        """Every member on the same ``args``: outputs with a leading member axis."""
        batched = torch.vmap(self._one, in_dims=(0, 0, *(None,) * len(args)),
                             out_dims=out_dims)
        return batched(self.params, self.buffers, *args)


class StackedMembers:
    """An ensemble's members as one network (see the module docstring)."""

    def __init__(self, tasks: Sequence[SurrogateTask], name: str = "ensemble") -> None:
        check_stackable(tasks, name)
        self.template = tasks[0]
        self.n_members = len(tasks)
        self._unet = _Stack([t.unet for t in tasks])
        self._scalar = (_Stack([t.scalar_model for t in tasks])  # type: ignore[misc]
                        if self.template.scalar_model is not None else None)

    def network(self, params: Tensor, tidally_locked: Tensor
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Every member's raw outputs (as :meth:`SurrogateTask.network`), ``(M, B, ...)``."""
        forcing, enc = self.template.network_inputs(params, tidally_locked)
        has_2d = self.template.unet.head_2d is not None
        z3, z2 = self._unet(forcing, enc, out_dims=(0, 0 if has_2d else None))
        return z3, z2, self._scalar(enc) if self._scalar is not None else None

    def physical(self, params: Tensor, tidally_locked: Tensor, gravity: Tensor | None = None,
                 r_gas: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Every member's :meth:`SurrogateTask.physical`, ``(M, B, ...)``."""
        z3, z2, zs = self.network(params, tidally_locked)
        m = self.n_members
        out = self.template.to_physical(_flat(z3), _flat(z2), _flat(zs), _rep(params, m),
                                        _rep(gravity, m), _rep(r_gas, m))
        return tuple(_split(t, m) for t in out)  # type: ignore[return-value]

    @torch.no_grad()
    def predict_physical(self, params: Tensor, tidally_locked: Tensor) -> dict[str, Tensor]:
        """Every member's :meth:`SurrogateTask.predict_physical`, each ``(M, B, ...)``."""
        f3, f2, zs = self.physical(params, tidally_locked)
        m = self.n_members
        out = self.template.outputs(_flat(f3), _flat(f2), _flat(zs), _rep(params, m))
        return {k: _split(v, m) for k, v in out.items()}  # type: ignore[misc]

    @torch.no_grad()
    def scalars(self, encoded: Tensor) -> Tensor:
        """Every member's physical scalars ``(M, B, n_scalars)`` for encoded parameters."""
        if self._scalar is None:
            raise ModelUnavailableError("the ensemble's members have no scalar head")
        zs = self._scalar(encoded)
        return _split(denormalise_scalars(_flat(zs).float()), self.n_members)


def _flat(t: Tensor | None) -> Tensor | None:
    """``(M, B, ...)`` -> ``(M * B, ...)``, member-major."""
    return None if t is None else t.reshape(-1, *t.shape[2:])


def _split(t: Tensor | None, m: int) -> Tensor | None:
    """``(M * B, ...)`` -> ``(M, B, ...)``."""
    return None if t is None else t.reshape(m, -1, *t.shape[1:])


def _rep(t: Tensor | None, m: int) -> Tensor | None:
    """A per-sample tensor ``(B, ...)`` repeated for ``m`` members, member-major."""
    return None if t is None else t.repeat(m, *(1,) * (t.ndim - 1))
