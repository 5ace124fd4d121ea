"""Bad input, part 2: paths. Outputs that are, contain or lie inside inputs; outputs that collide;
existing outputs; work folders that hold other files; symlink loops, files in the way, long names.

Every row fails before any work with one line and leaves the case's folder exactly as it was.
"""

from __future__ import annotations

import json
import os

import pytest
from bad_input import Case, Env, ids, loop, run_failing_case


def run(env: Env, *extra: str, out: str = "out.mp4") -> list[str]:
    return [
        "run",
        "--image",
        env.s("char.png"),
        "--video",
        env.s("drive.mp4"),
        "-o",
        env.s(out),
        "--backend",
        "preview",
        "--area",
        "64x64",
        *extra,
    ]


def pre(env: Env, *extra: str, out: str = "m") -> list[str]:
    return [
        "preprocess",
        "--image",
        env.s("char.png"),
        "--video",
        env.s("drive.mp4"),
        "-o",
        env.s(out),
        "--quiet",
        "--area",
        "64x64",
        *extra,
    ]


def gen(env: Env, *extra: str, out: str = "out.mp4", materials: str = "mats") -> list[str]:
    return [
        "generate",
        env.s(materials),
        "-o",
        env.s(out),
        "--weights",
        "random:tiny",
        "--device",
        "cpu",
        "--dtype",
        "fp32",
        "--steps",
        "1",
        "--segment-frames",
        "5",
        "--prompt",
        "w1",
        *extra,
    ]


def with_image(args: list[str], env: Env, image: str) -> list[str]:
    return [env.s(image) if a == env.s("char.png") else a for a in args]


def with_video(args: list[str], env: Env, video: str) -> list[str]:
    return [env.s(video) if a == env.s("drive.mp4") else a for a in args]


def touch(env: Env, name: str, text: str = "the user's own file\n") -> None:
    path = env / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def folder(env: Env, name: str) -> None:
    (env / name).mkdir(parents=True)


def audio_from(env: Env, video: str) -> None:
    """Point the copied real materials' audio at the case's own driving video."""
    meta = json.loads((env / "real/meta.json").read_text())
    meta["audio"] = {"path": env.s(video), "start": 0.0, "duration": 0.2}
    (env / "real/meta.json").write_text(json.dumps(meta))


LONG = "é" * 126 + ".mp4"  # 256 bytes: one too many
MATS = ("mats",)
REAL = ("real", "video")

RUN = [
    Case("run-output-is-the-video", lambda e: run(e, "--overwrite", out="drive.mp4"), ("driving video itself",)),
    Case("run-output-exists", run, ("already exists", "--overwrite"), setup=lambda e: touch(e, "out.mp4")),
    Case("run-compare-is-output", lambda e: run(e, "--compare", e.s("out.mp4")), ("collide",)),
    Case("run-compare-not-mp4", lambda e: run(e, "--compare", e.s("side.png")), ("--compare", ".mp4")),
    Case(
        "run-compare-still-exists",
        lambda e: run(e, "--compare", e.s("side.mp4")),
        ("side.png", "already exists"),
        setup=lambda e: touch(e, "side.png"),
    ),
    Case(
        "run-compare-is-the-video",
        lambda e: run(e, "--compare", e.s("drive.mp4"), "--overwrite"),
        ("driving video itself",),
    ),
    Case(
        "run-output-inside-workdir",
        lambda e: run(e, "--work-dir", e.s("w"), out="w/out.mp4"),
        ("collide",),
        setup=lambda e: folder(e, "w"),
    ),
    Case("run-workdir-holds-the-image", lambda e: run(e, "--work-dir", e.s(".")), ("lies inside the work folder",)),
    Case("run-workdir-is-a-file", lambda e: run(e, "--work-dir", e.s("char.png")), ("is a file, not a folder",)),
    Case("run-default-workdir-is-a-file", run, ("out.work", "is a file"), setup=lambda e: touch(e, "out.work")),
    Case(
        "run-default-workdir-not-ours",
        run,
        ("not made by wanimate", "notes.txt"),
        setup=lambda e: touch(e, "out.work/notes.txt"),
    ),
    Case(
        "run-output-is-a-folder",
        lambda e: run(e, out="clip.mp4"),
        ("is a folder",),
        setup=lambda e: folder(e, "clip.mp4"),
    ),
    Case("run-output-under-a-file", lambda e: run(e, out="char.png/out.mp4"), ("char.png is a file",)),
    Case(
        "run-output-under-a-loop",
        lambda e: run(e, out="loopy/out.mp4"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loopy"),
    ),
    Case(
        "run-output-is-a-loop",
        lambda e: run(e, out="loop.mp4"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loop.mp4"),
    ),
    Case("run-output-name-too-long", lambda e: run(e, out=LONG), ("256 bytes", "255")),
    Case("run-output-not-mp4", lambda e: run(e, out="out.mov"), ("-o", ".mp4")),
    Case(
        "run-image-loop",
        lambda e: with_image(run(e), e, "loop.png"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loop.png"),
    ),
    Case(
        "run-video-loop",
        lambda e: with_video(run(e), e, "loop.mp4"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loop.mp4"),
    ),
    Case(
        "run-image-broken-link",
        lambda e: with_image(run(e), e, "gone.png"),
        ("broken symlink",),
        setup=lambda e: os.symlink("deleted.png", e / "gone.png"),
    ),
    Case(
        "run-image-is-a-folder",
        lambda e: with_image(run(e), e, "pics"),
        ("is a folder",),
        setup=lambda e: folder(e, "pics"),
    ),
    Case(
        "run-video-is-a-folder",
        lambda e: with_video(run(e), e, "clips"),
        ("is a folder",),
        setup=lambda e: folder(e, "clips"),
    ),
    Case("run-image-missing", lambda e: with_image(run(e), e, "nope.png"), ("character image not found",)),
    Case("run-video-missing", lambda e: with_video(run(e), e, "nope.mp4"), ("driving video not found",)),
    Case("run-image-under-a-file", lambda e: with_image(run(e), e, "drive.mp4/char.png"), ("is a file",)),
    Case(
        "run-output-inside-weights",
        lambda e: run(e, "--backend", "wan", "--weights", e.s("weights"), out="weights/out.mp4"),
        ("inside the --weights",),
        setup=lambda e: touch(e, "weights/model_index.json"),
    ),
]

PREPROCESS = [
    Case("preprocess-output-is-the-image", lambda e: pre(e, "--overwrite", out="char.png"), ("is a file",)),
    Case("preprocess-output-exists", pre, ("already exists", "--overwrite"), setup=lambda e: folder(e, "m")),
    Case(
        "preprocess-overwrite-foreign-folder",
        lambda e: pre(e, "--overwrite", out="docs"),
        ("not a materials",),
        setup=lambda e: touch(e, "docs/thesis.tex"),
    ),
    Case(
        "preprocess-overwrite-materials-with-notes",
        lambda e: pre(e, "--overwrite", out="mats"),
        ("did not write", "notes.txt"),
        setup=lambda e: touch(e, "mats/notes.txt"),
        needs=("image", "video", "mats"),
    ),
    Case(
        "preprocess-overwrite-folder-holding-video",
        lambda e: with_video(pre(e, "--overwrite", out="mats"), e, "mats/src_pose.mp4"),
        ("lies inside -o",),
        needs=("image", "mats"),
    ),
    Case("preprocess-output-under-a-file", lambda e: pre(e, out="char.png/m"), ("char.png is a file",)),
    Case(
        "preprocess-output-is-a-loop",
        lambda e: pre(e, out="loopy"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loopy"),
    ),
    Case(
        "preprocess-image-is-a-folder",
        lambda e: with_image(pre(e), e, "pics"),
        ("is a folder",),
        setup=lambda e: folder(e, "pics"),
    ),
    Case(
        "preprocess-video-loop",
        lambda e: with_video(pre(e), e, "loop.mp4"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loop.mp4"),
    ),
    Case(
        "preprocess-output-inside-models-dir",
        lambda e: pre(e, "--models-dir", e.s("ckpt"), out="ckpt/m"),
        ("inside the --models-dir",),
        setup=lambda e: folder(e, "ckpt"),
    ),
    Case("preprocess-output-name-too-long", lambda e: pre(e, out="m" * 256), ("256 bytes",)),
]

GENERATE = [
    Case(
        "generate-output-inside-materials",
        lambda e: gen(e, out="mats/out.mp4"),
        ("inside the materials folder",),
        needs=MATS,
    ),
    Case("generate-output-exists", gen, ("already exists",), setup=lambda e: touch(e, "out.mp4"), needs=MATS),
    Case(
        "generate-output-is-the-driving-video",
        lambda e: gen(e, "--overwrite", out="drive.mp4", materials="real"),
        ("driving video (its audio) itself",),
        setup=lambda e: audio_from(e, "drive.mp4"),
        needs=REAL,
    ),
    Case(
        "generate-workdir-is-the-materials",
        lambda e: gen(e, "--work-dir", e.s("mats")),
        ("inside the materials",),
        needs=MATS,
    ),
    Case(
        "generate-default-workdir-is-a-file",
        gen,
        ("out.work", "is a file"),
        setup=lambda e: touch(e, "out.work"),
        needs=MATS,
    ),
    Case(
        "generate-default-workdir-not-ours",
        gen,
        ("not made by wanimate",),
        setup=lambda e: touch(e, "out.work/segments/mine.txt"),
        needs=MATS,
    ),
    Case(
        "generate-workdir-with-own-segments-folder",
        lambda e: gen(e, "--work-dir", e.s("w")),
        ("was there before",),
        setup=lambda e: touch(e, "w/segments/holiday.jpg"),
        needs=MATS,
    ),
    Case(
        "generate-workdir-with-own-key-json",
        lambda e: gen(e, "--work-dir", e.s("w")),
        ("key.json",),
        setup=lambda e: touch(e, "w/key.json", "{}"),
        needs=MATS,
    ),
    Case(
        "generate-save-frames-foreign",
        lambda e: gen(e, "--save-frames", e.s("frames")),
        ("other files",),
        setup=lambda e: touch(e, "frames/cover.jpg"),
        needs=MATS,
    ),
    Case(
        "generate-save-frames-existing",
        lambda e: gen(e, "--save-frames", e.s("frames")),
        ("--overwrite",),
        setup=lambda e: touch(e, "frames/000000.png"),
        needs=MATS,
    ),
    Case(
        "generate-save-frames-is-a-file",
        lambda e: gen(e, "--save-frames", e.s("char.png")),
        ("is a file",),
        needs=("mats", "image"),
    ),
    Case("generate-save-frames-is-output", lambda e: gen(e, "--save-frames", e.s("out.mp4")), ("collide",), needs=MATS),
    Case(
        "generate-output-inside-weights",
        lambda e: [*gen(e, out="w/out.mp4"), "--weights", e.s("w")],
        ("inside the --weights",),
        setup=lambda e: touch(e, "w/model_index.json"),
        needs=MATS,
    ),
    Case("generate-output-under-a-file", lambda e: gen(e, out="mats/src_ref.png/out.mp4"), ("is a file",), needs=MATS),
    Case("generate-output-name-too-long", lambda e: gen(e, out=LONG), ("256 bytes",), needs=MATS),
]

PREVIEW = [
    Case(
        "preview-output-inside-materials",
        lambda e: ["preview", e.s("real"), "-o", e.s("real/p.mp4")],
        ("inside the materials",),
        needs=("real",),
    ),
    Case(
        "preview-output-exists",
        lambda e: ["preview", e.s("real"), "-o", e.s("p.mp4")],
        ("already exists",),
        setup=lambda e: touch(e, "p.mp4"),
        needs=("real",),
    ),
    Case(
        "preview-output-is-the-driving-video",
        lambda e: ["preview", e.s("real"), "-o", e.s("drive.mp4"), "--overwrite"],
        ("driving video itself",),
        setup=lambda e: audio_from(e, "drive.mp4"),
        needs=REAL,
    ),
    Case(
        "preview-output-parent-is-a-file",
        lambda e: ["preview", e.s("real"), "-o", e.s("drive.mp4/p.mp4")],
        ("is a file",),
        needs=REAL,
    ),
]

CONVERT = [
    Case(
        "convert-dst-exists",
        lambda e: ["convert", e.s("src"), e.s("dst")],
        ("already exists",),
        setup=lambda e: (folder(e, "src"), folder(e, "dst")),
        needs=(),
    ),
    Case(
        "convert-dst-inside-src",
        lambda e: ["convert", e.s("src"), e.s("src/out")],
        ("inside the SRC",),
        setup=lambda e: touch(e, "src/config.json", "{}"),
        needs=(),
    ),
    Case("convert-src-is-a-file", lambda e: ["convert", e.s("char.png"), e.s("dst")], ("is a file",), needs=("image",)),
    Case(
        "convert-dst-under-a-file",
        lambda e: ["convert", e.s("src"), e.s("char.png/dst")],
        ("is a file",),
        setup=lambda e: folder(e, "src"),
        needs=("image",),
    ),
    Case(
        "convert-offline-hint",
        lambda e: ["convert", "Nobody/NoSuchRepo", e.s("dst")],
        ("wanimate convert ./NoSuchRepo",),
        needs=(),
    ),
    Case(
        "convert-not-a-layout",
        lambda e: ["convert", e.s("src"), e.s("dst")],
        ("matches no weights layout",),
        setup=lambda e: touch(e, "src/readme.txt"),
        needs=(),
    ),
]


def ev(env: Env, *extra: str) -> list[str]:
    return ["eval", env.s("drive.mp4"), "--video", env.s("drive.mp4"), "--image", env.s("char.png"), *extra]


EVAL = [
    Case(
        "eval-report-is-a-folder",
        lambda e: ev(e, "--report", e.s("r.json")),
        ("is a folder",),
        setup=lambda e: folder(e, "r.json"),
    ),
    Case(
        "eval-report-not-ours",
        lambda e: ev(e, "--report", e.s("notes.json")),
        ("not a wanimate report",),
        setup=lambda e: touch(e, "notes.json", "{}"),
    ),
    Case("eval-report-under-a-file", lambda e: ev(e, "--report", e.s("char.png/r.json")), ("is a file",)),
    Case("eval-report-not-json", lambda e: ev(e, "--report", e.s("r.txt")), (".json",)),
    Case(
        "eval-report-inside-materials",
        lambda e: [*ev(e, "--report", e.s("real/r.json")), "--materials", e.s("real")],
        ("inside the materials",),
        needs=("image", "video", "real"),
    ),
]

CASES = RUN + PREPROCESS + GENERATE + PREVIEW + CONVERT + EVAL


@pytest.fixture
def library(bad_input_library, real_materials):
    return {**bad_input_library, "real": real_materials}


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_path(case: Case, library, tmp_path, capsys, monkeypatch) -> None:
    line = run_failing_case(case, Env(tmp_path, library), capsys, monkeypatch)
    assert "convert" not in case.id or "--weights" not in line  # convert has no --weights option
