"""The stored library index: where it lives, incremental updates, BibTeX changes, damage, concurrency."""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rolegraph.tools.library import IndexEvent, Library, default_index_path

NOTE = "---\ntitle: {title}\n---\n\n{body}\n"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Indexes go under a temporary ROLEGRAPH_HOME."""
    folder = tmp_path / "home"
    monkeypatch.setenv("ROLEGRAPH_HOME", str(folder))
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A library of two notes and a text file."""
    library = tmp_path / "papers"
    library.mkdir()
    (library / "alpha.md").write_text(NOTE.format(title="Alpha", body="Alpha trains adapters."), encoding="utf-8")
    (library / "beta.md").write_text(NOTE.format(title="Beta", body="Beta merges low-rank updates."), encoding="utf-8")
    (library / "gamma.txt").write_text("Gamma\n\nGamma prunes attention heads.\n", encoding="utf-8")
    return library


def load(folder: Path) -> tuple[Library, list[str]]:
    """The library, and the names of the files it read."""
    read: list[str] = []

    def progress(event: IndexEvent) -> None:
        if event.page == 0:
            read.append(event.file.name)

    return Library.from_dir(folder, progress=progress), read


def counts(library: Library) -> tuple[int, int, int, int]:
    report = library.report
    assert report is not None
    return report.added, report.changed, report.removed, report.unchanged


class TestLocation:
    """Where the index is kept."""

    def test_index_lives_under_the_home_not_in_the_library(self, folder: Path, home: Path) -> None:
        """The index is a file under $ROLEGRAPH_HOME/libraries/; the library folder gets no new file."""
        before = sorted(p.name for p in folder.iterdir())
        library, _ = load(folder)
        assert library.report is not None
        assert library.report.index == default_index_path(folder)
        assert library.report.index.is_relative_to(home / "libraries")
        assert library.report.index.is_file()
        assert sorted(p.name for p in folder.iterdir()) == before

    def test_index_option_puts_it_elsewhere(self, folder: Path, tmp_path: Path) -> None:
        """An explicit index path is used as given."""
        library = Library.from_dir(folder, index=tmp_path / "mine.sqlite")
        assert library.report is not None and library.report.index == tmp_path / "mine.sqlite"
        assert (tmp_path / "mine.sqlite").is_file()

    def test_unwritable_home_keeps_the_index_in_memory(self, folder: Path, tmp_path: Path) -> None:
        """If the index cannot be stored, the library still works, and the report says so."""
        (tmp_path / "file").write_text("not a folder")
        library = Library.from_dir(folder, index=tmp_path / "file" / "index.sqlite")
        assert library.report is not None and library.report.index is None
        assert "kept in memory for this run" in library.report.notes[0]
        assert [h.document.key for h in library.search("adapters")] == ["alpha"]

    def test_two_folders_get_two_indexes(self, folder: Path, tmp_path: Path) -> None:
        """Libraries in different folders never share an index."""
        other = tmp_path / "other"
        other.mkdir()
        (other / "delta.md").write_text(NOTE.format(title="Delta", body="Delta distils."), encoding="utf-8")
        assert default_index_path(folder) != default_index_path(other)
        assert Library.from_dir(other).keys() == ["delta"]
        assert Library.from_dir(folder).keys() == ["alpha", "beta", "gamma"]


class TestIncremental:
    """Only new and changed files are read again."""

    def test_second_load_reads_nothing(self, folder: Path) -> None:
        """An unchanged library is opened from its index without reading a file."""
        first, read = load(folder)
        assert (counts(first), read) == ((3, 0, 0, 0), ["alpha.md", "beta.md", "gamma.txt"])
        second, read = load(folder)
        assert (counts(second), read) == ((0, 0, 0, 3), [])
        assert [h.document.key for h in second.search("low-rank")] == ["beta"]

    def test_added_changed_and_deleted_files(self, folder: Path) -> None:
        """A new file is added, a changed one read again (old text gone), a deleted one removed."""
        load(folder)
        (folder / "delta.md").write_text(NOTE.format(title="Delta", body="Delta distils models."), encoding="utf-8")
        (folder / "beta.md").write_text(NOTE.format(title="Beta", body="Beta now quantises weights."), encoding="utf-8")
        (folder / "gamma.txt").unlink()
        library, read = load(folder)
        assert (counts(library), read) == ((1, 1, 1, 1), ["beta.md", "delta.md"])
        assert library.keys() == ["alpha", "beta", "delta"]
        assert library.search("low-rank") == []
        assert [h.document.key for h in library.search("quantises")] == ["beta"]
        assert library.search("prunes") == []
        assert library.report is not None and library.report.chunks == 3

    def test_touched_but_unchanged_file_is_not_read(self, folder: Path) -> None:
        """A new modification time with the same content is recognised by its hash."""
        load(folder)
        stat = (folder / "alpha.md").stat()
        os.utime(folder / "alpha.md", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        library, read = load(folder)
        assert (counts(library), read) == ((0, 0, 0, 3), [])

    def test_same_size_change_is_seen(self, folder: Path) -> None:
        """A change that keeps the size but moves the modification time is read again."""
        load(folder)
        path = folder / "alpha.md"
        stat = path.stat()
        path.write_text(path.read_text().replace("Alpha trains", "Alpha tunes!"), encoding="utf-8")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        library, read = load(folder)
        assert read == ["alpha.md"]
        assert [h.document.key for h in library.search("tunes")] == ["alpha"]

    def test_bibtex_change_redescribes_without_reading(self, folder: Path) -> None:
        """Adding or editing the .bib file updates titles and authors (and their ranking) without reading documents."""
        load(folder)
        bib = folder / "library.bib"
        bib.write_text(
            "@article{gamma, title = {Pruning Heads}, author = {Voita, Elena}, year = 2019, doi = {10.5555/g}}"
        )
        library, read = load(folder)
        assert read == []
        gamma = library.get("gamma")
        assert gamma is not None
        assert (gamma.title, gamma.authors, gamma.year, gamma.doi, gamma.kind) == (
            "Pruning Heads",
            ("Elena Voita",),
            2019,
            "10.5555/g",
            "article",
        )
        assert [h.document.key for h in library.search("Voita")] == ["gamma"]
        bib.unlink()
        library, read = load(folder)
        assert read == []
        assert library.get("gamma") is not None and library.get("gamma").title == "Gamma"  # type: ignore[union-attr]
        assert library.search("Voita") == []


class TestDamage:
    """A damaged or outdated index is rebuilt, never a traceback."""

    @pytest.mark.parametrize(
        ("damage", "noted"),
        [
            pytest.param(lambda p: p.write_bytes(b"this is not a database" * 100), True, id="garbage"),
            pytest.param(lambda p: p.write_bytes(p.read_bytes()[:1500]), True, id="truncated"),
            pytest.param(lambda p: p.write_bytes(b""), False, id="empty"),  # SQLite reads it as a new database
        ],
    )
    def test_damaged_index_is_rebuilt(self, folder: Path, damage: object, noted: bool) -> None:
        """Garbage, a truncated file or an empty file in place of the index: rebuilt from the files, with a note."""
        first, _ = load(folder)
        first.close()
        path = default_index_path(folder)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        damage(path)  # type: ignore[operator]
        library, read = load(folder)
        assert read == ["alpha.md", "beta.md", "gamma.txt"]
        assert library.keys() == ["alpha", "beta", "gamma"]
        assert [h.document.key for h in library.search("adapters")] == ["alpha"]
        assert library.report is not None
        assert (
            [n for n in library.report.notes if "has been rebuilt" in n] != [] if noted else library.report.notes == []
        )

    def test_index_of_another_version_is_rebuilt(self, folder: Path) -> None:
        """An index written with another schema version is replaced, and the report says why."""
        load(folder)[0].close()
        with sqlite3.connect(default_index_path(folder)) as db:
            db.execute("UPDATE meta SET value = '0' WHERE name = 'schema'")
        db.close()
        library, read = load(folder)
        assert read == ["alpha.md", "beta.md", "gamma.txt"]
        assert library.report is not None
        assert "schema 0" in library.report.notes[0] and "rebuilt" in library.report.notes[0]


class TestConcurrency:
    """Several loaders of one library at once."""

    def test_parallel_first_loads_agree(self, folder: Path) -> None:
        """Four threads indexing one new library at once all open it whole, and no chunk is stored twice."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            libraries = list(pool.map(lambda _: Library.from_dir(folder), range(4)))
        assert [lib.keys() for lib in libraries] == [["alpha", "beta", "gamma"]] * 4
        fresh = Library.from_dir(folder)
        assert fresh.report is not None and fresh.report.chunks == 3
        for library in [*libraries, fresh]:
            library.close()
