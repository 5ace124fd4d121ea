"""``wanimate batch``: the jobs file, the lease, and batches on one local Ray head (127.0.0.1, CPUs only).

One Ray cluster serves every Ray test of this module: starting it (and the workers'
first imports) is what costs.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from wanimate.batch.jobs import read_jobs
from wanimate.batch.lease import WorkLease
from wanimate.batch.runner import run_batch
from wanimate.bench.serve import short_clip
from wanimate.errors import WanimateError

TINY = {"weights": "random:tiny", "segment_frames": 5, "dtype": "fp32", "prompt": "w1 w2", "area": [64, 64]}


@pytest.fixture(scope="module")
def inputs(carphone_video, astronaut_image, tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-inputs")
    return astronaut_image, short_clip(carphone_video, root / "drive.mp4", 13)  # 3 segments of 5


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A Ray head on this machine: 2 CPUs, a small object store, no dashboard; shut down after the module.

    It also declares 2 GPUs with no device behind them: a job that takes them runs on that many CPU ranks
    (``device`` ``auto`` resolves to the CPU on the worker), which is how the multi-GPU dispatch is tested here.
    """
    import ray  # the cluster extra is part of the test extra: a missing Ray fails here, it is not skipped

    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token written to the home folder; loopback only
    ray.init(
        num_cpus=2,
        num_gpus=2,
        object_store_memory=80 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def write_jobs(folder: Path, lines: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_jobs_file_csv_and_jsonl_read_alike(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "image,video,output,mode,steps,guidance,area,retarget\nc.png,d.mp4,o/a.mp4,replace,4,1.5,64x64,no\n"
    )
    write_jobs(tmp_path, [dict(image="c.png", video="d.mp4", output="o/a.mp4", mode="replace", steps=4,
                               guidance=1.5, area=[64, 64], retarget=False)])  # fmt: skip
    csv_job, json_job = read_jobs(tmp_path / "jobs.csv")[0], read_jobs(tmp_path / "jobs.jsonl")[0]
    assert csv_job == json_job
    assert csv_job.output == tmp_path / "o" / "a.mp4" and csv_job.work == tmp_path / "o" / "a.work"
    assert csv_job.settings == {"steps": 4, "guidance": 1.5}
    assert csv_job.preprocess == {"area": (64, 64), "retarget": False}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"image": "c.png", "video": "d.mp4"}', "line 1: missing output"),
        ('{"image": "c.png", "video": "d.mp4", "output": "o.mp4", "stepz": 3}', "line 1: unknown field 'stepz'"),
        ('{"image": "c.png", "video": "d.mp4", "output": "o.mp4", "overlap": 2}', "line 1: --overlap must be 1 or 5"),
        ("[1, 2]", "line 1: each line must be a JSON object"),
    ],
)
def test_bad_job_lines_are_refused_with_their_line(tmp_path, line, message):
    (tmp_path / "jobs.jsonl").write_text(line + "\n")
    with pytest.raises(WanimateError, match=message):
        read_jobs(tmp_path / "jobs.jsonl")


def test_a_leased_work_folder_is_refused_to_a_second_holder(tmp_path):
    with WorkLease(tmp_path / "w", "job"):
        holder = json.loads((tmp_path / "w" / "lease.lock").read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(WanimateError, match=f"job job is already running .*pid {os.getpid()}"):
            WorkLease(tmp_path / "w", "job", wait_s=0.3).__enter__()
    with WorkLease(tmp_path / "w", "job", wait_s=0):  # released with its holder
        pass


def test_batch_on_ray_equals_local_runs_and_reports_the_failed_job(ray_cluster, inputs, tmp_path, one_thread):
    image, video = inputs
    good = [dict(image=str(image), video=str(video), output=f"out{i}.mp4", seed=i, steps=2, **TINY) for i in (0, 1)]
    bad = dict(image=str(image), video="missing.mp4", output="bad.mp4", **TINY)
    local = run_batch(read_jobs(write_jobs(tmp_path / "local", good)), gpus_per_job=0)
    assert all(s.state == "done" for s in local.values()), local

    jobs = read_jobs(write_jobs(tmp_path / "ray", [*good, bad]))
    seen: list[dict] = []
    statuses = run_batch(jobs, ray=ray_cluster, gpus_per_job=0, on_update=lambda s: seen.append(dict(s)))
    assert statuses["bad"].state == "failed" and "driving video not found" in statuses["bad"].error
    for name in ("out0", "out1"):
        assert statuses[name].state == "done", statuses[name].error
        assert statuses[name].attempts == 1 and statuses[name].pid != os.getpid()  # ran on a Ray worker
        assert np.array_equal(frames(tmp_path / "ray" / f"{name}.mp4"), frames(tmp_path / "local" / f"{name}.mp4"))
    assert any(s["out0"].state == "generating" and s["out0"].num_segments == 3 for s in seen)  # live progress

    again = run_batch(jobs[:2], ray=ray_cluster, gpus_per_job=0)  # finished outputs are kept, not redone
    assert all(s.extra.get("skipped") for s in again.values())


def test_a_killed_ray_worker_is_retried_and_resumes(ray_cluster, inputs, tmp_path, one_thread):
    image, video = inputs
    line = dict(image=str(image), video=str(video), output="slow.mp4", seed=5, steps=12, **TINY)
    reference = run_batch(read_jobs(write_jobs(tmp_path / "local", [line])), gpus_per_job=0)
    assert reference["slow"].state == "done"

    jobs = read_jobs(write_jobs(tmp_path / "ray", [line]))
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run_batch(jobs, ray=ray_cluster, gpus_per_job=0)))
    thread.start()
    segments = jobs[0].work / "segments"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(segments.glob("*.safetensors")) and thread.is_alive():
        time.sleep(0.02)
    holder = json.loads((jobs[0].work / "lease.lock").read_text())
    assert thread.is_alive(), "the job finished before its worker could be killed"
    os.kill(holder["pid"], signal.SIGKILL)
    finished = len(list(segments.glob("*.safetensors")))
    assert 1 <= finished < 3, "the job finished before its worker could be killed"
    thread.join(timeout=300)
    assert not thread.is_alive()

    status = result["slow"]
    assert status.state == "done", status.error
    assert status.attempts == 2 and status.pid != holder["pid"]
    assert status.resumed_from == finished  # the retry started after the saved segments: none recomputed
    assert np.array_equal(frames(tmp_path / "ray" / "slow.mp4"), frames(tmp_path / "local" / "slow.mp4"))


def _spawned_ranks(pid: int) -> int:
    """How many ``multiprocessing`` spawn children (the ranks of ``--gpus N``) process ``pid`` has now."""
    import psutil

    try:
        children = psutil.Process(pid).children()
        return sum("spawn_main" in " ".join(child.cmdline()) for child in children)
    except psutil.Error:  # the process or a child ended while being looked at
        return 0


def test_the_server_dispatches_its_queue_to_ray_on_two_ranks(ray_cluster, inputs, tmp_path):
    """``serve --ray --gpus-per-job 2``: the job runs on a Ray worker, split over two ranks it spawns."""
    import httpx

    from wanimate.serve.config import ServeConfig
    from wanimate.serve.server import BackgroundServer

    image, video = inputs
    config = ServeConfig(data_dir=tmp_path / "serve", ray_address=ray_cluster, gpus_per_job=2, gpu_jobs=1)
    options = {"backend": "wan", "weights": "random:tiny", "steps": 2, "segment_frames": 5, "dtype": "fp32",
               "prompt": "w1 w2", "preprocess": {"area": [64, 64]}}  # fmt: skip
    with BackgroundServer(config) as server:
        files = {"image": ("c.png", image.read_bytes()), "video": ("d.mp4", video.read_bytes())}
        response = httpx.post(f"{server.url}/jobs", files=files, data={"options": json.dumps(options)}, timeout=60)
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        store, lease = server.app.state.store, config.jobs_dir / job_id / "work" / "lease.lock"
        ranks, deadline = 0, time.monotonic() + 300
        while time.monotonic() < deadline and not store.get(job_id).terminal:
            pid = WorkLease(lease.parent, job_id).holder().get("pid")  # {} while the line is being written
            if pid is not None:
                ranks = max(ranks, _spawned_ranks(pid))
            time.sleep(0.2)
        job = store.get(job_id)
        assert job.state == "done", job.error
        holder = json.loads(lease.read_text())
        assert holder["pid"] not in (os.getpid(), server.app.state.supervisor.pid)  # a Ray worker ran it
        assert ranks == 2  # ... on the two ranks it spawned
        events = [e for _, e in store.events(job_id) if e["stage"] == "generate"]
        assert {e["segment"] for e in events} == {0, 1, 2} and events[-1]["num_segments"] == 3  # relayed progress
        result = httpx.get(f"{server.url}/jobs/{job_id}/result", timeout=30)
        assert result.status_code == 200
    path = tmp_path / "result.mp4"
    path.write_bytes(result.content)
    assert len(frames(path)) == 13


def test_batch_command_reports_a_failed_job_and_exits_1(tmp_path, capsys):
    from wanimate.cli import main

    jobs = write_jobs(tmp_path, [dict(image="nobody.png", video="nothing.mp4", output="o.mp4", **TINY)])
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(jobs), "--gpus-per-job", "0"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "0 of 1 jobs done, 1 failed" in err and "character image not found" in err
    assert not (tmp_path / "o.mp4").exists()
