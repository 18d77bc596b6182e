"""What a request for a deprecated model is told: Venice's deprecation response headers.

From the deprecation's `startsAt` (or as soon as it is in the catalogue) until `removesAt`,
every response about the model carries `x-venice-model-deprecation-warning` (a notice for
people) and `x-venice-model-deprecation-date` (the `date` of the model's deprecation block,
as an ISO 8601 instant), with `x-venice-deprecated: true` and, when there is one,
`x-venice-deprecated-replacement` (Venice's OpenAPI). After `removesAt` the model is
unknown (`Catalog.get`), so nothing is said of it.
"""

from __future__ import annotations

from datetime import datetime

from videoqueue.catalog.entry import ModelEntry, instant
from videoqueue.clock import iso_z


def deprecation_headers(entry: ModelEntry, now: datetime) -> dict[str, str]:
    """The headers a response about `entry` carries at `now` (none for a current model)."""
    deprecation = entry.deprecation
    if deprecation is None or entry.is_removed(now):
        return {}
    if deprecation.warns_from is not None and now < deprecation.warns_from:
        return {}
    removal = deprecation.removes_at
    warning = f"The model {entry.id} is deprecated and will be removed on {removal:%Y-%m-%d}."
    if deprecation.replacementModelId:
        warning += f" Use {deprecation.replacementModelId} instead."
    headers = {
        "x-venice-model-deprecation-warning": warning,
        "x-venice-model-deprecation-date": iso_z(instant(deprecation.date)),
        "x-venice-deprecated": "true",
    }
    if deprecation.replacementModelId:
        headers["x-venice-deprecated-replacement"] = deprecation.replacementModelId
    return headers
