"""`GET /models?type=video` entries, in Venice's wire shape."""

from __future__ import annotations

from typing import Any

from videoqueue.catalog.entry import ModelEntry

PREVIEW_NOTE = (
    "Served by videoqueue's preview engine: a fast deterministic stand-in that renders the "
    "prompt, not a generative model."
)


def model_entry(entry: ModelEntry) -> dict[str, Any]:
    """One model as Venice lists it, plus `videoqueue.engine` naming what serves it."""
    constraints = entry.constraints.model_dump(exclude_none=True)
    spec: dict[str, Any] = {
        "name": entry.name,
        "privacy": entry.privacy,
        "offline": entry.offline,
        "traits": list(entry.traits),
        "constraints": constraints,
        "model_sets": list(entry.model_sets),
    }
    if entry.uncensored:
        spec["uncensored"] = True
    if entry.beta:
        spec["betaModel"] = True
    if entry.deprecation is not None:
        spec["deprecation"] = entry.deprecation.model_dump(exclude_none=True)
    description = entry.description or (PREVIEW_NOTE if entry.engine == "preview" else None)
    if description:
        spec["description"] = description
    spec["videoqueue"] = {"engine": entry.engine, "delivery": entry.delivery}
    return {
        "id": entry.id,
        "object": "model",
        "created": entry.created,
        "owned_by": "venice.ai",
        "type": "video",
        "model_spec": spec,
    }
