"""The training stage: before planning, every trained model the pipelines reference is reused
from the cache or trained, and the references are replaced by the trained folders.

All leakage checks run first, for every model, so a refused config does no work at all.
"""
from __future__ import annotations

import logging
from pathlib import Path

from harness.config import Config
from harness.core.context import RunContext
from harness.core.errors import HarnessError
from harness.core.models import model_fingerprint, resolve_model
from harness.training import data, store
from harness.training.spec import used, with_models
from harness.training.trainers import TRAINERS

log = logging.getLogger(__name__)


def run_training(config: Config, evaluated, ctx: RunContext) -> tuple[Config, dict[str, store.Trained]]:
    """(the config with trained folders in place of references, {NAME: Trained})."""
    raw = config.model_dump(mode="json")
    names = used(raw)
    if not names:
        return config, {}
    import importlib.util
    missing = [m for m in ("accelerate", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise HarnessError(f"train: needs {', '.join(missing)}: pip install "
                           "'retrieval-harness[finetune]'")
    splits = {}
    for name in names:  # the guard, before any work
        spec = config.train[name]
        splits[name] = data.load(name, spec, config)
        data.check_leakage(name, spec, config, splits[name], evaluated)
    trained = {name: obtain(name, config.train[name], splits[name], ctx) for name in names}
    resolved = Config.model_validate(with_models(raw, {n: t.target() for n, t in trained.items()}))
    return resolved, trained


def obtain(name: str, spec, split, ctx: RunContext) -> store.Trained:
    base = resolve_model(spec.base)
    key = store.training_key(spec, model_fingerprint(base), data.data_key(spec, split), ctx.device)
    folder = store.root(ctx.cache_dir) / key
    metadata = store.load(ctx.cache_dir, key)
    if metadata is not None:
        log.info("trained model %s: reusing %s (nothing retrained)", name, folder)
        return store.Trained(name, key, folder, metadata, reused=True)

    def build(work: Path) -> dict:
        examples = data.examples(spec, split, ctx)
        log.info("training %s (%s, %s loss) on %d examples from %s/%s", name, spec.kind,
                 spec.resolved_loss, len(examples.queries), split.name, split.split)
        record = TRAINERS[spec.kind](spec, examples, work, work / "checkpoints", ctx.device,
                                     ctx.progress)
        return {"name": name, "spec": spec.model_dump(mode="json"), "loss": spec.resolved_loss,
                "base": {"name": spec.base, "fingerprint": model_fingerprint(base)},
                "data": {"dataset": split.name, "split": split.split,
                         "checksums": split.checksums, "key": examples.key,
                         "n_examples": len(examples.queries),
                         "n_queries": len(set(examples.qids)),
                         "negatives_per_example": min(map(len, examples.negatives), default=0)},
                "device": ctx.device, "threads": ctx.threads,
                "versions": store.library_versions(), **record}

    folder = store.save(ctx.cache_dir, key, build)
    metadata = store.load(ctx.cache_dir, key)
    log.info("trained model %s: %.0f s, %.1f samples/s -> %s", name, metadata["wall_s"],
             metadata["samples_per_s"], folder)
    return store.Trained(name, key, folder, metadata, reused=False)


def timing_rows(trained: dict[str, store.Trained], models: dict) -> list[tuple[str, str, str, float]]:
    """(stage, mode, stat, value) rows for the trained models a pipeline loaded (`models`: its
    stages' model records, whose names are the trained folders)."""
    loaded = {m["name"] for stage in models.values() for m in stage.values()}
    rows = []
    for t in trained.values():
        target = t.target()
        if not loaded & set(target.values() if isinstance(target, dict) else [target]):
            continue
        stage = f"train:{t.name}"
        m = t.metadata
        rows += [(stage, "build", "wall_s", m["wall_s"]),
                 (stage, "build", "samples_per_s", m["samples_per_s"]),
                 (stage, "build", "n_examples", m["data"]["n_examples"]),
                 (stage, "build", "reused", float(t.reused))]
        rows += [(stage, "build", f"loss@{step}", loss) for step, loss in m["loss_curve"]]
    return rows
