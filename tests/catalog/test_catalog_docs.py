"""`docs/models.md` is generated from the catalogue; it must match the data."""

from __future__ import annotations

from pathlib import Path

from videoqueue.catalog.catalog import load_catalog
from videoqueue.catalog.docs import durations_text, main, render

DOCS = Path(__file__).parents[2] / "docs" / "models.md"


def test_docs_models_md_is_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(load_catalog()), (
        "docs/models.md is stale: run `python -m videoqueue.catalog.docs`"
    )


def test_docs_list_every_model_once() -> None:
    text = render(load_catalog())
    for model_id in load_catalog().models:
        assert text.count(f"| `{model_id}` |") == 1, model_id


def test_generator_writes_the_page(tmp_path: Path) -> None:
    target = tmp_path / "models.md"
    assert main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render(load_catalog())


def test_duration_lists_are_compacted_only_when_regular() -> None:
    assert durations_text([f"{n}s" for n in range(4, 16)]) == "4-15s"
    assert durations_text(["5s", "10s", "15s", "20s"]) == "5-20s (step 5s)"
    assert durations_text(["5s", "10s"]) == "5s, 10s"
    assert durations_text(["3s", "5s", "8s"]) == "3s, 5s, 8s"
    assert durations_text(["Auto"]) == "Auto"
