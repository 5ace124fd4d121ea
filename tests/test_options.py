"""One definition per option: every stage's options reach the CLI, ``run``, the server and the Python API alike.

These tests read the settings classes themselves (``wanimate.options``), so an option added to a
settings class is checked everywhere without touching this file.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from wanimate import options
from wanimate.bench.command import GENERATE_FIXED
from wanimate.cast.settings import CastSettings
from wanimate.cli import app, main
from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.parallel.layout import ParallelSettings
from wanimate.preprocess.settings import PreprocessSettings
from wanimate.run.settings import NOT_ON_RUN, RunSettings
from wanimate.serve.config import ServeConfig
from wanimate.serve.options import SERVER_DEFAULTS, JobOptions

SRC = Path(__file__).resolve().parents[1] / "src" / "wanimate"


def _command(name: str, group: str | None = None):
    root = typer.main.get_command(app)
    return (root.commands[group].commands if group else root.commands)[name]


def _flags(command) -> set[str]:
    return {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}


@pytest.mark.parametrize(
    ("command", "settings", "left_out"),
    [
        (("generate",), GenerateSettings, ()),
        (("preprocess",), PreprocessSettings, ()),
        (("run",), RunSettings, NOT_ON_RUN),
        (("serve",), ServeConfig, ()),
        (("generate", "bench"), GenerateSettings, GENERATE_FIXED),
    ],
)
def test_every_option_has_its_flag(command, settings, left_out):
    flags = _flags(_command(*command))
    missing = sorted(set(options.iter_flags(settings, left_out)) - flags)
    assert not missing, missing


@pytest.mark.parametrize("name", ["preprocess", "generate", "run", "preview"])
def test_overwrite_is_one_option_in_every_command_that_writes(name):
    from wanimate.paths import OutputSettings

    (f,) = options.fields_of(OutputSettings)
    (param,) = [p for p in _command(name).params if "--overwrite" in p.opts]
    assert param.help == f.info.help and param.default is False and not param.secondary_opts


def test_run_offers_the_union_of_preprocess_generate_parallel_and_renderer():
    flat = options.flat_options(RunSettings)
    stages = [
        *options.fields_of(PreprocessSettings),
        *options.fields_of(GenerateSettings),
        *options.fields_of(ParallelSettings),
        *options.fields_of(CastSettings),
    ]
    assert set(flat) == {f.name for f in stages} | {"backend"}  # (run's CLI leaves out NOT_ON_RUN)
    assert len(flat) == len(stages) + 1  # no name is shared: a clash would have been refused
    assert flat["pose_backend"][0] == ("preprocess",) and flat["quantize"][0] == ("generate",)
    assert flat["gpus"][0] == ("parallel",) and flat["cast_order"][0] == ("cast",)


def test_a_clash_between_nested_settings_is_a_definition_error():
    @dataclasses.dataclass(frozen=True)
    class Twice:
        a: GenerateSettings = dataclasses.field(default_factory=GenerateSettings)
        b: GenerateSettings = dataclasses.field(default_factory=GenerateSettings)

    with pytest.raises(TypeError, match="rename one"):
        options.flat_options(Twice)


def _other_text(f: options.Field) -> list[str]:
    """CLI arguments that set ``f`` to a valid value other than its default, and the value expected."""
    hint = options.strip_optional(f.hint)
    if f.info.choices:
        return [f.flag, str(next(c for c in f.info.choices if c != f.default))]
    special = {
        "area": "640x480", "fps": "24", "person": "1", "segment_frames": "81", "models_dir": "/m",
        "sam2_checkpoint": "/s.pt", "distill_lora": "/d.safetensors", "person_at": "10,20", "base": "/b",
        "weights": "random:tiny", "device": "cpu", "vram_budget": "12", "ram_budget": "12",
    }  # fmt: skip
    if f.name in special:
        return [f.flag, special[f.name]]
    if hint is bool:
        negative = f.info.negative if f.info.negative is not None else "--no-" + f.flag.removeprefix("--")
        return [negative] if f.default else [f.flag]
    if hint is int:
        return [f.flag, str((f.default or 0) + 1)]
    if hint is float:
        return [f.flag, str(round(f.default * 0.5 + (f.info.min or 0.0) * 0.5 + 0.25, 3))]
    return [f.flag, "something else"]


def test_every_run_option_set_on_the_cli_reaches_run(monkeypatch, tmp_path):
    """Each option gets a non-default value on the command line and arrives in the RunSettings."""
    seen = {}

    def fake_run(image, video, output, settings, **kwargs):
        seen["settings"] = settings
        raise WanimateError("stop here")

    monkeypatch.setattr("wanimate.run.run", fake_run)
    # preset rewrites steps; adapter is MultiAnimate's (a cast's: see the next test)
    chosen = [f for f in options.cli_fields(RunSettings, NOT_ON_RUN) if f.name not in ("preset", "adapter")]
    argv = ["run", "--image", "i.png", "--video", "v.mp4", "-o", str(tmp_path / "o.mp4")]
    for f in chosen:
        argv += _other_text(f)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    got = options.flat_values(seen["settings"])
    defaults = options.flat_values(RunSettings())
    unchanged = sorted(f.name for f in chosen if got[f.name] == defaults[f.name])
    assert not unchanged, unchanged
    assert got["area"] == (640, 480) and got["fps"] == 24.0 and got["person"] == 1 and got["pose_backend"] == "vitpose"


def test_a_cast_run_takes_multianimate_defaults_and_its_options(monkeypatch, tmp_path):
    """``run --cast`` in animate mode builds MultiAnimate's settings: its defaults, and ``--adapter``."""
    from wanimate.multianimate.settings import MultiAnimateSettings

    seen = {}

    def fake_run(image, video, output, settings, **kwargs):
        seen.update(settings=settings, **kwargs)
        raise WanimateError("stop here")

    monkeypatch.setattr("wanimate.run.run", fake_run)
    argv = ["run", "--cast", "0=a.png", "--cast", "1=b.png", "--video", "v.mp4", "-o", str(tmp_path / "o.mp4")]
    with pytest.raises(SystemExit):
        main([*argv, "--adapter", "multianimate-3", "--background", "neutral", "--cast-order", "id", "--seed", "3"])
    settings = seen["settings"]
    assert isinstance(settings.generate, MultiAnimateSettings) and seen["cast"] == ["0=a.png", "1=b.png"]
    assert settings.generate.adapter == "multianimate-3" and settings.generate.seed == 3
    assert settings.generate.steps == MultiAnimateSettings().steps  # not typed: MultiAnimate's default
    assert (settings.cast.background, settings.cast.cast_order) == ("neutral", "id")
    with pytest.raises(SystemExit):  # one character in replace mode: Wan2.2-Animate's settings
        main([*argv, "--mode", "replace"])
    assert type(seen["settings"].generate) is GenerateSettings


def test_python_api_takes_option_names_and_refuses_unknown_ones():
    settings = RunSettings.of(mode="replace", steps=3, backend="preview", area=[320, 320])
    assert settings.preprocess.mode == "replace" and settings.generate.steps == 3 and settings.backend == "preview"
    assert settings.preprocess.area == (320, 320)
    assert RunSettings.of(settings, seed=5).preprocess.mode == "replace"  # on top of a base
    with pytest.raises(WanimateError, match="unknown option bogus"):
        RunSettings.of(bogus=1)
    with pytest.raises(WanimateError, match="--steps must be a whole number"):
        GenerateSettings(steps="20")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fps": 121.0}, "--fps must be above 0 and at most 120"),
        ({"steps": 0}, "--steps must be at least 1"),
        ({"segment_frames": 10}, "4n+1"),
        ({"overlap": 3}, "--overlap must be 1 or 5"),
        ({"area": (32, 32)}, "--area is too small; each side must be at least 64"),
        ({"person": -1}, "--person must be 'auto'"),
        ({"quantize": "int4"}, "--quantize must be one of none, fp8, int8"),
    ],
)
def test_bounds_are_the_same_for_python_and_the_server(values, message):
    with pytest.raises(WanimateError, match=re.escape(message)):
        RunSettings.of(**values)
    with pytest.raises((ValidationError, WanimateError)):
        JobOptions.model_validate(json.loads(json.dumps(values))).settings()


def test_the_cli_says_the_same(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["preprocess", "--image", "i.png", "--video", "v.mp4", "-o", str(tmp_path / "m"), "--fps", "121"])
    assert exit_info.value.code == 2
    assert "--fps must be above 0 and at most 120" in capsys.readouterr().err


def test_server_options_are_the_serve_marked_fields_with_their_defaults_and_bounds():
    schema = JobOptions.model_json_schema()["properties"]
    marked = {name: f for name, (_, f) in options.flat_options(RunSettings).items() if f.info.serve}
    assert set(schema) == set(marked) | {"image_path", "video_path", "cast"}
    for name, f in marked.items():
        default = SERVER_DEFAULTS.get(name, f.default)
        assert JobOptions.model_fields[name].default == default, name
        bounds = [schema[name], *schema[name].get("anyOf", [])]
        if f.info.max is not None:
            assert any(b.get("maximum") == f.info.max for b in bounds), name
        if f.info.min is not None:
            assert any(b.get("minimum") == f.info.min for b in bounds), name
    # What a stranger must not choose stays out: paths, the device, parallelism of this machine.
    for name in ("models_dir", "sam2_checkpoint", "distill_lora", "base", "device", "pose_workers", "gpus"):
        with pytest.raises(ValidationError, match="Extra inputs"):
            JobOptions.model_validate({name: "x"})


def test_a_server_job_takes_the_speed_and_memory_options():
    job = JobOptions.model_validate({"backend": "wan", "offload": "group", "quantize": "int8", "vram_budget": 8})
    kwargs = job.run_kwargs("cuda:1")
    settings = RunSettings.of(**kwargs)
    assert (settings.generate.offload, settings.generate.quantize, settings.generate.vram_budget) == (
        "group",
        "int8",
        8,
    )
    assert settings.generate.device == "cuda:1" and settings.preprocess.strip  # the materials route needs the strip
    assert job.lane == "gpu"


def test_pixels_decide_the_resume_key():
    base = GenerateSettings()
    for f in options.fields_of(GenerateSettings):
        if f.name in ("device", "preset", "adapter"):  # adapter: MultiAnimate only (its key holds the source)
            continue
        other = _value_for(f)
        changed = dataclasses.replace(base, **{f.name: other}).result_key() != base.result_key()
        assert changed == f.info.pixels, f.name


def _value_for(f: options.Field):
    values = {"weights": "random:tiny", "base": "/b", "distill_lora": "/d", "vram_budget": 8.0, "ram_budget": 8.0}
    values["relight"] = True
    if f.name in values:
        return values[f.name]
    if f.info.choices:
        return next(c for c in f.info.choices if c != f.default)
    hint = options.strip_optional(f.hint)
    if hint is bool:
        return not f.default
    if f.name == "segment_frames":
        return 81
    if hint is int:
        return f.default + 1
    if hint is float:
        return f.default + 0.5 if f.info.max is None or f.default + 0.5 <= f.info.max else f.default / 2
    return f.default + " more"


def test_each_constant_has_one_home():
    """The default repo id, the keypoints file and the mediapipe tables are defined once in the package."""
    sources = {p: p.read_text() for p in SRC.rglob("*.py")}
    for needle, home in (
        ('"Wan-AI/Wan2.2-Animate-14B"', "models/hub.py"),
        ('"keypoints.npz"', "materials/layout.py"),
        ("MASK_THRESHOLD = ", "materials/layout.py"),
        ("FACE68_FROM_MESH = (", "preprocess/pose/mediapipe_mapping.py"),
        ("BLAZEPOSE_FOR_COCO = (", "preprocess/pose/mediapipe_mapping.py"),
    ):
        where = sorted(str(p.relative_to(SRC)) for p, text in sources.items() if needle in text)
        assert where == [home], (needle, where)


def test_cli_logging_reads_the_argv_it_is_given(monkeypatch):
    import logging

    from wanimate import cli

    monkeypatch.setattr("sys.argv", ["wanimate", "--debug"])  # not what main() is asked to run
    for name in cli._QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    cli.configure_logging(["generate", "--help"])
    assert logging.getLogger("diffusers").level == logging.ERROR
    logging.getLogger("diffusers").setLevel(logging.NOTSET)
    cli.configure_logging(["--debug", "generate"])
    assert logging.getLogger("diffusers").level == logging.NOTSET
