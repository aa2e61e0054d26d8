"""Inference backends of the transformer stages (dense, MaxSim's token encoder, cross-encoder,
DPR-style towers).

- `torch`: the model as loaded, float32 (the default, and the reference the others are judged by);
- `torch-fp16`, `torch-bf16`: the same model cast to half / bfloat16 precision, CUDA only;
- `onnx`: ONNX Runtime, float32, from an ONNX export of the local weights;
- `onnx-int8`: that export with dynamic int8 quantisation (weights int8, activations quantised
  per batch; no calibration data), with the preset the CPU's instruction set fits best.

Exports use sentence-transformers' own ONNX support (optimum + onnxruntime; plain encoders:
optimum's feature-extraction export), offline, from the model folder the stage would load. They are cached like embeddings, by content: the model's
fingerprint, the backend, the quantisation preset and the versions of every library involved, in
`<cache>/backends/<key>/`, written to a temporary folder and renamed into place when complete.
What an export cost is recorded beside it, so a cache hit reports the build time of the miss.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from harness.core.errors import ConfigError, PluginError

Backend = Literal["torch", "torch-fp16", "torch-bf16", "onnx", "onnx-int8"]
DEFAULT_BACKEND = "torch"
ONNX_BACKENDS = ("onnx", "onnx-int8")
TORCH_DTYPES = {"torch-fp16": "float16", "torch-bf16": "bfloat16"}
ONNX_INSTALL_HINT = "pip install 'retrieval-harness[onnx]'  (onnxruntime, optimum, optimum-onnx)"
BACKEND_DESCRIPTION = ("inference backend: torch (float32), torch-fp16 / torch-bf16 (CUDA only), "
                       "onnx (ONNX Runtime float32), onnx-int8 (dynamic int8 quantisation)")
# The libraries whose versions can change an export's bytes or numbers.
_EXPORT_LIBRARIES = ("onnx", "onnxruntime", "optimum", "optimum-onnx", "transformers", "torch",
                     "sentence-transformers")
_DONE = "export.json"  # written last: a folder without it is incomplete


def check_backend(backend: str, device: str, where: str) -> None:
    """Fail before loading anything: half precision needs CUDA; ONNX needs onnxruntime."""
    if backend in TORCH_DTYPES and not device.startswith("cuda"):
        raise ConfigError(f"{where}: backend {backend!r} needs a CUDA device (half precision is "
                          f"slow or unsupported on CPU); the run's device is {device!r}. Use "
                          "backend torch, onnx or onnx-int8 on CPU")
    if backend in ONNX_BACKENDS:
        missing = [m for m in ("onnxruntime", "optimum.onnxruntime") if not _importable(m)]
        if missing:
            raise PluginError(f"{where}: backend {backend!r} needs {', '.join(missing)}, which is "
                              f"not installed; install with: {ONNX_INSTALL_HINT}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def quantization_preset() -> str:
    """sentence-transformers' dynamic-quantisation preset for this CPU (VNNI int8 dot products
    when the CPU has them)."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    for preset, flag in (("avx512_vnni", "avx512_vnni"), ("avx512", "avx512f")):
        if flag in flags:
            return preset
    return "avx2"


def library_versions() -> dict[str, str]:
    out = {}
    for name in _EXPORT_LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def export_description(kind: str, fingerprint: str, backend: str) -> dict:
    """Everything an export depends on; its hash names the cache folder."""
    return {"kind": kind, "model_hash": fingerprint, "backend": backend,
            "quantization": quantization_preset() if backend == "onnx-int8" else None,
            "versions": library_versions()}


def _torch_loader(kind: str):
    """kind -> loader(path, device=..., **kwargs) of the torch model."""
    if kind == "feature-extraction":  # a plain Hugging Face encoder (a DPR-style tower)
        from transformers import AutoModel
        return lambda path, device: AutoModel.from_pretrained(path).to(device).eval()
    from sentence_transformers import CrossEncoder, SentenceTransformer
    return {"sentence-transformer": SentenceTransformer, "cross-encoder": CrossEncoder}[kind]


def _drop_info(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


@contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantiser logs a line per tensor at INFO through the root logger itself:
    a filter on the root logger drops those records only (its children's records skip it)."""
    root = logging.getLogger()
    root.addFilter(_drop_info)
    try:
        yield
    finally:
        root.removeFilter(_drop_info)


def _export(kind: str, model_path: str, backend: str, folder: Path) -> str:
    """Exports into `folder`; returns the ONNX file to load, relative to it."""
    preset = quantization_preset()
    if kind == "feature-extraction":
        from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
        from transformers import AutoTokenizer
        model = ORTModelForFeatureExtraction.from_pretrained(model_path, export=True)
        model.save_pretrained(str(folder))
        AutoTokenizer.from_pretrained(model_path).save_pretrained(str(folder))
        if backend == "onnx":
            return "model.onnx"
        config = getattr(AutoQuantizationConfig, preset)(is_static=False)
        with _quiet_root_logger():
            ORTQuantizer.from_pretrained(model).quantize(config, str(folder),
                                                         file_suffix=f"qint8_{preset}")
        return f"model_qint8_{preset}.onnx"
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model
    model = _torch_loader(kind)(model_path, backend="onnx", device="cpu")
    model.save_pretrained(str(folder))
    if backend == "onnx":
        return "onnx/model.onnx"
    with _quiet_root_logger():
        export_dynamic_quantized_onnx_model(model, preset, str(folder))
    return f"onnx/model_qint8_{preset}.onnx"


def _onnx_load(kind: str, folder: Path, session: dict, **loader_kwargs):
    if kind == "feature-extraction":
        from optimum.onnxruntime import ORTModelForFeatureExtraction
        return ORTModelForFeatureExtraction.from_pretrained(str(folder), **session)
    return _torch_loader(kind)(str(folder), backend="onnx", device="cpu", model_kwargs=session,
                               **loader_kwargs)


def onnx_export(kind: str, model_path: str, fingerprint: str, backend: str,
                cache_dir: Path) -> tuple[Path, dict]:
    """The cached export's folder and its record ({key, file, build_wall_s, cache_hit, ...}),
    exporting on a miss."""
    from harness.core.hashing import stable_hash
    from harness.evaluation.timing import time_call
    description = export_description(kind, fingerprint, backend)
    key = stable_hash(description)
    folder = Path(cache_dir) / "backends" / key
    done = folder / _DONE
    if done.exists():
        return folder, {**json.loads(done.read_text()), "cache_hit": 1.0}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", dir=folder.parent))
    try:
        file_name, seconds = time_call(lambda: _export(kind, model_path, backend, tmp))
        record = {"key": key, "file": file_name, "build_wall_s": seconds, **description}
        (tmp / _DONE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished the same export first: use theirs
            if not done.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, {**json.loads(done.read_text()), "cache_hit": 0.0}


def session_kwargs(device: str, threads: int, file_name: str) -> dict:
    """`model_kwargs` for an ONNX load: the file, the provider, and the run's thread setting as
    ONNX Runtime's intra-op threads (one inter-op thread: the graph runs node by node)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(f"device {device!r}: this onnxruntime has no CUDA provider "
                              "(install onnxruntime-gpu) — use backend torch on CUDA")
        provider = "CUDAExecutionProvider"
    else:
        provider = "CPUExecutionProvider"
    return {"file_name": file_name, "provider": provider, "session_options": options}


def cast_torch(model, backend: str):
    """A torch model in the precision of `backend` (unchanged for torch)."""
    if backend in TORCH_DTYPES:
        import torch
        model.to(getattr(torch, TORCH_DTYPES[backend]))
    return model


def load(kind: str, model_path: str, backend: str, device: str, threads: int, cache_dir: Path,
         where: str, **loader_kwargs):
    """(the loaded model, stats recording the backend) for `kind` "sentence-transformer",
    "cross-encoder" (sentence-transformers models) or "feature-extraction" (a Hugging Face
    encoder whose `last_hidden_state` the caller pools)."""
    check_backend(backend, device, where)
    if backend not in ONNX_BACKENDS:
        model = _torch_loader(kind)(model_path, device=device, **loader_kwargs)
        return cast_torch(model, backend), {"backend": backend}
    from harness.core.models import model_fingerprint
    folder, record = onnx_export(kind, model_path, model_fingerprint(model_path), backend,
                                 cache_dir)
    model = _onnx_load(kind, folder, session_kwargs(device, threads, record["file"]),
                       **loader_kwargs)
    return model, {"backend": backend, "backend_key": record["key"],
                   "backend_quantization": record["quantization"],
                   "backend_build_wall_s": record["build_wall_s"],
                   "backend_cache_hit": record["cache_hit"], "onnx_intra_op_threads": threads}
