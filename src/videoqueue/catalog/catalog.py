"""The model catalogue: the shipped data file, with the operator's additions and overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoqueue.catalog.entry import Family, ModelEntry
from videoqueue.errors import VideoqueueError

SHIPPED = Path(__file__).parent / "models.toml"
NO_FAMILY = Family()


class UnknownModel(VideoqueueError):
    """Invalid model specified"""

    status = 400
    code = "INVALID_MODEL"


class CatalogError(ValueError):
    """The catalogue data (shipped or operator's) is inconsistent."""


@dataclass(frozen=True)
class Catalog:
    models: Mapping[str, ModelEntry]
    families: Mapping[str, Family]

    def get(self, model_id: str) -> ModelEntry:
        """The model with this id. Raises `UnknownModel`."""
        try:
            return self.models[model_id]
        except KeyError:
            raise UnknownModel() from None

    def family(self, entry: ModelEntry) -> Family:
        return self.families[entry.family] if entry.family else NO_FAMILY

    def listed(self) -> list[ModelEntry]:
        """The models `/models` shows, in catalogue order."""
        return [m for m in self.models.values() if m.listed]


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and key != "price":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_catalog(operator_file: Path | None = None) -> Catalog:
    """The shipped catalogue, overlaid with an operator's TOML file of the same layout.

    An operator entry for a known id changes only the keys it names (`engine = "remote"`,
    a new `price`); an entry for a new id must be complete.
    """
    with SHIPPED.open("rb") as f:
        data = tomllib.load(f)
    if operator_file is not None:
        with operator_file.open("rb") as f:
            data = _merge(data, tomllib.load(f))
    try:
        families = {
            name: Family.model_validate(rules) for name, rules in data.get("families", {}).items()
        }
        models = {
            model_id: ModelEntry.model_validate({**fields, "id": model_id})
            for model_id, fields in data.get("models", {}).items()
        }
    except ValueError as exc:
        raise CatalogError(str(exc)) from exc
    for entry in models.values():
        if entry.family and entry.family not in families:
            raise CatalogError(f"{entry.id}: unknown family {entry.family!r}")
    return Catalog(models=models, families=families)
