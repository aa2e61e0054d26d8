"""`harness datasets list | download | info`: see, fetch and validate datasets."""
from __future__ import annotations

from typing import Optional

import click

from harness.core.errors import reports_errors
from harness.datasets import list_datasets, load_dataset
from harness.datasets.download import download
from harness.datasets.ir_datasets_source import list_note



@click.group("datasets")
def datasets() -> None:
    """Bundled, downloaded and downloadable datasets."""


@datasets.command("list")
def list_command() -> None:
    """Every dataset usable by name, and where it is (or would come from); then ir_datasets ids."""
    entries = list_datasets()
    width = max(len(e.name) for e in entries)
    for entry in entries:
        click.echo(f"{entry.name:<{width}}  {entry.status:<12}  {entry.location}")
    click.echo(f"\n{list_note()}")


@datasets.command("download")
@click.argument("name")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where to put it (default: $HARNESS_DATA_DIR or ~/.cache/retrieval-harness/datasets).")
@reports_errors
def download_command(name: str, cache_dir: Optional[str]) -> None:
    """Download the public BEIR dataset NAME, verify its checksum and unpack it into the cache."""
    folder = download(name, cache_dir=cache_dir)
    click.echo(str(folder))


@datasets.command("info")
@click.argument("name_or_path")
@click.option("--split", default="test", show_default=True, help="Which qrels file to load.")
@reports_errors
def info_command(name_or_path: str, split: str) -> None:
    """Load and validate NAME_OR_PATH; print its counts, checksums and warnings."""
    ds = load_dataset(name_or_path, split=split)
    click.echo(f"dataset: {ds.name}")
    click.echo(f"split: {ds.split}")
    for key, value in ds.stats.items():
        click.echo(f"{key}: {value}")
    click.echo("checksums (sha256 of decompressed content):")
    for relative, digest in ds.checksums.items():
        click.echo(f"  {digest}  {relative}")
    click.echo(f"warnings: {len(ds.warnings)}")
    for message in ds.warnings:
        click.echo(f"  {message}")
