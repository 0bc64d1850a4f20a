"""The build cache: one build per recipe and machine, checked before reuse, never half-written."""

import dataclasses
from pathlib import Path

import pytest

from helpers.data import build_cache, tiny_teacher
from helpers.profiles import TinyQwen3


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(build_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


class Builder:
    """Writes a weights file and a nested config, and counts its calls."""

    def __init__(self, payload: bytes = b"weights"):
        self.payload, self.calls = payload, 0

    def __call__(self, out: Path) -> None:
        self.calls += 1
        (out / "nested").mkdir(parents=True)
        (out / "model.safetensors").write_bytes(self.payload)
        (out / "nested" / "config.json").write_text('{"layers": 6}')


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_same_recipe_is_built_once_and_then_copied(root, tmp_path):
    build = Builder()
    build_cache.reuse_or_build({"steps": 100}, build, tmp_path / "first", what="teacher")
    build_cache.reuse_or_build({"steps": 100}, build, tmp_path / "second", what="teacher")
    assert build.calls == 1
    assert contents(tmp_path / "second") == contents(tmp_path / "first") == {
        "model.safetensors": b"weights", "nested/config.json": b'{"layers": 6}'
    }  # fmt: skip
    assert [p.name for p in root.iterdir()] == [build_cache.recipe_key({"steps": 100})]


def test_another_recipe_is_built_again(root, tmp_path):
    build = Builder()
    build_cache.reuse_or_build({"steps": 100}, build, tmp_path / "first", what="teacher")
    build_cache.reuse_or_build({"steps": 60}, build, tmp_path / "second", what="teacher")
    assert build.calls == 2 and len(list(root.iterdir())) == 2


def test_a_damaged_entry_is_built_again_and_repaired(root, tmp_path):
    build = Builder()
    build_cache.reuse_or_build({"steps": 100}, build, tmp_path / "first", what="teacher")
    entry = root / build_cache.recipe_key({"steps": 100})
    (entry / "model.safetensors").write_bytes(b"weigh")  # a truncated copy
    build_cache.reuse_or_build({"steps": 100}, build, tmp_path / "second", what="teacher")
    assert build.calls == 2 and (tmp_path / "second" / "model.safetensors").read_bytes() == b"weights"
    build_cache.reuse_or_build({"steps": 100}, build, tmp_path / "third", what="teacher")
    assert build.calls == 2  # the entry was replaced by an intact one


def test_a_failed_build_leaves_nothing_in_the_cache(root, tmp_path):
    def failing(out: Path) -> None:
        (out).mkdir()
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        build_cache.reuse_or_build({"steps": 100}, failing, tmp_path / "out", what="teacher")
    assert not root.exists() or not any(root.iterdir())


def test_rebuild_trains_again_and_replaces_the_entry(root, tmp_path):
    build_cache.reuse_or_build({"steps": 100}, Builder(b"old"), tmp_path / "first", what="teacher")
    build_cache.reuse_or_build({"steps": 100}, Builder(b"new"), tmp_path / "second", what="teacher", rebuild=True)
    later = Builder(b"unused")
    build_cache.reuse_or_build({"steps": 100}, later, tmp_path / "third", what="teacher")
    assert later.calls == 0 and (tmp_path / "third" / "model.safetensors").read_bytes() == b"new"
    assert len(list(root.iterdir())) == 1  # no staging folder left behind


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv(build_cache.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    build = Builder()
    for name in ("first", "second"):
        build_cache.reuse_or_build({"steps": 100}, build, tmp_path / name, what="teacher")
    assert build.calls == 2 and not (tmp_path / "xdg").exists()


def test_the_tiny_teachers_recipe_names_what_the_training_depends_on(tmp_path):
    tokenizer, corpus = tmp_path / "tokenizer", tmp_path / "corpus"
    tokenizer.mkdir(), corpus.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    for split in ("train", "validation", "test"):
        (corpus / f"{split}.txt").write_text(f" = {split} = \n")
    spec = TinyQwen3()

    def key(**changes) -> str:
        return build_cache.recipe_key(tiny_teacher.recipe(dataclasses.replace(spec, **changes), tokenizer, corpus))

    first = key()
    assert key() == first
    assert key(train_steps=60) != first and key(seed=1) != first
    (corpus / "train.txt").write_text(" = another article = \n")
    assert key() != first
