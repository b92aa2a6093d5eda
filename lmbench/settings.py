"""`--set key=value` overrides, parsed and type-checked against a frozen dataclass's defaults."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

from .errors import UsageError


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """['k=0.5', 'vocab.min_count=2'] -> {'k': '0.5', 'vocab.min_count': '2'}."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"malformed --set {item!r}: write key=value, e.g. --set k=0.5")
        if key in out:
            raise UsageError(f"--set {key} given twice")
        out[key] = value
    return out


def _candidate_types(annotation) -> list[type]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [t for t in typing.get_args(annotation) if t is not type(None)]
    return [annotation]


def coerce(text: str, annotation, key: str):
    """Turn `text` into the field's type; 'none' is accepted where the field is optional."""
    optional = type(None) in typing.get_args(annotation)
    if optional and text.lower() in ("none", "null"):
        return None
    for kind in _candidate_types(annotation):
        if kind is bool:
            lowered = text.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
        elif kind is int:
            try:
                return int(text)
            except ValueError:
                pass
        elif kind is float:
            try:
                value = float(text)
            except ValueError:
                continue
            if not math.isfinite(value):
                raise UsageError(f"--set {key}={text}: expected a finite number")
            return value
        elif kind is str:
            return text
    names = " or ".join(getattr(t, "__name__", str(t)) for t in _candidate_types(annotation))
    raise UsageError(f"--set {key}={text}: expected {names}{' or none' if optional else ''}")


def apply_overrides(config, overrides: dict[str, str], prefix: str = "", fixed: dict | None = None):
    """Return `config` with `overrides` applied; keys must be fields of its dataclass.

    `fixed` holds fields a spec name already decides (`kn5` means order 5): an override that
    contradicts one is refused.
    """
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for key, text in overrides.items():
        if key not in names:
            valid = ", ".join(prefix + n for n in names) or "none"
            raise UsageError(f"unknown setting {prefix}{key!r}; valid settings here: {valid}")
        value = coerce(text, hints[key], prefix + key)
        if fixed and key in fixed and value != fixed[key]:
            raise UsageError(
                f"--set {prefix}{key}={text} contradicts the model name, which fixes {key}={fixed[key]}"
            )
        changes[key] = value
    try:
        return dataclasses.replace(config, **changes)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise UsageError(str(exc)) from None
