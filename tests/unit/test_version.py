"""Code versions (pipeline.version): an edit of the source changes the version a run or dataset records."""

from __future__ import annotations

import re

import pytest

from pipeline import version


@pytest.fixture
def source_tree(tmp_path, monkeypatch):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(version, "SOURCE_ROOT", tmp_path)
    version.source_digest.cache_clear()
    yield tmp_path / "pkg"
    version.source_digest.cache_clear()


def test_an_edit_a_new_file_or_a_rename_changes_the_digest(source_tree):
    seen = {version.source_digest("pkg")}
    (source_tree / "a.py").write_text("x = 3\n")
    version.source_digest.cache_clear()
    seen.add(version.source_digest("pkg"))
    (source_tree / "c.py").write_text("")
    version.source_digest.cache_clear()
    seen.add(version.source_digest("pkg"))
    (source_tree / "c.py").rename(source_tree / "d.py")
    version.source_digest.cache_clear()
    seen.add(version.source_digest("pkg"))
    assert len(seen) == 4


def test_compiled_and_other_files_do_not_count(source_tree):
    before = version.source_digest("pkg")
    (source_tree / "__pycache__").mkdir()
    (source_tree / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (source_tree / "notes.txt").write_text("n")
    version.source_digest.cache_clear()
    assert version.source_digest("pkg") == before


def test_versions_name_the_package_and_the_source():
    assert re.fullmatch(r".+\+src\.[0-9a-f]{12}", version.pipeline_version())
    assert version.pipeline_version() == version.code_version("pipeline")
    assert version.code_version("gaiasim", "pipeline") != version.pipeline_version()
