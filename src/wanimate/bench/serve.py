"""``wanimate bench serve``: API latency and preview-job throughput of a real server on loopback.

The server runs as its own ``wanimate serve`` process (as users run it), so the load
generator's threads do not share its interpreter. The load is bounded: a fixed number
of requests from a fixed number of clients, and a fixed number of jobs with a deadline.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from wanimate.errors import WanimateError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def short_clip(source: Path, dest: Path, frames: int, step: int = 3) -> Path:
    """Every ``step``-th frame of ``source``, ``frames`` of them, as a 10 fps mp4: a tiny but real driving video."""
    from wanimate.video import VideoWriter, iter_frames

    with VideoWriter(dest, 10) as writer:
        kept = 0
        for index, frame in enumerate(iter_frames(source)):
            if index % step == 0:
                writer.write(frame)
                kept += 1
                if kept == frames:
                    break
    return dest


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_latency(url: str, path: str, requests: int, concurrency: int) -> dict[str, float]:
    """Milliseconds per GET, from ``concurrency`` keep-alive clients sharing ``requests``."""
    import httpx

    timings: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()

    def client(count: int) -> None:
        local: list[float] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(count):
                started = time.perf_counter()
                status = http.get(path).status_code
                local.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors.append(status)
        with lock:
            timings.extend(local)

    share = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    threads = [threading.Thread(target=client, args=(n,)) for n in share if n]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise WanimateError(f"{len(errors)} of {requests} GET {path} failed (e.g. HTTP {errors[0]})")
    return {
        "p50_ms": percentile(timings, 0.50),
        "p95_ms": percentile(timings, 0.95),
        "mean_ms": statistics.fmean(timings),
        "req_per_s": len(timings) / wall,
    }


def _submit(http: Any, image: Path, video: Path, options: dict[str, Any] | None = None) -> str:
    options = options or {"backend": "preview", "area": [128, 128]}
    with open(image, "rb") as img, open(video, "rb") as vid:
        response = http.post("/jobs", files={"image": img, "video": vid}, data={"options": json.dumps(options)})
    if response.status_code != 201:
        raise WanimateError(f"submission failed: HTTP {response.status_code} {response.text}")
    return response.json()["id"]


def _wait_done(http: Any, ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
    pending, finished = set(ids), {}
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = http.get(f"/jobs/{job_id}").json()
            if job["state"] in ("done", "failed", "cancelled"):
                finished[job_id] = job
                pending.discard(job_id)
        time.sleep(0.2)
    if pending:
        raise WanimateError(f"{len(pending)} of {len(ids)} jobs did not finish in time; raise --timeout")
    failed = [j for j in finished.values() if j["state"] != "done"]
    if failed:
        raise WanimateError(f"{len(failed)} jobs failed, e.g.: {failed[0]['error']}")
    return finished


def _start_latency(http: Any, job_id: str, deadline: float) -> float:
    """Seconds from the worker taking the job to the generation engine's first event.

    That span holds the job's preprocessing and, unless the worker's session is warm, the model
    load. Read by polling the job's progress, which the worker writes at least every 0.25 s
    (the resolution of this figure); the server runs on this machine, so its clock is ours.
    """
    job: dict[str, Any] = {"state": "queued"}
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        progress = job["progress"]
        if progress.get("stage") == "generate" and progress.get("message") not in ("load", None, ""):
            return time.time() - job["started"]
        if job["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.02)
    raise WanimateError(f"job {job_id} never reported the start of generation (state: {job['state']})")


def _wan_starts(http: Any, image: Path, video: Path, weights: str, deadline: float) -> tuple[float, float]:
    """Two Wan jobs in a row with the same weights: the first loads the model, the second finds it warm."""
    options = {"backend": "wan", "weights": weights, "steps": 1, "segment_frames": 5, "dtype": "fp32"}
    options |= {"prompt": "w1 w2", "area": [64, 64]}
    starts = []
    for seed in (1, 2):
        job_id = _submit(http, image, video, {**options, "seed": seed})
        starts.append(_start_latency(http, job_id, deadline))
        _wait_done(http, [job_id], deadline)
    return starts[0], starts[1]


def bench_serve(
    *,
    requests: int = 2000,
    concurrency: int = 8,
    jobs: int = 10,
    frames: int = 12,
    cpu_jobs: int = 2,
    wan_weights: str = "random:tiny",
    timeout: float = 600,
) -> dict[str, float | int | str]:
    """API latency, preview-job throughput, and the start latency of a second Wan job against the first.

    ``wan_weights`` must be a random model (``random:tiny|mid|full``): the bench runs offline.
    """
    import httpx

    from wanimate.examples import resolve_input

    with tempfile.TemporaryDirectory(prefix="wanimate-bench-serve-") as tmp:
        root = Path(tmp)
        image = resolve_input("example:astronaut")
        video = short_clip(resolve_input("example:carphone"), root / "drive.mp4", frames)
        port = free_port()
        command = [sys.executable, "-m", "wanimate", "serve", "--port", str(port), "--data-dir", str(root / "data")]
        command += ["--cpu-jobs", str(cpu_jobs), "--rate", "0", "--submit-rate", "0", "--weights", wan_weights]
        env = {k: v for k, v in os.environ.items() if k != "WANIMATE_TOKEN"}
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        try:
            with httpx.Client(base_url=url, timeout=60) as http:
                while True:
                    try:
                        if http.get("/health").json()["worker"] == "running":
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise WanimateError("the server did not start")
                    time.sleep(0.1)
                warm = _submit(http, image, video)  # also pays the worker's first-job imports
                _wait_done(http, [warm], deadline)
                health = measure_latency(url, "/health", requests, concurrency)
                status = measure_latency(url, f"/jobs/{warm}", requests, concurrency)
                started = time.monotonic()
                ids = [_submit(http, image, video) for _ in range(jobs)]
                submitted = time.monotonic() - started
                finished = _wait_done(http, ids, deadline)
                span = max(j["finished"] for j in finished.values()) - min(j["created"] for j in finished.values())
                first_start, second_start = _wan_starts(http, image, video, wan_weights, deadline)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    return {
        "cpu_count": os.cpu_count() or 0,
        "requests_per_endpoint": requests,
        "concurrency": concurrency,
        "health_p50_ms": health["p50_ms"],
        "health_p95_ms": health["p95_ms"],
        "health_req_per_s": health["req_per_s"],
        "job_status_p50_ms": status["p50_ms"],
        "job_status_p95_ms": status["p95_ms"],
        "job_status_req_per_s": status["req_per_s"],
        "jobs": jobs,
        "frames_per_job": frames,
        "cpu_jobs": cpu_jobs,
        "submit_s_per_job": submitted / jobs,
        "preview_jobs_per_min": jobs / span * 60,
        "s_per_job": span / jobs,
        "wan_weights": wan_weights,
        "wan_first_job_start_s": first_start,
        "wan_second_job_start_s": second_start,
        "wan_second_vs_first_start": second_start / max(first_start, 1e-9),
    }
