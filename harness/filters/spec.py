"""A pipeline's `filter:` over document metadata, one condition per field, all must hold:

    filter:
      source: {same_as_query: true}     # the query's own metadata value
      section: {in: [ec2_faqs, s3_faqs]}
      year: {range: {gte: 2000, lt: 2010}}
      lang: en                          # shorthand for {eq: en}

`normalize` turns a config's filter into one canonical form (what node keys hash), or a
ConfigError naming the field path.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from harness.core.errors import ConfigError

OPS = ("eq", "in", "range", "same_as_query")
RANGE_BOUNDS = ("gt", "gte", "lt", "lte")
Scalar = (str, int, float, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def value_type(value: Any) -> str:
    """The type a filter compares by: string, number or boolean."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if is_number(value) else "string" if isinstance(value, str) else \
        type(value).__name__


def _condition(raw: Any, where: str) -> dict:
    if not isinstance(raw, Mapping):
        raw = {"eq": raw}
    if len(raw) != 1 or next(iter(raw)) not in OPS:
        raise ConfigError(f"{where}: give exactly one of {', '.join(OPS)} (or a plain value for "
                          f"eq), got {dict(raw)!r}")
    (op, value), = raw.items()
    if op == "eq" and (not isinstance(value, Scalar) or value_type(value) not in
                       ("string", "number", "boolean")):
        raise ConfigError(f"{where}.eq: a string, number or boolean, got {value!r}")
    if op == "in":
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where}.in: a non-empty list of values, got {value!r}")
        kinds = {value_type(v) for v in value}
        if len(kinds) != 1 or not kinds <= {"string", "number", "boolean"}:
            raise ConfigError(f"{where}.in: values of one type (string, number or boolean), "
                              f"got {value!r}")
        value = sorted(set(value), key=repr)
    if op == "range":
        if not isinstance(value, Mapping) or not value or set(value) - set(RANGE_BOUNDS):
            raise ConfigError(f"{where}.range: a mapping of {', '.join(RANGE_BOUNDS)}, got "
                              f"{value!r}")
        bad = {b: v for b, v in value.items() if not is_number(v)}
        if bad:
            raise ConfigError(f"{where}.range: bounds must be numbers, got {bad!r}")
        value = {b: value[b] for b in RANGE_BOUNDS if b in value}
    if op == "same_as_query" and value is not True:
        raise ConfigError(f"{where}.same_as_query: write `same_as_query: true`, got {value!r}")
    return {op: value}


def normalize(raw: Any, where: str) -> dict:
    """{field: {op: value}} sorted by field, or a ConfigError naming `where`.<field>."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: a mapping of metadata field -> condition, got {raw!r}")
    out = {}
    for field in sorted(raw):
        if not isinstance(field, str) or not field:
            raise ConfigError(f"{where}: field names are non-empty strings, got {field!r}")
        out[field] = _condition(raw[field], f"{where}.{field}")
    return out


def matches(value: Any, op: str, target: Any) -> bool:
    """Whether one document's metadata `value` satisfies `op` with `target` (the constant, or
    the query's value for same_as_query)."""
    if op in ("eq", "same_as_query"):
        return value == target and value_type(value) == value_type(target)
    if op == "in":
        return any(value == t and value_type(value) == value_type(t) for t in target)
    return all({"gt": value > b, "gte": value >= b, "lt": value < b, "lte": value <= b}[name]
               for name, b in target.items())
