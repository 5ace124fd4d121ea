"""The server's job-options fields (pydantic) from settings classes."""

from __future__ import annotations

from typing import Any, Literal

from wanimate.options.fields import flat_options, strip_optional


def pydantic_fields(
    cls: type, defaults: dict[str, Any] | None = None, names: tuple[str, ...] | None = None
) -> dict[str, tuple[Any, Any]]:
    """``create_model`` arguments for the options of ``cls`` (nested included) marked ``serve=True``
    (only those in ``names``, when given).

    The types, defaults and bounds are the options' own, so the server validates what the CLI does
    and documents it in its OpenAPI schema.
    """
    from pydantic import Field as PydanticField

    overrides = defaults or {}
    out: dict[str, tuple[Any, Any]] = {}
    for name, (_, f) in flat_options(cls).items():
        if not f.info.serve or (names is not None and name not in names):
            continue
        info = f.info
        annotation: Any = f.hint
        if info.choices is not None:
            choices = Literal[tuple(info.choices)]  # type: ignore[valid-type]
            annotation = choices | None if strip_optional(f.hint) is not f.hint else choices
        default = overrides.get(name, f.default)
        out[name] = (
            annotation,
            PydanticField(
                default,
                description=info.help,
                ge=info.min,
                gt=info.above,
                le=info.max,
                max_length=info.max_length,
            ),
        )
    return out
