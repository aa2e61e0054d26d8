"""`harness models list | export`: trained models in the cache, and taking one out of it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from harness.core.errors import reports_errors

_CACHE = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                      help="Cache holding trained/ (default $HARNESS_CACHE_DIR or ./.cache/harness).")


def _cache(cache_dir: Optional[Path]) -> Path:
    from harness.core.context import default_cache_dir
    return cache_dir or default_cache_dir()


@click.group("models")
def models() -> None:
    """Models trained by `train:` sections (cached by content hash)."""


@models.command("list")
@_CACHE
@reports_errors
def list_command(cache_dir: Optional[Path]) -> None:
    """Every trained model: key, name, kind, base, data, loss, examples, training time."""
    from harness.training import store
    found = store.entries(_cache(cache_dir))
    if not found:
        click.echo(f"no trained models in {store.root(_cache(cache_dir))}")
    for m in found:
        d = m["data"]
        click.echo(f"{m['key'][:12]}  {m['name']:<16} {m['spec']['kind']:<13} {m['loss']:<6} "
                   f"base={m['base']['name']}  data={d['dataset']}/{d['split']} "
                   f"({d['n_examples']} examples)  {m['wall_s']:.0f} s  {m['created_utc']}")


@models.command("export")
@click.argument("key")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@_CACHE
@reports_errors
def export_command(key: str, dest: Path, cache_dir: Optional[Path]) -> None:
    """Copy the trained model KEY (a unique prefix) to DEST as a plain model folder
    (two_tower: DEST/question and DEST/context)."""
    from harness.training import store
    click.echo(str(store.export(_cache(cache_dir), key, dest)))
