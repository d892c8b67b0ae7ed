"""The local library: loading notes, the demo library, chunk search, and the library tools."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from rolegraph.errors import LibraryError, SpecError
from rolegraph.tools.library import (
    Document,
    Library,
    LibrarySearchArgs,
    LibrarySearchTool,
    ReadDocumentArgs,
    ReadDocumentTool,
    fts_query,
)
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import ToolResult

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "library"
PAPERS_YAML = REPO.parent / "shared" / "papers.yaml"

HOSTILE_QUERIES = [
    "",
    "   ",
    '"',
    '"unbalanced',
    'LoRA: low-rank "adaptation"',
    "title:LoRA",
    "lora*",
    "*",
    "NEAR(lora adaptation, 2)",
    "NEAR",
    "AND OR NOT",
    "lora AND",
    "-lora",
    "^lora",
    "(lora",
    "{title body}: lora",
    "'; DROP TABLE notes; --",
    "\x00lora\x00",
    "ünïcödé Lála 注意力 😀",
    "_ __ ___",
    "x" * 10_000,
    "junk " * 2_000,
    "".join(chr(c) for c in range(32, 127)) * 80,
]


def write_note(folder: Path, name: str, body: str = "A note.", **facts: object) -> Path:
    meta = {"key": name, "title": f"Title of {name}", "first_author": "Ada Lovelace", "year": 2020, "venue": "arXiv"}
    meta |= {"topic": "testing", **facts}
    path = folder / f"{name}.md"
    path.write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n{body}\n", encoding="utf-8")
    return path


def doc(key: str, title: str, body: str, **facts: object) -> tuple[Document, str]:
    base: dict[str, object] = {"authors": ["Ada Lovelace"], "year": 2020, "venue": "arXiv", "topic": "testing"}
    return Document.model_validate({"key": key, "title": title, **base, **facts}), body


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return Library.from_dir(DEMO, index=tmp_path_factory.mktemp("index") / "demo.sqlite")


@pytest.fixture
def tiny() -> Library:
    return Library(
        [
            doc(
                "smith2020retrieval",
                "Retrieval for Everyone",
                "We index documents.\n\nA dense   retriever finds passages for questions.",
                authors=["Jane Smith"],
                arxiv="2001.00001",
            ),
            doc("jones2019parrots", "Talking Birds", "Parrots repeat words they hear.", year=2019, venue="ACL 2019"),
        ]
    )


class TestDemoLibrary:
    """The offline demo library in examples/library."""

    def test_loads_all_36_notes(self, demo: Library) -> None:
        """Every paper has a note, and the loader takes each *.md file except README.md."""
        files = sorted(p.stem for p in DEMO.glob("*.md") if p.name != "README.md")
        assert len(demo) == 36
        assert sorted(demo.keys()) == files
        assert "README" not in demo

    def test_front_matter_is_consistent(self, demo: Library) -> None:
        """Keys and titles are unique, each key contains the year, and arXiv ids look like arXiv ids."""
        docs = list(demo)
        assert len({d.title for d in docs}) == len({d.key for d in docs}) == 36
        assert [d.key for d in docs if str(d.year) not in d.key] == []
        assert [d.key for d in docs if d.arxiv is not None and not d.arxiv.replace(".", "").isdigit()] == []

    @pytest.mark.skipif(not PAPERS_YAML.exists(), reason="../shared/papers.yaml is not next to this checkout")
    def test_front_matter_equals_papers_yaml(self, demo: Library) -> None:
        """Each note's front matter holds exactly the facts of papers.yaml, nothing more."""
        papers = yaml.safe_load(PAPERS_YAML.read_text(encoding="utf-8"))
        expected = sorted(({k: v for k, v in p.items() if v is not None} for p in papers), key=lambda p: p["key"])
        found = []
        for document in demo:
            facts = document.metadata()
            facts["first_author"] = facts.pop("authors")[0]
            found.append(facts)
        assert sorted(found, key=lambda m: m["key"]) == expected

    def test_bodies_are_120_to_220_words(self, demo: Library) -> None:
        """Every note's body is a short summary, 120 to 220 words long."""
        lengths = {d.key: len(demo.text(d.key).split()) for d in demo}
        assert {k: n for k, n in lengths.items() if not 120 <= n <= 220} == {}

    def test_lora_note_supports_keyword_search(self, demo: Library) -> None:
        """The LoRA note names the ideas a reader would search for."""
        body = demo.text("hu2021lora").lower()
        assert [w for w in ("low-rank", "frozen", "freezes", "trainable parameters", "matrices") if w not in body] == []


class TestFromDir:
    """Loading a folder of notes, and the errors malformed notes produce."""

    def test_loads_notes_and_skips_readme_and_other_files(self, tmp_path: Path) -> None:
        """Notes, text, HTML and PDF files are documents; README.md, hidden folders and other files are not."""
        path = write_note(tmp_path, "a2020x", "First paragraph.\n\nSecond.", arxiv="2001.00001")
        (tmp_path / "README.md").write_text("# Not a note\n", encoding="utf-8")
        (tmp_path / "data.csv").write_text("ignored,1", encoding="utf-8")
        (tmp_path / ".hidden").mkdir()
        (tmp_path / ".hidden" / "secret.txt").write_text("not indexed", encoding="utf-8")
        library = Library.from_dir(tmp_path, index=tmp_path / "index.sqlite")
        assert list(library) == [
            Document(
                key="a2020x",
                title="Title of a2020x",
                authors=("Ada Lovelace",),
                year=2020,
                venue="arXiv",
                arxiv="2001.00001",
                topic="testing",
                path=path,
            )
        ]
        assert library.text("a2020x") == "First paragraph.\n\nSecond."

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A missing folder is a LibraryError naming it."""
        with pytest.raises(LibraryError) as caught:
            Library.from_dir(tmp_path / "nowhere")
        assert str(caught.value) == f"{tmp_path / 'nowhere'}: library folder {tmp_path / 'nowhere'} does not exist"

    def test_folder_without_documents(self, tmp_path: Path) -> None:
        """A folder with only a README has no documents, which is an error."""
        (tmp_path / "README.md").write_text("# hi\n", encoding="utf-8")
        with pytest.raises(LibraryError, match=r"has no documents \(\*\.md, \*\.txt, \*\.html or \*\.pdf files\)"):
            Library.from_dir(tmp_path)

    def test_every_malformed_note_is_reported_with_file_and_line(self, tmp_path: Path) -> None:
        """All problems come back at once, each naming its file, line and field."""
        (tmp_path / "b.md").write_text("---\nkey: b\ntitle: x\n", encoding="utf-8")
        (tmp_path / "c.md").write_text("---\nkey: c\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
        (tmp_path / "d.md").write_text(
            "---\nkey: d\ntitle: T\nfirst_author: A\nyear: soon\n---\nbody\n", encoding="utf-8"
        )
        write_note(tmp_path, "e", arxiv=2106.09685)
        write_note(tmp_path, "f", colour="blue")
        write_note(tmp_path, "g", key="other")
        write_note(tmp_path, "h", body="")
        (tmp_path / "i.md").write_text("---\nkey: i\n---\nbody\n", encoding="utf-8")
        write_note(tmp_path, "ok")
        with pytest.raises(LibraryError) as caught:
            Library.from_dir(tmp_path, index=tmp_path / "index.sqlite")
        assert [(p.file.name if p.file else None, p.line, p.path, p.message) for p in caught.value.problems] == [
            ("b.md", 1, "", "the front matter has no closing '---' line"),
            ("c.md", 3, "", "the front matter is not valid YAML: expected ',' or ']', but got '<stream end>'"),
            ("d.md", 5, "year", "year: Input should be a valid integer, unable to parse string as an integer"),
            ("e.md", 8, "arxiv", "arxiv: quote the id, e.g. arxiv: '2106.09685' (unquoted, YAML reads it as a number)"),
            ("f.md", 8, "colour", "colour: Extra inputs are not permitted"),
            ("g.md", 1, "key", "key 'other' must match the file name (g.md)"),
            ("h.md", 8, "", "the note has no text after its front matter"),
            ("i.md", None, "title", "title: Field required"),
        ]
        assert isinstance(caught.value, SpecError)
        assert f"{tmp_path / 'g.md'}:1: key 'other' must match the file name (g.md) (key)" in str(caught.value)

    def test_a_fixed_note_is_indexed_on_the_next_load(self, tmp_path: Path) -> None:
        """Good notes stay indexed while a bad one is reported; once fixed, it loads without re-reading the rest."""
        write_note(tmp_path, "good")
        (tmp_path / "bad.md").write_text("---\ntitle: [\n---\nbody\n", encoding="utf-8")
        with pytest.raises(LibraryError, match=r"bad\.md"):
            Library.from_dir(tmp_path, index=tmp_path / "index.sqlite")
        write_note(tmp_path, "bad")
        library = Library.from_dir(tmp_path, index=tmp_path / "index.sqlite")
        assert library.keys() == ["bad", "good"]
        assert library.report is not None
        assert (library.report.added, library.report.unchanged) == (1, 1)

    def test_notes_without_front_matter_and_optional_fields(self, tmp_path: Path) -> None:
        """Front matter is optional: a plain markdown file is titled by its first heading and keyed by its name."""
        (tmp_path / "My Notes (draft).md").write_text("# On Adapters\n\nAdapters are small.\n", encoding="utf-8")
        (tmp_path / "t.md").write_text("---\ntitle: Just a title\n---\nText.\n", encoding="utf-8")
        library = Library.from_dir(tmp_path, index=tmp_path / "index.sqlite")
        assert [(d.key, d.title, d.authors, d.year) for d in library] == [
            ("My-Notes-draft", "On Adapters", (), None),
            ("t", "Just a title", (), None),
        ]

    def test_duplicate_keys(self) -> None:
        """Two documents with one key are refused."""
        with pytest.raises(LibraryError, match=r"duplicate key 'k'"):
            Library([doc("k", "One", "x"), doc("k", "Two", "y")])


class TestFtsQuery:
    """Sanitising free text into FTS5 queries."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('LoRA: low-rank "adaptation"', '"lora" OR "low" OR "rank" OR "adaptation"'),
            ("NEAR(x* y)", '"near" OR "x" OR "y"'),
            ("the paper on LoRA and QLoRA", '"lora" OR "qlora"'),
            ("what is the", '"what" OR "is" OR "the"'),
            ("Lála lala LÁLA", '"lála" OR "lala"'),
            ("snake_case", '"snake" OR "case"'),
        ],
    )
    def test_quotes_words_and_drops_syntax(self, text: str, expected: str) -> None:
        """Words are lowercased, deduplicated and quoted; punctuation and operators become plain words or vanish."""
        assert fts_query(text) == expected

    @pytest.mark.parametrize("text", ["", "   ", '*:()"^-', "___", "😀 …"])
    def test_no_words_is_none(self, text: str) -> None:
        """Text without a letter or digit has nothing to search for."""
        assert fts_query(text) is None

    def test_caps_terms_and_term_length(self) -> None:
        """Huge queries are cut to a bounded number of bounded terms."""
        query = fts_query(" ".join(f"w{i}" for i in range(100)) + " " + "x" * 500)
        assert query is not None
        assert query.split(" OR ") == [f'"w{i}"' for i in range(24)]
        assert fts_query("y" * 500) == '"' + "y" * 64 + '"'


class TestSearch:
    """Library.search: ranking, snippets, hostile input, threads."""

    def test_lora_first_for_low_rank_adaptation(self, demo: Library) -> None:
        """The LoRA note ranks first for its topic."""
        hits = demo.search("low-rank adaptation", limit=3)
        assert [h.document.key for h in hits][:2] == ["hu2021lora", "dettmers2023qlora"]
        assert hits[0].score > hits[1].score > hits[2].score

    @pytest.mark.parametrize(
        ("query", "key"),
        [
            ("Vaswani", "vaswani2017attention"),
            ("Lala", "lala2023paperqa"),
            ("chain-of-thought prompting", "wei2022cot"),
            ("byte pair encoding subword", "sennrich2016bpe"),
            ("compute-optimal training tokens", "hoffmann2022chinchilla"),
            ("stochastic parrots", "bender2021parrots"),
            ("reasoning and acting", "yao2023react"),
        ],
    )
    def test_finds_by_author_title_and_content(self, demo: Library, query: str, key: str) -> None:
        """Author names (with or without diacritics), titles and body words all find the right paper first."""
        assert demo.search(query, limit=1)[0].document.key == key

    def test_title_outweighs_body(self) -> None:
        """A word in the title ranks a note above one that only mentions it in the body, even repeatedly."""
        library = Library(
            [
                doc("body", "Other Things", "Retrieval here. Retrieval there. Retrieval everywhere, and more words."),
                doc("title", "Retrieval", "A note about something else entirely, with more words in it."),
            ]
        )
        assert [h.document.key for h in library.search("retrieval")] == ["title", "body"]

    def test_snippet_is_chunk_text_around_the_match(self, tiny: Library, demo: Library) -> None:
        """The snippet is the chunk with whitespace collapsed, at most about 300 characters; the hit holds the chunk."""
        [hit] = tiny.search("dense retriever")
        assert hit.snippet == "We index documents. A dense retriever finds passages for questions."
        assert hit.text == "We index documents.\n\nA dense retriever finds passages for questions."
        assert (hit.page, hit.source_id) == (None, "smith2020retrieval")
        for hit in demo.search("reinforcement learning human feedback", limit=10):
            assert len(hit.snippet) <= 301
            assert hit.snippet.strip("…") in " ".join(hit.text.split())

    def test_hits_are_chunks_of_long_documents(self) -> None:
        """A long document is split into chunks; the hit is the chunk that matches, not the whole document."""
        filler = " ".join(f"Filler sentence number {i} about nothing much." for i in range(60))
        library = Library([doc("long", "A Long Report", f"{filler}\n\nThe zebra finch sings at dawn.\n\n{filler}")])
        [hit] = library.search("zebra finch")
        assert "The zebra finch sings at dawn." in hit.text
        assert len(hit.text) <= 1800 < len(library.text("long"))

    def test_per_document_caps_chunks_of_one_document(self) -> None:
        """per_document keeps one long document from filling every slot."""
        para = "Retrieval retrieval retrieval, and more words about retrieval here. " * 20
        library = Library([doc("big", "Big", "\n\n".join([para] * 6)), doc("small", "Small", "One retrieval note.")])
        assert [h.document.key for h in library.search("retrieval", 4)] == ["big"] * 4
        assert [h.document.key for h in library.search("retrieval", 4, per_document=2)] == ["big", "big", "small"]

    def test_limit_and_no_match(self, demo: Library) -> None:
        """At most `limit` hits; a word no note contains gives none."""
        assert len(demo.search("language models", limit=7)) == 7
        assert demo.search("zyzzyva") == []

    @pytest.mark.parametrize("query", HOSTILE_QUERIES)
    def test_hostile_queries_never_raise(self, demo: Library, query: str) -> None:
        """Quotes, FTS5 operators, column filters, SQL and junk are searched as words, never parsed."""
        hits = demo.search(query)
        assert isinstance(hits, list)

    def test_random_text_never_raises(self, demo: Library) -> None:
        """Random strings over ASCII and wider Unicode never raise."""
        rng = random.Random(7)
        alphabet = [chr(c) for c in range(1, 0x250)] + list('"*:^()-+{}[]NEARORANDNOT \u2028\U0001f600\u0301')
        for _ in range(300):
            demo.search("".join(rng.choices(alphabet, k=rng.randint(1, 80))))

    def test_usable_from_other_threads(self, demo: Library) -> None:
        """A library built in one thread can be searched from several others at once."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: [h.document.key for h in demo.search("agents tools")], range(64)))
        assert results == [results[0]] * 64
        assert results[0] != []


class TestDocument:
    """A note as a Source."""

    def test_to_source_with_arxiv(self, demo: Library) -> None:
        """The source carries the facts, the first author, an arXiv URL, the tool and the given text."""
        note = demo.get("hu2021lora")
        assert note is not None
        assert note.to_source("library_search", text="Some text.") == Source(
            id="hu2021lora",
            title="LoRA: Low-Rank Adaptation of Large Language Models",
            authors=["Edward J. Hu"],
            year=2021,
            venue="ICLR 2022",
            url="https://arxiv.org/abs/2106.09685",
            arxiv="2106.09685",
            tool="library_search",
            text="Some text.",
        )

    def test_a_page_of_a_document_is_its_own_source(self) -> None:
        """A page's source id names the page, its document id is the key; a DOI gives the URL without arXiv."""
        paper = Document(key="smith2020", title="T", authors=("Jane Smith",), doi="10.5555/x", pages=9)
        source = paper.to_source("read_document", text="Page four.", page=4)
        assert (source.id, source.document_id, source.page, source.url) == (
            "smith2020#p4",
            "smith2020",
            4,
            "https://doi.org/10.5555/x",
        )
        assert paper.cite_line(4) == "[smith2020#p4] T (Jane Smith)"

    def test_to_source_without_arxiv(self, demo: Library) -> None:
        """A paper with no arXiv id has no URL."""
        note = demo.get("bender2021parrots")
        assert note is not None
        source = note.to_source()
        assert (source.arxiv, source.url, source.tool) == (None, None, "")


class TestLibrarySearchTool:
    """The library_search tool."""

    async def test_hits_become_content_data_and_sources(self, tiny: Library) -> None:
        """Each hit is listed as [id] title (author, year) plus snippet, with data and a source."""
        result = await LibrarySearchTool(tiny)(LibrarySearchArgs(query="retrieval"))
        chunk = "We index documents.\n\nA dense retriever finds passages for questions."
        assert result.content == (
            "[smith2020retrieval] Retrieval for Everyone (Jane Smith, 2020)\n"
            "We index documents. A dense retriever finds passages for questions."
        )
        paper = tiny.get("smith2020retrieval")
        assert paper is not None
        assert result.sources == [paper.to_source("library_search", text=chunk)]
        [data] = result.data
        assert data.pop("score") > 0
        assert data == {
            "id": "smith2020retrieval",
            "document": "smith2020retrieval",
            "title": "Retrieval for Everyone",
            "authors": ["Jane Smith"],
            "year": 2020,
            "venue": "arXiv",
            "arxiv": "2001.00001",
            "topic": "testing",
            "snippet": "We index documents. A dense retriever finds passages for questions.",
            "text": chunk,
        }
        assert not result.is_error

    async def test_max_results(self, demo: Library) -> None:
        """max_results bounds the number of hits and sources."""
        result = await LibrarySearchTool(demo)(LibrarySearchArgs(query="language models", max_results=10))
        assert len(result.sources) == len(result.data) == 10
        assert result.content.count("\n\n[") == 9

    async def test_no_hits_is_an_observation(self, tiny: Library) -> None:
        """No match is not an error: the model is told to try other terms."""
        result = await LibrarySearchTool(tiny)(LibrarySearchArgs(query="zyzzyva"))
        assert result == ToolResult(
            content="No papers in the library match 'zyzzyva'. "
            "Try other keywords: synonyms, a broader topic, or an author's surname.",
            data=[],
        )

    async def test_query_without_words_is_an_error_observation(self, tiny: Library) -> None:
        """A query of punctuation only is reported back, not raised."""
        result = await LibrarySearchTool(tiny)(LibrarySearchArgs(query='"*"'))
        assert result == ToolResult.error(
            "The query '\"*\"' has no words to search for. Search with keywords, e.g. 'chain-of-thought reasoning'."
        )

    def test_schema(self, tiny: Library) -> None:
        """The model sees a bounded query and max_results (default 4, 1 to 10)."""
        spec = LibrarySearchTool(tiny).spec()
        assert spec.name == "library_search"
        assert spec.parameters == {
            "additionalProperties": False,
            "description": "Arguments of `library_search`.",
            "properties": {
                "query": {
                    "description": "Keywords, e.g. 'low-rank adaptation fine-tuning'.",
                    "maxLength": 200,
                    "minLength": 1,
                    "title": "Query",
                    "type": "string",
                },
                "max_results": {
                    "default": 4,
                    "description": "How many passages to return (1-10).",
                    "maximum": 10,
                    "minimum": 1,
                    "title": "Max Results",
                    "type": "integer",
                },
            },
            "required": ["query"],
            "type": "object",
        }

    @pytest.mark.parametrize(
        "arguments", [{"query": ""}, {"query": "x" * 201}, {"query": "x", "max_results": 11}, {"q": "x"}]
    )
    def test_arguments_are_validated(self, arguments: dict[str, object]) -> None:
        """Empty or overlong queries, out-of-range counts and unknown fields are refused by the argument model."""
        with pytest.raises(ValidationError):
            LibrarySearchArgs.model_validate(arguments)


class TestReadDocumentTool:
    """The read_document tool."""

    async def test_reads_full_note_and_registers_source(self, tiny: Library) -> None:
        """The observation holds the citation line, details and body; the source holds the full text."""
        result = await ReadDocumentTool(tiny)(ReadDocumentArgs(source_id="smith2020retrieval"))
        note = tiny.get("smith2020retrieval")
        assert note is not None
        text = "We index documents.\n\nA dense retriever finds passages for questions."
        assert result == ToolResult(
            content="[smith2020retrieval] Retrieval for Everyone (Jane Smith, 2020)\n"
            f"arXiv · arXiv 2001.00001 · topic: testing\n\n{text}",
            data={
                "id": "smith2020retrieval",
                "document": "smith2020retrieval",
                "title": "Retrieval for Everyone",
                "authors": ["Jane Smith"],
                "year": 2020,
                "venue": "arXiv",
                "arxiv": "2001.00001",
                "topic": "testing",
                "truncated": False,
            },
            sources=[note.to_source("read_document", text=text)],
        )

    async def test_truncates_long_notes_and_says_so(self, demo: Library) -> None:
        """A body past the budget is cut at a word and marked; the source keeps the full text."""
        result = await ReadDocumentTool(demo, max_chars=200)(ReadDocumentArgs(source_id="hu2021lora"))
        text = demo.text("hu2021lora")
        body = result.content.split("\n\n", 1)[1]
        assert body.endswith(f" …\n\n[truncated: showing about 200 of {len(text)} characters]")
        assert len(body.split(" …\n\n")[0]) <= 200
        assert text.startswith(body.split(" …\n\n")[0])
        assert result.data["truncated"] is True
        assert result.sources[0].text == text

    @pytest.mark.parametrize("given", ["[hu2021lora]", " 'hu2021lora' ", "HU2021LoRA"])
    async def test_forgives_brackets_quotes_and_case(self, demo: Library, given: str) -> None:
        """Ids copied with their brackets or quotes, or in another case, still resolve."""
        result = await ReadDocumentTool(demo)(ReadDocumentArgs(source_id=given))
        assert [s.id for s in result.sources] == ["hu2021lora"]

    async def test_unknown_id_suggests_close_ids(self, demo: Library) -> None:
        """An unknown id is an error observation listing similar ids."""
        result = await ReadDocumentTool(demo)(ReadDocumentArgs(source_id="lora2021"))
        assert result == ToolResult.error(
            "No paper with id 'lora2021' in the library. "
            "Did you mean: hu2021lora, dettmers2023qlora, li2021prefix? "
            "Use library_search to find papers and their ids."
        )

    async def test_unknown_id_without_close_ids(self, tiny: Library) -> None:
        """With nothing similar, the error points to library_search."""
        result = await ReadDocumentTool(tiny)(ReadDocumentArgs(source_id="zzz"))
        assert result == ToolResult.error(
            "No paper with id 'zzz' in the library. Use library_search to find papers and their ids."
        )
