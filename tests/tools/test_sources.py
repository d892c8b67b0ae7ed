"""The run's source registry: first sighting kept, later text merged so every retrieved passage is quotable."""

from __future__ import annotations

from rolegraph.tools.sources import Source, SourceRegistry


class TestSourceRegistry:
    """SourceRegistry.add."""

    def test_second_chunk_of_a_document_is_appended(self) -> None:
        """Two passages of one document, found by two searches, are both kept in the source's text."""
        registry = SourceRegistry([Source(id="k", title="T", text="First passage.", tool="library_search")])
        merged = registry.add(Source(id="k", title="Other title", text="Second passage.", tool="read_document"))
        assert merged == Source(id="k", title="T", text="First passage.\n\nSecond passage.", tool="library_search")
        assert registry.get("k") == merged

    def test_text_already_held_changes_nothing(self) -> None:
        """Seeing a passage again, or a part of one, leaves the text as it was."""
        registry = SourceRegistry([Source(id="k", title="T", text="One. Two.")])
        registry.add(Source(id="k", title="T", text="One. Two."))
        registry.add(Source(id="k", title="T", text="Two."))
        registry.add(Source(id="k", title="T"))
        assert registry.get("k") == Source(id="k", title="T", text="One. Two.")

    def test_a_longer_text_holding_the_known_one_replaces_it(self) -> None:
        """Reading the whole document after finding one passage keeps the whole text once."""
        registry = SourceRegistry([Source(id="k", title="T", text="Two.")])
        assert registry.add(Source(id="k", title="T", text="One. Two. Three.")).text == "One. Two. Three."

    def test_document_id_of_a_page(self) -> None:
        """A page source's document id is its id without the page suffix; other ids are their own."""
        assert Source(id="smith2020#p12", title="T", page=12).document_id == "smith2020"
        assert Source(id="web-1a2b#p3", title="T").document_id == "web-1a2b#p3"
