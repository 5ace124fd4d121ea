"""Bad input, part 5: faults of the machine, work folders, and what the user sees and hears.

A full disk or a read-only folder gives one line, leaves nothing half-written, and an interrupted
``generate`` resumes. Work folders lose only wanimate's own files. Every output video carries the
driving video's audio unless ``--no-audio``; progress says what runs; native logs stay off stderr.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
from bad_input import Env, assert_ends_with_error, assert_one_error_line, disk_full_after, invoke, read_only, snapshot

from wanimate.paths import current_umask
from wanimate.workdir import MARKER, WorkDir

GEN = [
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
]


@pytest.fixture
def env(tmp_path, bad_input_library, real_materials) -> Env:
    return Env(tmp_path, {**bad_input_library, "real": real_materials})


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".partial" in p.name or p.name.endswith(".old")]


# A read-only folder and a full disk -------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "preprocess", "generate"])
def test_read_only_output_folder_is_one_line(command: str, env: Env, capsys, monkeypatch) -> None:
    image, video, mats = env.copy("image"), env.copy("video"), env.copy("mats")
    locked = env / "locked"
    argv = {
        "run": [
            "run",
            "--image",
            str(image),
            "--video",
            str(video),
            "-o",
            str(locked / "o.mp4"),
            "--backend",
            "preview",
        ],
        "preprocess": ["preprocess", "--image", str(image), "--video", str(video), "-o", str(locked / "m")],
        "generate": ["generate", str(mats), "-o", str(locked / "o.mp4"), *GEN],
    }[command]
    with read_only(locked):
        before = snapshot(env.root)
        code, out, err = invoke(argv, capsys)
        assert_one_error_line(code, out, err, 2, ("locked",))
        assert "read-only" in err or "not writable" in err
        assert snapshot(env.root) == before


def _save_file_failing_after(count: int, monkeypatch) -> None:
    from safetensors import SafetensorError

    import wanimate.generate.work as work

    def full() -> BaseException:  # what safetensors raises on a full disk
        return SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(work, "save_file", disk_full_after(count, full)(work.save_file))


def test_full_disk_while_saving_a_segment_leaves_generate_resumable(env: Env, capsys, monkeypatch) -> None:
    mats = env.copy("mats")  # 9 frames: two segments of 5
    argv = ["generate", str(mats), "-o", env.s("o.mp4"), *GEN]
    _save_file_failing_after(1, monkeypatch)
    code, _, err = invoke(argv, capsys)
    assert_ends_with_error(code, err, ("00001.safetensors", "disk is full", "run the same command again"))
    assert not (env / "o.mp4").exists() and _temporaries(env.root) == []
    assert sorted(p.name for p in (env / "o.work" / "segments").iterdir()) == ["00000.safetensors"]

    monkeypatch.undo()
    code, _out, err = invoke(argv, capsys)
    assert code == 0, err
    assert "resuming at segment 2/2" in err
    assert (env / "o.mp4").is_file() and not (env / "o.work").exists()


def test_full_disk_while_writing_the_video_keeps_the_finished_segments(env: Env, capsys, monkeypatch) -> None:
    import wanimate.generate.pipeline as pipeline

    mats = env.copy("mats")
    argv = ["generate", str(mats), "-o", env.s("o.mp4"), "--save-frames", env.s("frames"), *GEN]

    class FullDisk(pipeline.VideoWriter):
        write = disk_full_after(4)(pipeline.VideoWriter.write)

    monkeypatch.setattr(pipeline, "VideoWriter", FullDisk)
    code, _, err = invoke(argv, capsys)
    assert_ends_with_error(code, err, ("disk is full",))
    assert not (env / "o.mp4").exists() and not (env / "frames").exists() and _temporaries(env.root) == []
    assert len(list((env / "o.work" / "segments").glob("*.safetensors"))) == 2

    monkeypatch.undo()
    code, _out, err = invoke(argv, capsys)
    assert code == 0, err
    assert "all 2 segments were already finished" in err
    assert len(list((env / "frames").glob("*.png"))) == 9


def test_full_disk_during_preprocessing_leaves_nothing(env: Env, capsys, monkeypatch) -> None:
    import wanimate.preprocess.writers as writers

    image, video = env.copy("image"), env.copy("video")

    class FullDisk(writers.VideoWriter):
        write = disk_full_after(2)(writers.VideoWriter.write)

    monkeypatch.setattr(writers, "VideoWriter", FullDisk)
    before = snapshot(env.root)
    argv = [
        "preprocess",
        "--image",
        str(image),
        "--video",
        str(video),
        "-o",
        env.s("m"),
        "--area",
        "64x64",
        "--quiet",
        "--pose-workers",
        "1",
    ]
    code, out, err = invoke(argv, capsys)
    assert_one_error_line(code, out, err, 2, ("disk is full",))
    assert snapshot(env.root) == before


def test_full_disk_during_the_preview_keeps_only_the_materials_cache(env: Env, capsys, monkeypatch) -> None:
    import wanimate.preview.renderer as renderer

    image, video = env.copy("image"), env.copy("video")

    class FullDisk(renderer.VideoWriter):
        write = disk_full_after(3)(renderer.VideoWriter.write)

    monkeypatch.setattr(renderer, "VideoWriter", FullDisk)
    argv = [
        "run",
        "--image",
        str(image),
        "--video",
        str(video),
        "-o",
        env.s("o.mp4"),
        "--backend",
        "preview",
        "--area",
        "64x64",
    ]
    code, _, err = invoke(argv, capsys)
    assert_ends_with_error(code, err, ("disk is full",))
    assert not (env / "o.mp4").exists() and _temporaries(env.root) == []
    cache = [p.name for p in (env / "o.work").iterdir()]
    assert sorted(cache)[0] == MARKER and cache and all(n == MARKER or n.startswith("materials-") for n in cache)
    assert all((p / "meta.json").is_file() for p in (env / "o.work").glob("materials-*"))


# Work folders ---------------------------------------------------------------------------------


def _own_content(work: Path) -> None:
    (work / "segments").mkdir()
    (work / "segments" / "00000.safetensors").write_bytes(b"seg")
    (work / "key.json").write_text("{}")
    (work / "materials-0123456789abcdef").mkdir()
    (work / "materials-0123456789abcdef" / "meta.json").write_text("{}")


def test_fresh_deletes_only_wanimates_own_files(tmp_path: Path) -> None:
    work = tmp_path / "mine"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    (work / ".draft.partial").write_text("a name that looks like ours")  # there before: the user's
    with WorkDir(work, explicit=True) as folder:
        _own_content(work)
        (work / "segments" / "notes.txt").write_text("put here by the user")
        folder.clear()
    # The marker stays while a folder of wanimate's (segments/) is there; the user's note keeps it.
    assert sorted(p.name for p in work.iterdir()) == [".draft.partial", MARKER, "segments", "thesis.tex"]
    assert [p.name for p in (work / "segments").iterdir()] == ["notes.txt"]
    assert (work / "thesis.tex").read_text() == "years of work"


def test_a_killed_commands_staging_is_removed_on_the_next_start(tmp_path: Path) -> None:
    work = tmp_path / "o.work"
    with WorkDir(work, explicit=False):
        _own_content(work)
    staging = work / ".materials-0123456789abcdef.partial"
    staging.mkdir()
    (staging / "src_pose.mp4").write_bytes(b"half")
    (work / "segments" / ".00001.safetensors.partial").write_bytes(b"half")
    with WorkDir(work, explicit=False):
        assert not staging.exists() and not (work / "segments" / ".00001.safetensors.partial").exists()
        assert (work / "segments" / "00000.safetensors").is_file()


def test_a_default_empty_folder_is_used_and_left_as_it_was(tmp_path: Path) -> None:
    work = tmp_path / "o.work"
    work.mkdir()
    with WorkDir(work, explicit=False) as folder:
        assert (work / MARKER).is_file()
        folder.remove_segments()
    assert work.is_dir() and list(work.iterdir()) == []  # the user made it: it stays, empty as it was


def test_a_folder_in_use_by_another_process_is_refused(tmp_path: Path, capsys) -> None:
    work = tmp_path / "o.work"
    with WorkDir(work, explicit=False):
        (work / "key.json").write_text("{}")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(60)",
            str(work / MARKER),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(Exception, match="in use by another wanimate command"), WorkDir(work, explicit=False):
            pass
    finally:
        holder.kill()
        holder.wait()
    fd = os.open(work / MARKER, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released again
    os.close(fd)


def test_generate_cleanup_keeps_the_users_files(env: Env, capsys) -> None:
    mats = env.copy("mats")
    work = env / "scratch"
    work.mkdir()
    (work / "todo.txt").write_text("mine")
    code, _, err = invoke(["generate", str(mats), "-o", env.s("o.mp4"), "--work-dir", str(work), *GEN], capsys)
    assert code == 0, err
    assert [p.name for p in work.iterdir()] == ["todo.txt"]  # segments, key and marker gone; the folder stays


def test_a_file_dropped_into_a_work_folder_survives_its_cleanup(tmp_path: Path) -> None:
    work = tmp_path / "o.work"
    with WorkDir(work, explicit=False) as folder:
        _own_content(work)
        (work / "diary.txt").write_text("dropped into wanimate's folder")
        folder.remove_segments()
        folder.clear()
    assert sorted(p.name for p in work.iterdir()) == [MARKER, "diary.txt"]
    assert (work / "diary.txt").read_text() == "dropped into wanimate's folder"


def test_a_stale_preprocess_staging_folder_is_cleared_and_a_foreign_one_kept(env: Env, capsys) -> None:
    video = env.copy("video")
    (env / "small.png").write_bytes(b"")  # fails after the staging check: an unreadable image
    staging = env / ".m.partial"
    staging.mkdir()
    (staging / "src_pose.mp4").write_bytes(b"left by a killed run")
    argv = ["preprocess", "--image", env.s("small.png"), "--video", str(video), "-o", env.s("m"), "--quiet"]
    code, out, err = invoke(argv, capsys)
    assert_one_error_line(code, out, err, 2, ("not an image",))
    assert not staging.exists()

    staging.mkdir()
    (staging / "letter.txt").write_text("not ours")
    code, out, err = invoke(argv, capsys)
    assert_one_error_line(code, out, err, 2, ("in the way",))
    assert (staging / "letter.txt").read_text() == "not ours"


def test_materials_folders_follow_the_umask(real_materials: Path) -> None:
    assert real_materials.stat().st_mode & 0o777 == 0o777 & ~current_umask()


# What the user hears and sees -----------------------------------------------------------------


def _audio_seconds(path: Path) -> float | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base) if stream.duration else 0.0


def _video_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.frames / stream.average_rate)


def test_run_and_compare_carry_the_driving_audio_unless_no_audio(env: Env, capsys) -> None:
    image, video = env.copy("image"), env.copy("video")
    base = [
        "run",
        "--image",
        str(image),
        "--video",
        str(video),
        "-o",
        env.s("o.mp4"),
        "--backend",
        "preview",
        "--area",
        "64x64",
        "--compare",
        env.s("side.mp4"),
    ]
    code, _, err = invoke(base, capsys)
    assert code == 0, err
    for name in ("o.mp4", "side.mp4"):
        seconds = _audio_seconds(env / name)
        assert seconds is not None and abs(seconds - _video_seconds(env / name)) < 0.05, name
    code, _, err = invoke([*base, "--no-audio", "--overwrite"], capsys)
    assert code == 0, err
    assert _audio_seconds(env / "o.mp4") is None and _audio_seconds(env / "side.mp4") is None


def test_preview_command_carries_the_audio_and_reports_each_frame(real_materials: Path, tmp_path: Path) -> None:
    from wanimate.preview import render_preview

    frames: list[tuple[int, int]] = []
    render_preview(real_materials, tmp_path / "p.mp4", progress=False, on_frame=lambda d, t: frames.append((d, t)))
    assert _audio_seconds(tmp_path / "p.mp4") is not None
    assert frames == [(i, 8) for i in range(1, 9)]


def test_preview_command_drops_the_audio_with_generates_own_flag(real_materials: Path, tmp_path: Path, capsys) -> None:
    """``preview --no-audio`` is generate's ``audio`` option (one definition), reaching the renderer."""
    with_audio, without = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert invoke(["preview", str(real_materials), "-o", str(with_audio), "--no-progress"], capsys)[0] == 0
    code, _, err = invoke(["preview", str(real_materials), "-o", str(without), "--no-progress", "--no-audio"], capsys)
    assert code == 0, err
    assert _audio_seconds(with_audio) is not None and _audio_seconds(without) is None


def test_server_preview_jobs_report_progress_between_stages(tmp_path: Path, monkeypatch) -> None:
    import threading

    from wanimate.run import RunEvent
    from wanimate.serve.progress import ProgressRecorder
    from wanimate.serve.store import JobStore

    monkeypatch.setattr("wanimate.serve.progress.WRITE_EVERY_S", 0.0)
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add("j", "cpu", {}, "test")
    store.claim("cpu")
    recorder = ProgressRecorder(store, "j", 1, threading.Event())
    seen = []
    for done in range(0, 9):
        recorder(RunEvent("preview", fraction=done / 8))
        seen.append(store.get("j").progress["overall"])
    assert seen[0] == pytest.approx(0.3) and seen[-1] == pytest.approx(0.95)
    assert any(0.4 < value < 0.9 for value in seen)


def test_generation_progress_names_each_stage() -> None:
    import io

    from rich.console import Console

    from wanimate.generate.engine import ProgressEvent
    from wanimate.generate.progress import RichProgress

    bars = RichProgress(Console(file=io.StringIO(), width=120))
    with bars:
        for event, description, count in [
            (ProgressEvent("encode", num_segments=2, num_steps=20), "text and image encoders", ""),
            (ProgressEvent("resume", 1, 2), "text and image encoders", ""),
            (ProgressEvent("segment", 1, 2, 0, 20), "VAE encode", ""),
            (ProgressEvent("denoise", 1, 2, 0, 20), "denoise", "0/20"),
            (ProgressEvent("step", 1, 2, 7, 20), "denoise", "7/20"),
            (ProgressEvent("decode", 1, 2, 20, 20), "VAE decode", ""),
        ]:
            bars(event)
            stage = bars._progress.tasks[1]
            assert (stage.description, stage.fields["count"]) == (description, count)
            if event.stage == "resume":
                assert bars._progress.tasks[0].description == "resuming at 2/2"


def test_native_logs_stay_off_the_terminal(real_materials: Path, tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from wanimate.native_logs import quiet_native_logs\n"
        "from wanimate.preview import render_preview\n"
        "with quiet_native_logs():\n"
        "    os.write(2, b'NATIVE\\n')\n"
        "    print('PYTHON', file=sys.stderr)\n"
        f"render_preview({str(real_materials)!r}, {str(tmp_path / 'p.mp4')!r}, progress=False)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "PYTHON" in result.stderr and "NATIVE" not in result.stderr
    assert not [line for line in result.stderr.splitlines() if "XNNPACK" in line or line.startswith(("W0000", "I0000"))]


def test_info_lists_only_backends_that_run_here(monkeypatch) -> None:
    import torch

    from wanimate.models.info import attention_backends

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    available, missing = attention_backends()
    assert "native" in available
    assert not {"_native_cudnn", "flash", "_native_flash"} & set(available)
    assert any("CUDA" in reason and "_native_cudnn" in names for reason, names in missing.items())


def test_readme_first_command_leaves_nothing_untracked() -> None:
    import fnmatch
    import re

    root = Path(__file__).resolve().parents[1]
    first = re.findall(r"```bash\n(.*?)\n```", (root / "README.md").read_text(encoding="utf-8"), re.S)[0]
    output = Path(re.search(r" -o (\S+)", first).group(1))
    compare = Path(re.search(r"--compare (\S+)", first).group(1))
    written = [output.name, compare.name, compare.with_suffix(".png").name, f"{output.stem}.work/"]
    patterns = [line.strip().rstrip("/") for line in (root / ".gitignore").read_text().splitlines()]
    for name in written:
        assert any(fnmatch.fnmatch("/" + name.rstrip("/"), p) for p in patterns if p.startswith("/")), name


def test_help_shows_full_defaults_and_plain_names(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = invoke(["generate", "--help"], capsys)
    assert code == 0
    assert "<bool>" not in out and "{materials}" not in out and "MATERIALS" in out
    code, out, _ = invoke(["run", "--help"], capsys)
    assert code == 0
    assert "[default:Wan-AI/Wan2.2-Animate-14B]" in "".join(out.split())  # the whole default, not cut at 80
    assert "…" not in out


def test_disk_full_message_names_the_file() -> None:
    from wanimate.paths import describe_os_error

    message = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/o.mp4"))
    assert message is not None and message.startswith("/data/o.mp4: No space left on device; the disk is full")
    assert "\n" not in message
    assert describe_os_error(OSError(errno.ECONNRESET, "reset")) is None  # not the user's to fix: a traceback


def test_a_moved_driving_video_is_said_before_the_work_and_the_video_still_written(
    env: Env, real_materials: Path, capsys
) -> None:
    mats = env.copy("real")
    meta = json.loads((mats / "meta.json").read_text())
    meta["audio"]["path"] = env.s("moved-away.mp4")
    (mats / "meta.json").write_text(json.dumps(meta))
    code, _, err = invoke(["preview", str(mats), "-o", env.s("p.mp4"), "--no-progress"], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "moved-away.mp4" in lines[0]
    assert _audio_seconds(env / "p.mp4") is None
