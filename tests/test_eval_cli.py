"""`wanimate eval` end to end on a preview render of real media, the report files, and bad input."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanimate.cli import main
from wanimate.errors import WanimateError
from wanimate.evaluate.report import HTML_MARK, write_reports
from wanimate.video import VideoWriter, iter_frames

FRAMES = 8


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, astronaut_image: Path) -> tuple[Path, Path]:
    """The astronaut animated by her own scripted motion (the preview renderer), with its materials."""
    from wanimate.preview import render_preview
    from wanimate.testing.demo import motion_materials

    root = tmp_path_factory.mktemp("eval")
    image = np.asarray(Image.open(astronaut_image).convert("RGB"))
    materials = motion_materials(root / "materials", image, 256, 256, FRAMES, fill=0.8)
    return render_preview(materials, root / "out.mp4", progress=False), materials.root


def test_report_on_a_preview_render(rendered, tmp_path, capsys):
    out, materials = rendered
    report = tmp_path / "r" / "report.json"
    args = ["eval", str(out), "--materials", str(materials), "--segment-frames", "5", "--overlap", "1"]
    code, stdout, err = run_cli([*args, "--ground-truth", str(out), "--no-fvd", "-o", str(report)], capsys)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["format"] == "wanimate-eval"
    assert data["inputs"]["frames"] == FRAMES
    assert data["inputs"]["segment_boundaries"] == [5]
    summary = data["summary"]
    assert summary["motion.frames_not_found"] == 0
    assert summary["motion.body_pck@0.1"] > 0.5  # the renderer follows the skeleton
    assert summary["identity.method"] == "face"
    assert summary["identity.face_distance_mean"] < 0.6  # still the astronaut
    assert summary["reference.ssim_mean"] == pytest.approx(1.0)
    assert len(data["motion"]["per_frame_error"]) == len(data["temporal"]["flicker"]) == FRAMES
    assert len(data["temporal"]["seams"]) == 1
    page = report.with_suffix(".html").read_text()
    assert page.startswith(HTML_MARK)
    assert page.count("data:image/png;base64,") >= 5  # plots and the contact sheet, all embedded
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched: readable offline
    assert not list(report.parent.glob(".*partial"))
    assert "motion.body_pck@0.1" in stdout


def test_driver_video_path_on_its_own_driver_measures_no_error(rendered, tmp_path):
    """--video/--image: the driver's pose is estimated too; an output equal to its driver follows it exactly."""
    from wanimate.evaluate import EvalOptions, evaluate

    out, materials = rendered
    options = EvalOptions(identity="appearance")
    report = evaluate(out, video=out, image=materials / "src_ref.png", options=options).report
    summary = report["summary"]
    assert summary["motion.body_error"] == pytest.approx(0.0, abs=1e-6)
    assert summary["motion.body_pck@0.05"] == pytest.approx(1.0)
    assert summary["expression.mouth_mean_abs_diff"] == pytest.approx(0.0, abs=1e-6)
    assert "estimated" in report["inputs"]["skeleton"]


def test_reports_replace_earlier_reports_but_nothing_else(tmp_path):
    report = {"format": "wanimate-eval", "summary": {"x": float("nan")}}
    json_path, html_path = write_reports(report, tmp_path / "a.json", HTML_MARK + "<p>one</p>")
    assert json.loads(json_path.read_text()) == {"format": "wanimate-eval", "summary": {"x": None}}
    write_reports(report, json_path, HTML_MARK + "<p>two</p>")  # an earlier report: replaced
    assert html_path.read_text().endswith("two</p>")
    (tmp_path / "b.json").write_text('{"mine": true}')
    with pytest.raises(WanimateError, match="not a wanimate report"):
        write_reports(report, tmp_path / "b.json", HTML_MARK)
    assert (tmp_path / "b.json").read_text() == '{"mine": true}'
    assert not (tmp_path / "b.html").exists()
    assert not list(tmp_path.glob(".*partial"))


def test_two_outputs_side_by_side(rendered, tmp_path, capsys):
    out, materials = rendered
    other = tmp_path / "copy" / "out.mp4"
    other.parent.mkdir()
    shutil.copy(out, other)
    report = tmp_path / "cmp.json"
    code, _, err = run_cli(
        ["eval", str(out), str(other), "--materials", str(materials), "--identity", "appearance", "-o", str(report)],
        capsys,
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["format"] == "wanimate-eval-compare"
    assert len(data["names"]) == 2 and data["names"][0] != data["names"][1]
    errors = data["table"]["motion.body_error"]
    assert errors[0] == pytest.approx(errors[1])  # the same video measures the same
    assert data["table"]["identity.method"] == ["appearance", "appearance"]
    assert all(name in report.with_suffix(".html").read_text() for name in data["names"])


def _shorter(src: Path, dst: Path, count: int) -> Path:
    with VideoWriter(dst, 30.0) as writer:
        for frame in itertools.islice(iter_frames(src), count):
            writer.write(frame)
    return dst


@pytest.mark.parametrize("case", ["lengths", "unreadable", "no_face", "no_source"])
def test_bad_input_is_one_clear_line(rendered, tmp_path, capsys, case):
    from skimage import data

    out, materials = rendered
    args = ["eval", str(out), "--materials", str(materials)]
    if case == "lengths":
        args += ["--ground-truth", str(_shorter(out, tmp_path / "gt.mp4", FRAMES - 3))]
        expected = "different lengths"
    elif case == "unreadable":
        bad = tmp_path / "bad.mp4"
        bad.write_text("not a video")
        args = ["eval", str(bad), "--materials", str(materials)]
        expected = "not a video"
    elif case == "no_face":
        coffee = tmp_path / "coffee.png"
        Image.fromarray(data.coffee()).save(coffee)
        args += ["--image", str(coffee), "--identity", "face"]
        expected = "no face found in the character image"
    else:
        args = ["eval", str(out)]
        expected = "--materials DIR"
    code, _, err = run_cli([*args, "-o", str(tmp_path / "r.json")], capsys)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
