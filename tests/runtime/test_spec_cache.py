"""The validated-spec cache: a hit equals a full load; an edit (valid or not) is loaded
and checked again, so an invalid spec is refused however often the valid one ran before."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import SpecErrors
from engine.runtime import specs
from engine.runtime.settings import spec_search_path


@pytest.fixture
def spec_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OMSFLOW_CACHE_DIR", str(cache))
    out = []
    for kind in ("specs", "channels"):
        target = tmp_path / kind
        shutil.copytree(spec_search_path(kind)[0], target)
        out.append(target)
    specs._load.cache_clear()  # the in-process cache would hide the file cache
    return out[0], out[1], cache


def _fresh(specs_dir: Path, channels_dir: Path) -> specs.Bundle:
    specs._load.cache_clear()
    return specs.load_bundle(specs_dir, channels_dir)


def test_a_cache_hit_is_the_full_load(spec_dirs: tuple[Path, Path, Path]) -> None:
    specs_dir, channels_dir, cache = spec_dirs
    first = _fresh(specs_dir, channels_dir)
    kept = list(cache.glob("specs-*.pickle"))
    assert len(kept) == 1
    second = _fresh(specs_dir, channels_dir)
    assert second.machine == first.machine
    assert second.channel == first.channel
    assert second.spec_version == first.spec_version
    assert second.compiled.states == first.compiled.states
    assert list(cache.glob("specs-*.pickle")) == kept  # read, not written again


def test_an_edited_invalid_spec_is_still_refused(spec_dirs: tuple[Path, Path, Path]) -> None:
    specs_dir, channels_dir, cache = spec_dirs
    _fresh(specs_dir, channels_dir)  # the valid one is cached
    lifecycle = specs_dir / specs.MACHINE_FILE
    text = lifecycle.read_text("utf-8")
    lifecycle.write_text(text + "\nno_such_key: 1\n", "utf-8")
    with pytest.raises(SpecErrors, match="no_such_key"):
        _fresh(specs_dir, channels_dir)
    with pytest.raises(SpecErrors, match="no_such_key"):
        _fresh(specs_dir, channels_dir)  # a refused load is never cached
    assert len(list(cache.glob("specs-*.pickle"))) == 1
    lifecycle.write_text(text, "utf-8")  # the edit undone: the kept load serves again
    _fresh(specs_dir, channels_dir)


def test_an_edited_valid_spec_is_loaded_again(spec_dirs: tuple[Path, Path, Path]) -> None:
    specs_dir, channels_dir, cache = spec_dirs
    before = _fresh(specs_dir, channels_dir)
    channel = channels_dir / specs.CHANNEL_FILE
    channel.write_text(channel.read_text("utf-8") + "\n# an edit\n", "utf-8")
    after = _fresh(specs_dir, channels_dir)
    assert after.spec_version != before.spec_version
    assert len(list(cache.glob("specs-*.pickle"))) == 2


def test_a_damaged_entry_is_ignored(spec_dirs: tuple[Path, Path, Path]) -> None:
    specs_dir, channels_dir, cache = spec_dirs
    first = _fresh(specs_dir, channels_dir)
    for entry in cache.glob("specs-*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert _fresh(specs_dir, channels_dir).machine == first.machine


def test_the_cache_can_be_turned_off(
    spec_dirs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    specs_dir, channels_dir, cache = spec_dirs
    monkeypatch.setenv("OMSFLOW_CACHE_DIR", "off")
    _fresh(specs_dir, channels_dir)
    assert not cache.exists()
