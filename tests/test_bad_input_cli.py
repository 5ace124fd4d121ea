"""Bad input, part 1: usage errors, option values, devices, model limits, meta.json and materials folders.

Every row must fail with exit 2, one ``error:`` line, nothing written and no model loaded (see
tests/bad_input.py for the checks). More cases are one more row.
"""

from __future__ import annotations

import pytest
import torch
from bad_input import DROP, Case, Env, edit_meta, ids, loop, run_failing_case, write_meta


def pre(env: Env, *extra: str) -> list[str]:
    return [
        "preprocess",
        "--image",
        env.s("char.png"),
        "--video",
        env.s("drive.mp4"),
        "-o",
        env.s("m"),
        "--quiet",
        "--area",
        "64x64",
        *extra,
    ]


def run(env: Env, *extra: str) -> list[str]:
    return [
        "run",
        "--image",
        env.s("char.png"),
        "--video",
        env.s("drive.mp4"),
        "-o",
        env.s("out.mp4"),
        "--backend",
        "preview",
        "--area",
        "64x64",
        *extra,
    ]


def gen(env: Env, *extra: str, materials: str = "mats") -> list[str]:
    return [
        "generate",
        env.s(materials),
        "-o",
        env.s("out.mp4"),
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


def no_cuda(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(torch.cuda, "is_available", lambda: False)
    mp.setattr(torch.backends.mps, "is_available", lambda: False)


def two_gpus(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(torch.cuda, "is_available", lambda: True)
    mp.setattr(torch.cuda, "device_count", lambda: 2)
    mp.setattr(torch.backends.mps, "is_available", lambda: False)


MATS = ("mats",)

USAGE = [
    Case("run-missing-output", lambda e: ["run", "--image", e.s("char.png"), "--video", e.s("drive.mp4")], ("-o",)),
    Case("run-missing-video", lambda e: ["run", "--image", e.s("char.png"), "-o", e.s("o.mp4")], ("--video",)),
    Case("run-unknown-option", lambda e: [*run(e), "--bogus"], ("--bogus", "wanimate run --help")),
    Case("run-short-unknown", lambda e: ["run", "-i", e.s("char.png")], ("-i",)),
    Case(
        "preprocess-missing-image", lambda e: ["preprocess", "--video", e.s("drive.mp4"), "-o", e.s("m")], ("--image",)
    ),
    Case("preprocess-unknown-short", lambda e: ["preprocess", "-i", e.s("char.png")], ("-i", "preprocess --help")),
    Case("preprocess-int-not-a-number", lambda e: pre(e, "--mask-k", "seven"), ("--mask-k",)),
    Case("preprocess-unknown-model", lambda e: pre(e, "--model", "wan3"), ("--model", "auto, animate or multianimate")),
    Case("run-unknown-model", lambda e: run(e, "--model", "wan3"), ("--model", "auto, animate or multianimate")),
    Case(
        "generate-unknown-model",
        lambda e: gen(e, "--model", "wan3"),
        ("--model", "auto, animate or multianimate"),
        needs=MATS,
    ),
    Case("generate-missing-materials", lambda e: ["generate", "-o", e.s("out.mp4")], ("MATERIALS",)),
    Case("generate-missing-output", lambda e: ["generate", e.s("mats")], ("-o",), needs=MATS),
    Case("generate-steps-not-int", lambda e: gen(e, "--steps", "many"), ("--steps",), needs=MATS),
    Case("preview-unknown-option", lambda e: ["preview", e.s("mats"), "--fast"], ("--fast",), needs=MATS),
    Case("convert-missing-dst", lambda e: ["convert", e.s("src")], ("DST",), needs=()),
    Case("info-extra-argument", lambda e: ["info", "extra"], ("extra",), needs=()),
    Case("serve-port-not-int", lambda e: ["serve", "--port", "http"], ("--port",), needs=()),
    Case("bench-unknown-command", lambda e: ["bench", "nothing"], ("nothing",), needs=()),
    Case("unknown-command", lambda e: ["animate"], ("animate",), needs=()),
]

OPTIONS = [
    Case("preprocess-mode", lambda e: pre(e, "--mode", "dance"), ("--mode",)),
    Case("preprocess-fps-zero", lambda e: pre(e, "--fps", "0"), ("--fps",)),
    Case("preprocess-fps-text", lambda e: pre(e, "--fps", "fast"), ("--fps",)),
    Case("preprocess-fps-huge", lambda e: pre(e, "--fps", "10000"), ("--fps",)),
    Case("preprocess-area-shape", lambda e: pre(e, "--area", "big"), ("--area", "720p")),
    Case("preprocess-area-small", lambda e: pre(e, "--area", "16x16"), ("--area",)),
    Case("preprocess-area-huge", lambda e: pre(e, "--area", "100000x100000"), ("too large", "3840")),
    Case("preprocess-mask-iterations-huge", lambda e: pre(e, "--mask-iterations", "1000000"), ("at most 64",)),
    Case("preprocess-person", lambda e: pre(e, "--person", "-1"), ("--person",)),
    Case("preprocess-backend", lambda e: pre(e, "--pose-backend", "openpose"), ("openpose",)),
    Case("preprocess-mask-k", lambda e: pre(e, "--mask-k", "0"), ("--mask-k",)),
    Case("preprocess-pose-workers", lambda e: pre(e, "--pose-workers", "-2"), ("--pose-workers",)),
    Case("run-mode", lambda e: run(e, "--mode", "dance"), ("--mode",)),
    Case("run-backend", lambda e: run(e, "--backend", "gpu"), ("--backend",)),
    Case("run-fps", lambda e: run(e, "--fps", "-5"), ("--fps",)),
    Case("run-area", lambda e: run(e, "--area", "1280x"), ("--area",)),
    Case("run-segment-frames", lambda e: run(e, "--segment-frames", "10"), ("--segment-frames",)),
    Case("run-overlap", lambda e: run(e, "--overlap", "3"), ("--overlap",)),
    Case("run-dtype", lambda e: run(e, "--dtype", "fp8"), ("--dtype",)),
    Case("run-device-syntax", lambda e: run(e, "--device", "gpu"), ("--device", "cuda:N")),
    Case("generate-overlap", lambda e: gen(e, "--overlap", "2"), ("--overlap",), needs=MATS),
    Case("generate-steps-zero", lambda e: gen(e, "--steps", "0"), ("--steps",), needs=MATS),
    Case("generate-guidance", lambda e: gen(e, "--guidance", "0.5"), ("--guidance",), needs=MATS),
    Case("generate-shift", lambda e: gen(e, "--shift", "0"), ("--shift",), needs=MATS),
    Case("generate-mode", lambda e: gen(e, "--mode", "swap"), ("--mode",), needs=MATS),
    Case("generate-offload", lambda e: gen(e, "--offload", "disk"), ("--offload",), needs=MATS),
    Case("generate-cache", lambda e: gen(e, "--cache", "always"), ("--cache",), needs=MATS),
    Case("generate-vram-budget", lambda e: gen(e, "--vram-budget", "-1"), ("--vram-budget",), needs=MATS),
    Case("generate-replace-on-animate", lambda e: gen(e, "--mode", "replace"), ("src_bg.mp4",), needs=MATS),
    Case("generate-unknown-random-size", lambda e: [*gen(e), "--weights", "random:huge"], ("huge",), needs=MATS),
]

DEVICES = [
    Case(
        "generate-cuda-without-gpu",
        lambda e: gen(e, "--device", "cuda"),
        ("cuda", "available: cpu"),
        needs=MATS,
        patch=no_cuda,
    ),
    Case(
        "generate-cuda3-of-two",
        lambda e: gen(e, "--device", "cuda:3"),
        ("cuda:3", "cpu, cuda:0, cuda:1"),
        needs=MATS,
        patch=two_gpus,
    ),
    Case(
        "generate-mps-elsewhere",
        lambda e: gen(e, "--device", "mps"),
        ("mps", "available: cpu"),
        needs=MATS,
        patch=no_cuda,
    ),
    Case("generate-device-typo", lambda e: gen(e, "--device", "cuda0"), ("cuda0",), needs=MATS),
    Case(
        "run-wan-cuda-without-gpu",
        lambda e: run(e, "--backend", "wan", "--weights", "random:tiny", "--device", "cuda"),
        ("cuda", "available: cpu"),
        patch=no_cuda,
    ),
    Case(
        "bench-generate-cuda",
        lambda e: ["bench", "generate", "--device", "cuda:1", "--no-baseline"],
        ("cuda:1", "available"),
        needs=(),
        patch=no_cuda,
    ),
]

WEIGHTS = [
    Case(
        "run-wan-weights-typo",
        lambda e: run(e, "--backend", "wan", "--weights", "/models/nowhere", "--device", "cpu"),
        ("/models/nowhere", "not a file, a folder or a hub repo id"),
    ),
    Case(
        "run-wan-weights-offline",
        lambda e: run(e, "--backend", "wan", "--weights", "Someone/NotCached", "--device", "cpu"),
        ("NotCached", "offline", "hf download"),
    ),
    Case(
        "run-wan-unknown-random",
        lambda e: run(e, "--backend", "wan", "--weights", "random:huge", "--device", "cpu"),
        ("huge",),
    ),
]

LIMITS = [
    Case("generate-tiny-over-512px", lambda e: gen(e, materials="mats528"), ("512x512", "528x528"), needs=("mats528",)),
    Case("generate-tiny-long-segments", lambda e: gen(e, "--segment-frames", "125"), ("121 frames",), needs=MATS),
    Case(
        "run-tiny-at-720p",
        lambda e: run(e, "--backend", "wan", "--weights", "random:tiny", "--device", "cpu", "--area", "1280x720"),
        ("512x512", "--area"),
    ),
    Case(
        "run-tiny-at-720p-named",
        lambda e: run(e, "--backend", "wan", "--weights", "random:tiny", "--device", "cpu", "--area", "720p"),
        ("512x512",),
    ),
    Case(
        "bench-tiny-at-720p",
        lambda e: ["bench", "generate", "--res", "720p", "--no-baseline", "--device", "cpu"],
        ("512x512",),
        needs=(),
    ),
]


def meta_case(name: str, needle: str, **changes: object) -> Case:
    return Case(f"meta-{name}", gen, (needle,), setup=lambda e: edit_meta(e / "mats", **changes), needs=MATS)


def raw_meta_case(name: str, raw: str | bytes, needle: str) -> Case:
    return Case(f"meta-{name}", gen, (needle,), setup=lambda e: write_meta(e / "mats", None, raw), needs=MATS)


META = [
    raw_meta_case("array", "[1, 2, 3]", "array"),
    raw_meta_case("string", '"materials"', "string"),
    raw_meta_case("null", "null", "null"),
    raw_meta_case("not-json", "{mode: animate", "meta.json"),
    raw_meta_case("binary", b"\x89PNG\r\n\x1a\n\x00\xff", "meta.json"),
    raw_meta_case("empty", "", "meta.json"),
    meta_case("fps-zero", "fps", fps=0),
    meta_case("fps-negative", "fps", fps=-30),
    meta_case("fps-string", "fps", fps="30"),
    meta_case("fps-nan", "fps", fps=float("nan")),
    meta_case("fps-huge", "fps", fps=1e9),
    meta_case("fps-too-small-to-write", "fps", fps=1e-7),
    meta_case("width-zero", "width", width=0),
    meta_case("height-negative", "height", height=-16),
    meta_case("width-float", "width", width=31.5),
    meta_case("num-frames-bool", "num_frames", num_frames=True),
    meta_case("num-frames-missing", "num_frames", num_frames=DROP),
    meta_case("size-disagrees", "src_pose.mp4", width=64),
    meta_case("mode-unknown", "mode", mode="dance"),
    meta_case("mode-missing", "mode", mode=DROP),
    meta_case("unknown-field", "newer wanimate", lipsync={"on": True}),
    meta_case("newer-version", "format version 3", format_version=3),
    meta_case("characters-in-version-1", "format version 2", characters=2, model="multianimate"),
    meta_case("characters-zero", "characters", format_version=2, characters=0, model="multianimate"),
    meta_case("model-unknown", "model", format_version=2, characters=2, model="stablediffusion"),
    meta_case("version-string", "format version", format_version="1"),
    meta_case("version-missing", "format_version", format_version=DROP),
    meta_case("format-other", "format", format="comfyui"),
    meta_case("audio-string", "audio", audio="drive.mp4"),
    meta_case("audio-no-path", "audio.path", audio={"start": 0.0}),
    meta_case("audio-negative-start", "audio.start", audio={"path": "/x.mp4", "start": -1.0}),
    meta_case("audio-unknown-field", "newer wanimate", audio={"path": "/x.mp4", "gain": 2}),
    meta_case("provenance-list", "provenance", provenance=["a"]),
    Case(
        "meta-is-a-folder",
        gen,
        ("meta.json",),
        setup=lambda e: ((e / "mats/meta.json").unlink(), (e / "mats/meta.json").mkdir()),
        needs=MATS,
    ),
    Case(
        "meta-symlink-loop",
        gen,
        ("meta.json",),
        setup=lambda e: ((e / "mats/meta.json").unlink(), loop(e / "mats/meta.json")),
        needs=MATS,
    ),
    Case(
        "preview-meta-array",
        lambda e: ["preview", e.s("mats"), "-o", e.s("p.mp4")],
        ("array",),
        setup=lambda e: write_meta(e / "mats", [1]),
        needs=MATS,
    ),
]

MATERIALS = [
    Case("generate-materials-missing", lambda e: gen(e, materials="nowhere"), ("not found",), needs=()),
    Case("generate-a-video-file", lambda e: gen(e, materials="drive.mp4"), ("is a file, not a folder", "wanimate run")),
    Case(
        "generate-materials-loop",
        lambda e: gen(e, materials="loopy"),
        ("symlink loop",),
        setup=lambda e: loop(e / "loopy"),
        needs=(),
    ),
    Case(
        "generate-missing-pose",
        lambda e: gen(e),
        ("src_pose.mp4",),
        setup=lambda e: (e / "mats/src_pose.mp4").unlink(),
        needs=MATS,
    ),
    Case(
        "generate-pose-zero-bytes",
        lambda e: gen(e),
        ("src_pose.mp4", "empty"),
        setup=lambda e: (e / "mats/src_pose.mp4").write_bytes(b""),
        needs=MATS,
    ),
    Case(
        "generate-pose-symlink-loop",
        lambda e: gen(e),
        ("src_pose.mp4", "symlink loop"),
        setup=lambda e: ((e / "mats/src_pose.mp4").unlink(), loop(e / "mats/src_pose.mp4")),
        needs=MATS,
    ),
    Case(
        "generate-ref-not-an-image",
        lambda e: gen(e),
        ("src_ref.png",),
        setup=lambda e: (e / "mats/src_ref.png").write_text("png?"),
        needs=MATS,
    ),
    Case(
        "generate-face-shorter",
        lambda e: gen(e),
        ("frames",),
        setup=lambda e: (e / "mats/src_face.mp4").write_bytes((e / "mats528/src_face.mp4").read_bytes()),
        needs=("mats", "mats528"),
    ),
    Case(
        "preview-without-keypoints",
        lambda e: ["preview", e.s("mats"), "-o", e.s("p.mp4")],
        ("keypoints.npz",),
        needs=MATS,
    ),
]

CASES = USAGE + OPTIONS + DEVICES + WEIGHTS + LIMITS + META + MATERIALS


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case: Case, bad_input_library, tmp_path, capsys, monkeypatch) -> None:
    run_failing_case(case, Env(tmp_path, bad_input_library), capsys, monkeypatch)
