"""The model catalogue: the shipped data file, with the operator's additions and overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from videoqueue.catalog.binding import engine_problems
from videoqueue.catalog.entry import (
    MEDIA_FIELDS,
    REQUIREMENTS,
    Family,
    ModelEntry,
    PerSecondPrice,
    UpscalePrice,
)
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
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Other names a model may be asked for by (`sora-2` → a catalogue id), on the OpenAI API."""

    def find(self, model_id: str, now: datetime | None = None) -> ModelEntry | None:
        """The model with this id; None when there is none, or it is removed by `now`."""
        entry = self.models.get(model_id)
        if entry is None or (now is not None and entry.is_removed(now)):
            return None
        return entry

    def get(self, model_id: str, now: datetime | None = None) -> ModelEntry:
        """The model with this id. Raises `UnknownModel`, also for a model removed by `now`
        (a new request gives `now`; a job already accepted is served without it)."""
        entry = self.find(model_id, now)
        if entry is None:
            raise UnknownModel()
        return entry

    def resolve(self, name: str, now: datetime | None = None) -> ModelEntry | None:
        """The model `name` stands for: an alias's target, else the model with that id."""
        return self.find(self.aliases.get(name, name), now)

    def family(self, entry: ModelEntry) -> Family:
        return self.families[entry.family] if entry.family else NO_FAMILY

    def listed(self, now: datetime) -> list[ModelEntry]:
        """The models `/models` shows at `now`, in catalogue order."""
        return [m for m in self.models.values() if m.listed and not m.is_removed(now)]


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay`'s tables merged in; a `price` table is replaced, never merged."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and key != "price":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _entry_problems(
    entry: ModelEntry, families: Mapping[str, Family], engines: Mapping[str, str] | None
) -> list[str]:
    c = entry.constraints
    problems = []
    if entry.family and entry.family not in families:
        problems.append(f"unknown family {entry.family!r}")
    if engines is not None:
        problems += engine_problems(entry, engines)
    unknown = set(entry.requires) - set(MEDIA_FIELDS) - set(REQUIREMENTS)
    unknown |= set(entry.accepts) - set(MEDIA_FIELDS)
    if unknown:
        problems.append(f"unknown media fields {sorted(unknown)}")
    if not c.durations:
        problems.append("durations is empty")
    if entry.default_resolution and entry.default_resolution not in c.resolutions:
        problems.append(f"default_resolution {entry.default_resolution!r} is not listed")
    if entry.audio_request == "refuse" and c.audio:
        problems.append('audio_request = "refuse" is for a model without sound (audio = false)')
    if entry.aspect_ratio_required and not c.aspect_ratios:
        problems.append("aspect_ratio_required without aspect_ratios")
    if (entry.upscale is None) != (not isinstance(entry.price, UpscalePrice)):
        problems.append("an upscale price rule goes with an [upscale] table, and only with one")
    if entry.upscale and entry.upscale.default_factor not in entry.upscale.factors:
        problems.append("upscale.default_factor is not one of upscale.factors")
    if isinstance(entry.price, PerSecondPrice):
        for rates in (entry.price.rates, entry.price.reference_video_rates):
            if rates is not None and "*" not in rates and set(c.resolutions) - set(rates):
                problems.append(
                    f"no rate for {sorted(set(c.resolutions) - set(rates))} (or give a '*' rate)"
                )
            if rates is not None and not rates:
                problems.append("price has no rates")
    return problems


def check_consistency(catalog: Catalog, engines: Mapping[str, str] | None = None) -> None:
    """Raises `CatalogError` naming every entry whose data cannot be served as written, or
    that is bound to an engine not in `engines` (when given) or that asks what its engine
    cannot do (`binding.engine_problems`)."""
    problems = [
        f"{entry.id}: {problem}"
        for entry in catalog.models.values()
        for problem in _entry_problems(entry, catalog.families, engines)
    ]
    for alias, target in catalog.aliases.items():
        if alias in catalog.models:
            problems.append(f"alias {alias!r} is a model id")
        if target not in catalog.models:
            problems.append(f"alias {alias!r} names no model: {target!r}")
    if problems:
        raise CatalogError("; ".join(problems))


def load_catalog(
    operator_file: Path | None = None, *, engines: Mapping[str, str] | None = None
) -> Catalog:
    """The shipped catalogue, overlaid with an operator's TOML file of the same layout.

    `[aliases]` maps other names to model ids (the OpenAI API's `model`); the operator's
    table adds to the shipped one, and may point a shipped alias elsewhere.
    An operator entry for a known id changes only the keys it names (`engine = "realesrgan"`,
    a new `price`, which replaces the shipped one whole); an entry for a new id must be
    complete. `engines` names the engines that can serve, each with its factory string
    (`registry.engine_factories`): a model bound to another, or asking what its engine cannot
    do (a kind, its rate, a length, a size, sound), is an error, so a server or worker fails at
    start (None: unchecked, for tools that only read the data).
    Raises `CatalogError` when the result is inconsistent.
    """
    with SHIPPED.open("rb") as f:
        data = tomllib.load(f)
    if operator_file is not None:
        try:
            with operator_file.open("rb") as f:
                data = _merge(data, tomllib.load(f))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"{operator_file}: {exc}") from exc
    unknown_tables = set(data) - {"aliases", "families", "models"}
    if unknown_tables:
        raise CatalogError(f"unknown top-level tables {sorted(unknown_tables)}")
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
    aliases = data.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(t, str) for t in aliases.values()):
        raise CatalogError("each alias names one model id (a string)")
    catalog = Catalog(models=models, families=families, aliases=aliases)
    check_consistency(catalog, engines)
    return catalog
