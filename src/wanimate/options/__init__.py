"""One definition per option: settings dataclasses whose fields say everything about themselves.

Each stage has one frozen settings dataclass (``PreprocessSettings``, ``GenerateSettings``,
``RunSettings``; the server's ``ServeConfig``). A field declared with :func:`option` carries its
help text, CLI flag, bounds, choices, how the CLI text becomes a value, whether it changes the
pixels (and so belongs in the resume key) and whether server clients may set it. Everything that
used to restate the options is derived from that one place:

- :func:`expand` turns a command function's settings parameter into one typer option per field
  (the function's ``__signature__`` is rebuilt, which is how typer reads parameters);
- :func:`check` validates an instance: types, choices, bounds and each field's own rule, raising
  one :class:`~wanimate.errors.WanimateError` line that names the flag;
- :func:`pixel_values` is what a result key hashes;
- :func:`pydantic_fields` gives the server's job-options model the same fields and bounds;
- :func:`flat_options` / :func:`build` let ``run`` take the union of several stages' settings as one
  flat set of names (a clash is a definition error, resolved by renaming a field).

Nothing here imports torch or the stages, so ``wanimate --help`` stays instant.
"""

from wanimate.options.checks import check, problem
from wanimate.options.cli import cli_fields, expand, from_cli, iter_flags
from wanimate.options.fields import (
    META_KEY,
    Field,
    Option,
    build,
    fields_of,
    flat_options,
    flat_values,
    is_settings,
    nested_of,
    option,
    pixel_values,
    redefault,
    strip_optional,
)
from wanimate.options.server import pydantic_fields

__all__ = [
    "META_KEY",
    "Field",
    "Option",
    "build",
    "check",
    "cli_fields",
    "expand",
    "fields_of",
    "flat_options",
    "flat_values",
    "from_cli",
    "is_settings",
    "iter_flags",
    "nested_of",
    "option",
    "pixel_values",
    "problem",
    "pydantic_fields",
    "redefault",
    "strip_optional",
]
