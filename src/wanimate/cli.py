"""The ``wanimate`` command: one sub-command per stage, registered from the stage packages.

Stage modules keep their heavy imports (torch, diffusers, mediapipe) inside the
command bodies so that ``wanimate --help`` answers instantly.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
from rich.console import Console

from wanimate.errors import WanimateError

COMMAND_MODULES = [
    "wanimate.batch.command",
    "wanimate.evaluate.command",
    "wanimate.generate.command",
    "wanimate.models.command",
    "wanimate.parallel.command",
    "wanimate.preprocess.command",
    "wanimate.preview.command",
    "wanimate.run.command",
    "wanimate.serve.command",
]

app = typer.Typer(
    name="wanimate",
    help="Character animation and replacement with Wan2.2-Animate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks: speed and memory of each stage.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app, bench_app)


_debug = {"on": False}


def debug_enabled() -> bool:
    """Whether this invocation asked for --debug (full tracebacks and library logs)."""
    return _debug["on"]


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    _debug["on"] = debug


# Libraries whose import-time and informational warnings are noise on a user's terminal (shown with --debug).
_QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "transformers", "diffusers")


class _OneLineHandler(logging.Handler):
    """Each record as one unwrapped line on whatever ``sys.stderr`` is now (it may be swapped mid-run)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        print(prefix + record.getMessage(), file=sys.stderr, flush=True)


def configure_logging() -> None:
    """Warnings from the stages (``logging.getLogger("wanimate")``) print as one plain line on stderr."""
    if "--debug" not in sys.argv[1:]:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        # diffusers and transformers reset their root loggers' levels on import; their env settings stick.
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logger = logging.getLogger("wanimate")
    if not logger.handlers:
        logger.addHandler(_OneLineHandler())
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> None:
    """Entry point: a :class:`WanimateError` becomes one line on stderr and exit code 2."""
    _debug["on"] = False
    configure_logging()
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(code) returns it here instead of exiting
            sys.exit(code)
    except WanimateError as exc:
        if _debug["on"]:
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
