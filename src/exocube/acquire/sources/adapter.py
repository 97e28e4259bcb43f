"""The contract of a source adapter: what a module in this package provides.

Each source is a module (``kegg.py``, ``mast.py`` ...) with the members of
:class:`SourceAdapter`; :func:`adapters` checks them once, when
:data:`exocube.acquire.sources.SOURCES` is built, so a module that lacks one
fails at import with its name, not in the middle of a run.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast, runtime_checkable

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport


@runtime_checkable
class SourceAdapter(Protocol):
    """One archive: its name, domain and description, the per-second request limit
    it asks for (``None``: the settings' limits only), its base URL under the
    settings, its planner (which speaks the archive's own protocol: TAP, the MAST
    API, a grid layout, REST, an index file, a listing) and its validator."""

    NAME: str
    DOMAIN: str
    DESCRIPTION: str
    MAX_REQUESTS_PER_SECOND: float | None

    def base_url(self, opts: AcquireOptions) -> str: ...

    async def plan(self, ctx: PlanContext) -> list[PlannedFile]: ...

    def validate(self, path: Path, item: PlannedFile) -> QualityReport: ...


def _problem(module: ModuleType) -> str:
    """What keeps ``module`` from being a :class:`SourceAdapter` (``""``: nothing)."""
    methods = [k for k, v in vars(SourceAdapter).items() if callable(v) and not k.startswith("_")]
    missing = [k for k in (*SourceAdapter.__annotations__, *methods) if not hasattr(module, k)]
    if missing:
        return f"lacks {', '.join(missing)}"
    for key in ("NAME", "DOMAIN", "DESCRIPTION"):
        if not isinstance(getattr(module, key), str) or not getattr(module, key):
            return f"{key} {getattr(module, key)!r} is not a non-empty string"
    limit = module.MAX_REQUESTS_PER_SECOND
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float)
                              or not limit > 0):
        return f"MAX_REQUESTS_PER_SECOND {limit!r} is not None or a number above 0"
    if not inspect.iscoroutinefunction(module.plan):
        return "plan is not an async function"
    not_callable = [k for k in methods if not callable(getattr(module, k))]
    return f"{', '.join(not_callable)} not callable" if not_callable else ""


def adapters(*modules: ModuleType) -> dict[str, SourceAdapter]:
    """``modules`` by their ``NAME``, each checked against :class:`SourceAdapter`:
    :class:`TypeError` naming the module and what it lacks, or a name used twice."""
    out: dict[str, SourceAdapter] = {}
    for module in modules:
        why = _problem(module)
        if why:
            raise TypeError(f"source module {module.__name__} is not a SourceAdapter: {why}")
        if module.NAME in out:
            raise TypeError(f"source module {module.__name__}: NAME {module.NAME!r} is "
                            "already the name of another source")
        out[module.NAME] = cast(SourceAdapter, module)
    return out
