"""Jinja2 rendering of the report templates (autoescaped; inline CSS/JS/SVG only)."""
from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness.reports import formatting


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("harness.reports", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["repr"] = repr  # full-precision numbers in data-* attributes
    env.globals.update(fmt=formatting, zip=zip)
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
