"""`deprecation_headers`: from `startsAt` until `removesAt`, with the replacement when named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.catalog.cases import catalog
from videoqueue.catalog.catalog import CatalogError, UnknownModel, load_catalog
from videoqueue.catalog.deprecation import deprecation_headers
from videoqueue.catalog.entry import Deprecation, ModelEntry


def deprecated(**fields: str) -> ModelEntry:
    entry = catalog().get("wan-2.6-text-to-video")
    return entry.model_copy(update={"deprecation": Deprecation.model_validate(fields)})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_headers_run_from_starts_at_until_removes_at_and_name_the_replacement() -> None:
    entry = deprecated(
        date="2027-01-31T00:00:00.000Z",
        removesAt="2027-02-01T00:00:00.000Z",
        startsAt="2027-01-01T00:00:00.000Z",
        replacementModelId="wan-2-7-text-to-video",
    )
    assert deprecation_headers(entry, at("2026-12-31T23:59:59")) == {}
    assert deprecation_headers(entry, at("2027-01-01T00:00:00")) == {
        "x-venice-model-deprecation-warning": (
            "The model wan-2.6-text-to-video is deprecated and will be removed on 2027-02-01. "
            "Use wan-2-7-text-to-video instead."
        ),
        "x-venice-model-deprecation-date": "2027-01-31T00:00:00.000Z",
        "x-venice-deprecated": "true",
        "x-venice-deprecated-replacement": "wan-2-7-text-to-video",
    }
    assert deprecation_headers(entry, at("2027-02-01T00:00:00")) == {}


def test_a_removed_model_is_unknown_only_to_requests_that_give_the_time() -> None:
    sora = catalog().get("sora-2-text-to-video")
    assert catalog().find(sora.id, at("2026-09-23T23:59:59")) == sora
    assert catalog().find(sora.id, at("2026-09-24T00:00:00")) is None
    with pytest.raises(UnknownModel):
        catalog().get(sora.id, at("2026-09-24T00:00:00"))
    assert catalog().get(sora.id) == sora  # a job accepted earlier is still served


def test_a_deprecation_date_that_is_not_iso_8601_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[models."wan-2.6-text-to-video"]\ndeprecation = { date = "next tuesday" }\n')
    with pytest.raises(CatalogError, match=r"deprecation\.date"):
        load_catalog(path)
