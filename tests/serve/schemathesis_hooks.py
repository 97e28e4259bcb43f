"""Schemathesis hooks for the service tests (loaded through SCHEMATHESIS_HOOKS).

The one rule the OpenAPI schema cannot state: ``pco2_bar`` (and ``pco2_bar +
pch4_bar``) may not exceed ``surface_pressure_bar`` (JSON Schema has no comparison
between fields). A schema-valid body breaking it is refused with a 422 naming
``pco2_bar`` or ``pch4_bar``; that refusal, and only that one, is not counted as a
failure.
"""

from __future__ import annotations

import json

import schemathesis


def is_co2_above_surface_pressure(body: bytes | str | None) -> bool:
    """True for a 422 whose every entry is the partial pressures > surface pressure refusal."""
    try:
        detail = json.loads(body or b"")["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(detail, list) and bool(detail) and all(
        d.get("field") in ("pco2_bar", "pch4_bar") and str(d.get("bound")).startswith(
            "at most surface_pressure_bar") for d in detail)


@schemathesis.hook
def filter_failure(context: object, failure: object, case: object,
                   response: schemathesis.Response) -> bool:
    """Keep every failure except the documented cross-field refusal of a positive case."""
    return not (response.status_code == 422 and is_co2_above_surface_pressure(
        response.content))
