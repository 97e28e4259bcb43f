"""Promote a catalogue model to answer a prediction mode, or remove the promotion.

A promotion is a catalogue row (``model_promotions``: one per mode), so every
process reading the catalogue (``exocube serve``, ``exocube predict``, Python's
``Surrogate.from_catalogue``) answers with the promoted model until it is
unpromoted; a newer model trained meanwhile does not replace it. A model is
promoted only for modes it can answer, which needs its checkpoint: it is loaded
once to check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa

from exocube.catalog import Model, ModelPromotion, session_scope, upgrade, utcnow
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.surrogate.loading import MODEL_MODES, load_checkpoint, unusable_reason

log = logging.getLogger(__name__)


def _check_modes(modes: Sequence[str]) -> None:
    for mode in modes:
        if mode not in MODEL_MODES:
            raise ParameterError("--mode", mode, f"one of {', '.join(MODEL_MODES)}")


def promote(database_url: str, model_id: int, modes: Sequence[str] | None = None
            ) -> tuple[str, ...]:
    """Promote model ``model_id`` for ``modes`` (default: every mode it can answer);
    return the modes now promoted to it. Raises ModelUnavailableError for an unknown
    model, a missing checkpoint or a mode the model cannot answer."""
    _check_modes(modes or ())
    upgrade(database_url)
    with session_scope(database_url) as session:
        row = session.get(Model, model_id)
        if row is not None:
            session.expunge(row)
    if row is None:
        raise ModelUnavailableError(f"no catalogue model has id {model_id}; `exocube models "
                                    "list` shows the models")
    problem = unusable_reason(row)
    if problem:
        raise ModelUnavailableError(f"cannot promote {problem}")
    can = load_checkpoint(row).modes
    wanted = tuple(modes) if modes else can
    unable = [m for m in wanted if m not in can]
    if unable:
        raise ModelUnavailableError(
            f"model {model_id} ({row.name}) cannot answer mode(s) {', '.join(unable)}: it was "
            f"trained without the scalar head; it can be promoted for {', '.join(can)}")
    with session_scope(database_url) as session:
        for mode in wanted:
            session.merge(ModelPromotion(mode=mode, model_id=model_id, promoted_at=utcnow()))
    log.info("promoted model %s for modes %s", model_id, wanted)
    return wanted


def unpromote(database_url: str, modes: Sequence[str] | None = None) -> dict[str, int]:
    """Remove the promotions of ``modes`` (default: all); return the removed ones
    (mode -> model id). Those modes are answered by the newest model again."""
    _check_modes(modes or ())
    upgrade(database_url)
    with session_scope(database_url) as session:
        query = sa.select(ModelPromotion)
        if modes:
            query = query.where(ModelPromotion.mode.in_(list(modes)))
        removed = {p.mode: int(p.model_id) for p in session.scalars(query).all()}
        if removed:
            session.execute(sa.delete(ModelPromotion).where(
                ModelPromotion.mode.in_(list(removed))))
    return removed
