"""The `Paper` model's identifiers, cross-source de-duplication, and the `Source` a paper becomes.

Papers here are built directly from the fields a backend parses (no API response
is imitated); the parsing of recorded responses is tested in test_scholarly.py.
"""

from __future__ import annotations

import pytest

from rolegraph.tools.scholarly.paper import (
    Paper,
    arxiv_from_doi,
    dedupe,
    normal_arxiv,
    normal_doi,
    normal_title,
    paper_source,
    paper_source_id,
)

CHEMCROW = "Augmenting large language models with chemistry tools"


class TestIdentifiers:
    """DOIs, arXiv ids and titles are normalised before anything is compared."""

    @pytest.mark.parametrize(
        ("raw", "doi"),
        [
            ("https://doi.org/10.1063/1.4938384", "10.1063/1.4938384"),
            ("doi:10.1038/s42256-024-00832-8.", "10.1038/s42256-024-00832-8"),
            ("10.48550/arXiv.2304.05376", "10.48550/arXiv.2304.05376"),
            ("not a doi", None),
            (None, None),
        ],
    )
    def test_normal_doi(self, raw: str | None, doi: str | None) -> None:
        """A DOI is found inside URLs and prefixes, trailing punctuation dropped."""
        assert normal_doi(raw) == doi

    @pytest.mark.parametrize(
        ("raw", "arxiv"),
        [
            ("http://arxiv.org/abs/2104.12255v1", "2104.12255"),
            ("http://arxiv.org/abs/cond-mat/0603029v1", "cond-mat/0603029"),
            ("https://arxiv.org/abs/2304.05376", "2304.05376"),
            ("2312.07559", "2312.07559"),
            ("https://example.org/paper", None),
        ],
    )
    def test_normal_arxiv(self, raw: str, arxiv: str | None) -> None:
        """New and old-style arXiv ids lose their URL and version."""
        assert normal_arxiv(raw) == arxiv

    def test_arxiv_doi(self) -> None:
        """arXiv's own DOIs name an arXiv id, case-insensitively; publisher DOIs do not."""
        assert arxiv_from_doi("10.48550/arxiv.2312.07559") == "2312.07559"
        assert arxiv_from_doi("10.48550/arXiv.2304.05376") == "2304.05376"
        assert arxiv_from_doi("10.1038/s42256-024-00832-8") is None

    def test_normal_title(self) -> None:
        """Case, accents, punctuation and spacing do not make two titles different."""
        assert normal_title("Über  Sprach-Modelle: A Study!") == normal_title("uber sprach modelle a study")

    def test_source_ids(self) -> None:
        """A publisher DOI wins, then an arXiv id (also from an arXiv DOI), then a title hash."""
        assert paper_source_id(Paper(title="T", doi="10.1063/1.4938384", arxiv="2104.12255")) == "doi:10.1063/1.4938384"
        assert paper_source_id(Paper(title="T", doi="10.48550/arXiv.2304.05376")) == "arxiv:2304.05376"
        untitled = paper_source_id(Paper(title="A Title", year=2020))
        assert untitled.startswith("paper-") and len(untitled) == 16
        assert untitled == paper_source_id(Paper(title="a title!", year=2020))
        assert untitled != paper_source_id(Paper(title="A Title", year=2021))


class TestDedupe:
    """Records of one work from several backends become one paper holding the best of each."""

    def test_shared_doi_merges(self) -> None:
        """Same DOI in different case: one paper, gaps filled from the later record, both backends listed."""
        a = Paper(title="Effect of oxide", doi="10.1063/1.4938384", found_by=["openalex"], ids={"openalex": "W1"})
        b = Paper(
            title="Effect of Oxide",
            doi="10.1063/1.4938384".upper(),
            year=2015,
            abstract="Metal-oxide layers...",
            found_by=["semantic_scholar"],
            ids={"semantic_scholar": "s2"},
        )
        [merged] = dedupe([a, b])
        assert (merged.title, merged.year, merged.abstract) == ("Effect of oxide", 2015, "Metal-oxide layers...")
        assert merged.found_by == ["openalex", "semantic_scholar"]
        assert merged.ids == {"openalex": "W1", "semantic_scholar": "s2"}

    def test_preprint_and_journal_join_through_a_record_naming_both(self) -> None:
        """A journal record and an arXiv-DOI record are joined by a third that carries the DOI and the arXiv id."""
        journal = Paper(title=CHEMCROW, doi="10.1038/s42256-024-00832-8", year=2024, found_by=["openalex"])
        preprint = Paper(title="ChemCrow: " + CHEMCROW, doi="10.48550/arxiv.2304.05376", found_by=["openalex"])
        both = Paper(
            title=CHEMCROW, doi="10.1038/s42256-024-00832-8", arxiv="2304.05376", found_by=["semantic_scholar"]
        )
        assert len(dedupe([journal, preprint])) == 2
        [merged] = dedupe([journal, preprint, both])
        assert (merged.doi, merged.arxiv) == ("10.1038/s42256-024-00832-8", "2304.05376")
        assert paper_source_id(merged) == "doi:10.1038/s42256-024-00832-8"

    def test_publisher_doi_is_preferred(self) -> None:
        """Merging an arXiv-DOI record with a publisher-DOI record keeps the publisher's DOI."""
        preprint = Paper(title="X", doi="10.48550/arXiv.2304.05376", found_by=["crossref"])
        published = Paper(title="X", doi="10.1038/s42256-024-00832-8", arxiv="2304.05376", kind="article")
        [merged] = dedupe([preprint, published])
        assert (merged.doi, merged.kind) == ("10.1038/s42256-024-00832-8", "article")

    def test_title_matches_within_a_year(self) -> None:
        """The same title a year apart without conflicting DOIs is one paper; five years apart it is two."""
        arxiv = Paper(title="Neural Turing Machines", year=2014, arxiv="1410.5401")
        elsewhere = Paper(title="Neural turing machines.", year=2015, venue="ArXiv")
        later = Paper(title="Neural Turing Machines", year=2020)
        [merged, other] = dedupe([arxiv, elsewhere, later])
        assert (merged.arxiv, merged.venue) == ("1410.5401", "ArXiv")
        assert other.year == 2020

    def test_title_with_different_dois_stays_apart(self) -> None:
        """Two works that share a generic title but carry different publisher DOIs are kept apart."""
        a = Paper(title="Introduction", year=2020, doi="10.1000/a")
        b = Paper(title="Introduction", year=2020, doi="10.1000/b")
        assert dedupe([a, b]) == [a, b]

    def test_order_is_first_seen(self) -> None:
        """The union keeps the order in which papers were first seen."""
        papers = [Paper(title=t) for t in ("first", "second", "third")]
        assert [p.title for p in dedupe([*papers, papers[0]])] == ["first", "second", "third"]


class TestSource:
    def test_paper_source(self) -> None:
        """A paper's source carries its metadata for the bibliography and title plus abstract as text."""
        paper = Paper(
            title="From stripe to checkerboard order",
            authors=["Adrian Del Maestro"],
            year=2006,
            venue="Phys. Rev. B 74, 024520 (2006)",
            doi="10.1103/PhysRevB.74.024520",
            arxiv="cond-mat/0603029",
            abstract="We discuss the effects of quenched disorder.",
            url="http://arxiv.org/abs/cond-mat/0603029v1",
            pdf_url="http://arxiv.org/pdf/cond-mat/0603029v1",
            kind="article",
        )
        source = paper_source(paper, "arxiv_search")
        assert source.model_dump() == {
            "id": "doi:10.1103/physrevb.74.024520",
            "title": "From stripe to checkerboard order",
            "authors": ["Adrian Del Maestro"],
            "year": 2006,
            "venue": "Phys. Rev. B 74, 024520 (2006)",
            "url": "http://arxiv.org/abs/cond-mat/0603029v1",
            "doi": "10.1103/PhysRevB.74.024520",
            "arxiv": "cond-mat/0603029",
            "pdf_url": "http://arxiv.org/pdf/cond-mat/0603029v1",
            "kind": "article",
            "tool": "arxiv_search",
            "text": "From stripe to checkerboard order\n\nWe discuss the effects of quenched disorder.",
            "page": None,
        }
