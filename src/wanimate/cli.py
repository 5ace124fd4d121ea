"""The ``wanimate`` command: one sub-command per stage, registered from the stage packages.

Stage modules keep their heavy imports (torch, diffusers, mediapipe) inside the
command bodies so that ``wanimate --help`` answers instantly.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

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
    # Plain help (click's layout): rich panels cut long defaults at the terminal's width.
    rich_markup_mode=None,
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
    from wanimate.native_logs import show_native_logs

    _debug["on"] = debug
    show_native_logs(debug)


# Libraries whose import-time and informational warnings are noise on a user's terminal (shown with --debug).
_QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "transformers", "diffusers")


class _OneLineHandler(logging.Handler):
    """Each record as one unwrapped line on whatever ``sys.stderr`` is now (it may be swapped mid-run)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        print(prefix + record.getMessage(), file=sys.stderr, flush=True)


def _one_line_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def configure_logging() -> None:
    """Warnings from the stages (``logging.getLogger("wanimate")``, ``warnings.warn``) print as one plain line."""
    if "--debug" not in sys.argv[1:]:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        # diffusers and transformers reset their root loggers' levels on import; their env settings stick.
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "--debug" not in sys.argv[1:]:
        warnings.showwarning = _one_line_warning
    logger = logging.getLogger("wanimate")
    if not logger.handlers:
        logger.addHandler(_OneLineHandler())
        logger.setLevel(logging.INFO)


def _usage_error_class() -> type[Exception]:
    """The usage-error base of the click that this typer runs on.

    typer up to 0.25 raises ``click``'s exceptions; later releases raise those of a vendored copy
    (``typer._click``). ``typer.BadParameter`` derives from whichever is in use, so its ancestry names it.
    """
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _usage_line(exc: Exception) -> str:
    """One line for a usage error: click's message plus where to read the options."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "wanimate"
    return f"{message} (see `{command} --help`)"


def _fail(message: str, code: int) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2; bugs keep their traceback."""
    from wanimate.paths import describe_os_error

    _debug["on"] = False
    configure_logging()
    try:
        code = app(args=argv, prog_name="wanimate", standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(code) returns it here instead of exiting
            sys.exit(code)
    except WanimateError as exc:
        if _debug["on"]:
            raise
        _fail(str(exc), exc.exit_code)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except SystemExit:
        raise
    except OSError as exc:  # a fault of the machine (disk full, read-only folder), not of wanimate
        message = describe_os_error(exc)
        if message is None or _debug["on"]:
            raise
        _fail(message, WanimateError.exit_code)
    except Exception as exc:
        if not isinstance(exc, _usage_error_class()):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `wanimate` or `wanimate bench`: the help is the answer
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        _fail(_usage_line(exc), exc.exit_code)  # type: ignore[attr-defined]
