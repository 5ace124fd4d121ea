"""Typer command parameters from settings classes, and settings instances from what typer parsed."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any

from wanimate.options.fields import Field, Option, build, flat_options, is_settings, strip_optional


def _cli_parameter(f: Field, default: Any) -> inspect.Parameter:
    import typer

    info = f.info
    hint = f.hint
    if info.parse is not None:
        annotation: Any = str
        shown = info.show(default) if info.show is not None else default
        decls = [f.flag]
        return inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(shown, *decls, help=info.help),
            annotation=annotation,
        )
    base = strip_optional(hint)
    optional = base is not hint
    if base is bool:
        negative = info.negative if info.negative is not None else "--no-" + f.flag.removeprefix("--")
        decls = [f"{f.flag}/{negative}"] if negative else [f.flag]
        annotation = bool | None if optional else bool
    elif typing.get_origin(base) is tuple:
        decls = [f.flag]
        annotation = list[typing.get_args(base)[0]]
        default = list(default) if default is not None else None
    else:
        decls = [f.flag]
        annotation = base | None if optional else base
    return inspect.Parameter(
        f.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(default, *decls, help=_help_with_choices(info)),
        annotation=annotation,
    )


def _help_with_choices(info: Option) -> str:
    if info.choices is None or any(str(c) in info.help for c in info.choices):
        return info.help
    return f"{info.help} ({', '.join(str(c) for c in info.choices)})"


def cli_fields(cls: type, exclude: tuple[str, ...] = ()) -> list[Field]:
    """The options of ``cls`` (nested included) that appear on the command line."""
    return [f for name, (_, f) in flat_options(cls).items() if f.info.cli and name not in exclude]


def from_cli(cls: type, values: dict[str, Any], base: Any = None) -> Any:
    """A settings instance from the values typer parsed (``parse`` applied to text options)."""
    options = flat_options(cls)
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        f = options[name][1]
        if f.info.parse is not None and isinstance(value, str):
            value = f.info.parse(value)
        elif typing.get_origin(strip_optional(f.hint)) is tuple and isinstance(value, list):
            value = tuple(value)
        parsed[name] = value
    return build(cls, parsed, base)


_CONTEXT = "wanimate_cli_context"  # the typer.Context the wrapper asks typer for


def _given(ctx: Any, names: list[str]) -> set[str]:
    """The options the user typed (not left at their defaults), from the command's context."""
    if ctx is None:
        return set(names)
    sources = {n: ctx.get_parameter_source(n) for n in names}
    return {n for n, source in sources.items() if getattr(source, "name", "") not in ("DEFAULT", "DEFAULT_MAP")}


def expand(
    defaults: dict[str, Any] | None = None,
    exclude: tuple[str, ...] = (),
    choose: Callable[[dict[str, Any]], type] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: each parameter of the command annotated with a settings class becomes its options.

    ``def generate_command(materials: Path = typer.Argument(...), settings: GenerateSettings = None)``
    is called by typer with one keyword per option; the wrapper rebuilds ``settings`` from them (parse,
    then validate) before calling the body, from the options the user typed (plus ``defaults``), so
    the rest keep the class's own defaults. ``defaults`` overrides option defaults for this command
    (``bench generate`` runs 4 steps in fp32); ``exclude`` leaves options out (they keep their defaults).
    ``choose(arguments)`` picks the settings class at call time among subclasses with the same
    options (``generate --model multianimate`` builds ``MultiAnimateSettings``, whose defaults differ),
    or returns an instance to build on (``run`` with a cast: a ``RunSettings`` whose generation
    settings are MultiAnimate's); a group whose class it does not concern keeps its own.
    """
    overrides = defaults or {}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        hints = typing.get_type_hints(func)
        parameters: list[inspect.Parameter] = []
        groups: dict[str, tuple[type, list[str]]] = {}
        for param in signature.parameters.values():
            hint = hints.get(param.name, param.annotation)
            if is_settings(hint):
                chosen = cli_fields(hint, exclude)
                groups[param.name] = (hint, [f.name for f in chosen])
                for f in chosen:
                    parameters.append(_cli_parameter(f, overrides.get(f.name, f.default)))
            else:
                parameters.append(param.replace(annotation=hint, kind=inspect.Parameter.KEYWORD_ONLY))
        import typer

        parameters.append(inspect.Parameter(_CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
        seen = [p.name for p in parameters]
        clash = sorted({n for n in seen if seen.count(n) > 1})
        if clash:
            raise TypeError(f"{func.__name__}: parameters {clash} are defined twice")
        unknown = sorted(set(overrides) - set(seen))
        if unknown:
            raise TypeError(f"{func.__name__}: defaults for unknown options {unknown}")

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            ctx = kwargs.pop(_CONTEXT, None)
            raw = {name: {n: kwargs.pop(n) for n in names} for name, (_, names) in groups.items()}
            arguments = {**kwargs, **{n: v for values in raw.values() for n, v in values.items()}}
            picked = choose(arguments) if choose is not None else None
            for name, (cls, names) in groups.items():
                given = _given(ctx, names) | set(overrides)
                typed = {n: v for n, v in raw[name].items() if n in given}
                if isinstance(picked, cls):  # a base instance: its (nested) classes and defaults
                    kwargs[name] = from_cli(cls, typed, base=picked)
                else:  # a subclass with other defaults; another group keeps its own class
                    mine = isinstance(picked, type) and issubclass(picked, cls)
                    kwargs[name] = from_cli(picked if mine else cls, typed)
            return func(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def iter_flags(cls: type, exclude: tuple[str, ...] = ()) -> Iterator[str]:
    """Every CLI flag of ``cls`` (both spellings of a bool), for docs and tests."""
    for f in cli_fields(cls, exclude):
        yield f.flag
        if strip_optional(f.hint) is bool and f.info.parse is None:
            negative = f.info.negative if f.info.negative is not None else "--no-" + f.flag.removeprefix("--")
            if negative:
                yield negative
