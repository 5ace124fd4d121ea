"""Settings fields that are options: their metadata, and reading them back from a settings class."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wanimate.errors import WanimateError

META_KEY = "wanimate.option"


@dataclass(frozen=True)
class Option:
    """What a settings field says about itself (see :func:`option`)."""

    help: str
    flag: str | None = None
    negative: str | None = None
    min: float | None = None
    above: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: tuple[Any, ...] | None = None
    parse: Callable[[str], Any] | None = None
    show: Callable[[Any], str] | None = None
    rule: Callable[[Any], str | None] | None = None
    pixels: bool = True
    serve: bool = False
    cli: bool = True


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    negative: str | None = None,
    min: float | None = None,
    above: float | None = None,
    max: float | None = None,
    max_length: int | None = None,
    choices: tuple[Any, ...] | None = None,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] | None = None,
    rule: Callable[[Any], str | None] | None = None,
    pixels: bool = True,
    serve: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field that is an option.

    ``flag`` defaults to ``--field-name``; a bool gets ``--name/--no-name`` unless ``negative=""``
    (a one-way switch such as ``--compile``). ``min``/``max`` are inclusive, ``above`` is an
    exclusive lower bound. ``parse`` turns the CLI text into the value (the CLI then takes text,
    shown with ``show``); ``rule`` returns what is wrong with a value (``"must be 4n+1"``) or None.
    ``pixels``: the value changes the result, so it is part of the resume/cache key. ``serve``:
    clients of ``wanimate serve`` may set it. ``cli=False`` keeps it out of the command line.
    """
    info = Option(
        help=help,
        flag=flag,
        negative=negative,
        min=min,
        above=above,
        max=max,
        max_length=max_length,
        choices=choices,
        parse=parse,
        show=show,
        rule=rule,
        pixels=pixels,
        serve=serve,
        cli=cli,
    )
    return dataclasses.field(default=default, metadata={META_KEY: info})


def redefault(cls: type, name: str, default: Any) -> Any:
    """The option ``name`` of ``cls`` with another default, for a subclass (MultiAnimate's 50 steps).

    Everything else (help, flag, bounds, whether it changes pixels or is served) stays the parent's,
    so the option is still defined once.
    """
    parent = next(f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=default, metadata=parent.metadata)


@dataclass(frozen=True)
class Field:
    """One option of a settings class: its name, resolved type, default and metadata."""

    name: str
    hint: Any
    default: Any
    info: Option

    @property
    def flag(self) -> str:
        return self.info.flag or "--" + self.name.replace("_", "-")


def is_settings(cls: Any) -> bool:
    return isinstance(cls, type) and dataclasses.is_dataclass(cls)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def fields_of(cls: type) -> list[Field]:
    """The option fields of one settings class (nested settings are not included)."""
    hints = _hints(cls)
    return [
        Field(f.name, hints[f.name], _default(f), f.metadata[META_KEY])
        for f in dataclasses.fields(cls)
        if META_KEY in f.metadata
    ]


def nested_of(cls: type) -> dict[str, type]:
    """Fields of ``cls`` that are themselves settings classes (``RunSettings.generate``)."""
    hints = _hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if is_settings(hints[f.name])}


@functools.cache
def flat_options(cls: type) -> dict[str, tuple[tuple[str, ...], Field]]:
    """Every option of ``cls`` and its nested settings by name, with the path to the object holding it.

    A name defined twice is a definition error: rename one of the fields.
    """
    out: dict[str, tuple[tuple[str, ...], Field]] = {f.name: ((), f) for f in fields_of(cls)}
    for attr, sub in nested_of(cls).items():
        for name, (path, f) in flat_options(sub).items():
            if name in out:
                raise TypeError(f"option {name!r} is defined by two settings of {cls.__name__}; rename one")
            out[name] = ((attr, *path), f)
    return out


def build(cls: type, values: dict[str, Any], base: Any = None) -> Any:
    """An instance of ``cls`` from flat option values, on top of ``base`` (default: the defaults).

    Unknown names are a :class:`WanimateError` listing the known ones.
    """
    known = flat_options(cls)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise WanimateError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {cls.__name__}; "
            f"choose from {', '.join(sorted(known))}"
        )
    own = {k: v for k, v in values.items() if not known[k][0]}
    changes: dict[str, Any] = dict(own)
    for attr, sub in nested_of(cls).items():
        inner = {k: v for k, v in values.items() if known[k][0][:1] == (attr,)}
        current = getattr(base, attr) if base is not None else None
        if inner or current is not None:
            changes[attr] = build(sub, inner, current) if inner else current
    if base is None:
        return cls(**changes)
    return dataclasses.replace(base, **changes) if changes else base


def flat_values(obj: Any) -> dict[str, Any]:
    """``{name: value}`` of every option of ``obj`` and its nested settings."""
    return {name: _get(obj, path, name) for name, (path, _) in flat_options(type(obj)).items()}


def _get(obj: Any, path: tuple[str, ...], name: str) -> Any:
    for attr in path:
        obj = getattr(obj, attr)
    return getattr(obj, name)


def pixel_values(obj: Any) -> dict[str, Any]:
    """The options of ``obj`` that change the result (``pixels=True``): what a resume key hashes."""
    return {f.name: getattr(obj, f.name) for f in fields_of(type(obj)) if f.info.pixels}


def strip_optional(hint: Any) -> Any:
    """``X`` for ``X | None``; anything else unchanged."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return hint
