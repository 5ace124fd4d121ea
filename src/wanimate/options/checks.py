"""Validation of settings instances: types, choices, bounds and each option's own rule."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

from wanimate.errors import WanimateError
from wanimate.options.fields import Field, fields_of, strip_optional


def _type_problem(hint: Any, value: Any) -> str | None:
    """Why ``value`` is not of type ``hint`` (the simple types settings use), or None."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if any(_type_problem(arg, value) is None for arg in options):
            return None
        return "must be " + " or ".join(_type_name(arg) for arg in options)
    if origin is Literal:
        return None if value in typing.get_args(hint) else _choices_text(typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple | list):
            return f"must be {_type_name(hint)}"
        if len(args) == 2 and args[1] is Ellipsis:
            return next((p for p in (_type_problem(args[0], v) for v in value) if p), None)
        if len(value) != len(args):
            return f"must be {_type_name(hint)}"
        return next((p for p in (_type_problem(a, v) for a, v in zip(args, value, strict=True)) if p), None)
    if hint is type(None):
        return None if value is None else "must be unset"
    if hint is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if hint is float:
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "must be a number"
    if hint is str:
        return None if isinstance(value, str) else "must be text"
    if hint is Path:
        return None if isinstance(value, str | Path) else "must be a path"
    return None


def _type_name(hint: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", type(None): "unset"}
    if typing.get_origin(hint) is tuple:
        return "a list of " + ", ".join(_type_name(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _choices_text(choices: tuple[Any, ...]) -> str:
    shown = [str(c) for c in choices]
    if len(shown) == 2:
        return f"must be {shown[0]} or {shown[1]}"
    return f"must be one of {', '.join(shown)}"


def problem(f: Field, value: Any) -> str | None:
    """What is wrong with ``value`` for option ``f``, or None."""
    info = f.info
    wrong = _type_problem(f.hint, value)
    if wrong is not None:
        return wrong
    if value is None:
        return None
    if info.choices is not None and value not in info.choices:
        return _choices_text(info.choices)
    if isinstance(value, int | float) and not isinstance(value, bool):
        low = f"at least {info.min:g}" if info.min is not None else None
        low = f"above {info.above:g}" if info.above is not None else low
        high = f"at most {info.max:g}" if info.max is not None else None
        out_of_range = (
            (info.min is not None and value < info.min)
            or (info.above is not None and value <= info.above)
            or (info.max is not None and value > info.max)
        )
        if out_of_range:
            return "must be " + " and ".join(p for p in (low, high) if p)
    if info.max_length is not None and isinstance(value, str) and len(value) > info.max_length:
        return f"must be at most {info.max_length} characters"
    if info.rule is not None:
        return info.rule(value)
    return None


def _normalized(f: Field, value: Any) -> Any:
    """Python callers may pass a ``Path`` for a text option and a list for a tuple one."""
    base = strip_optional(f.hint)
    if isinstance(value, Path) and base is str:
        return str(value)
    if isinstance(value, list) and typing.get_origin(base) is tuple:
        return tuple(value)
    return value


def check(obj: Any) -> None:
    """Validate every option of ``obj``: one :class:`WanimateError` line naming the first bad flag.

    Called from the settings' ``__post_init__`` (frozen dataclasses), so it also normalizes a
    ``Path`` given for a text option and a list given for a tuple option.
    """
    for f in fields_of(type(obj)):
        value = _normalized(f, getattr(obj, f.name))
        object.__setattr__(obj, f.name, value)
        wrong = problem(f, value)
        if wrong is not None:
            raise WanimateError(f"{f.flag} {wrong}, not {_shown(f, value)}")


def _shown(f: Field, value: Any) -> str:
    if f.info.show is not None:
        try:
            return repr(f.info.show(value))
        except (TypeError, ValueError, IndexError):
            return repr(value)
    return repr(value)
