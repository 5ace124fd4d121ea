"""The HTTP API and the browser page, on FastAPI (OpenAPI at /docs).

Routes only validate, store and read: every job runs in the worker process. Files are
served from the job's workspace with range support, so the browser can seek in them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

import wanimate
from wanimate.cast.spec import MAX_CHARACTERS
from wanimate.errors import WanimateError
from wanimate.materials.layout import STRIP_NAME
from wanimate.materials.people import PEOPLE_JSON, PEOPLE_SHEET
from wanimate.serve.config import ServeConfig
from wanimate.serve.media import MediaError, check_image, check_video, confined_path, copy_checked, save_upload
from wanimate.serve.models import JobPage, JobView, job_view
from wanimate.serve.options import JobOptions
from wanimate.serve.people import people_router
from wanimate.serve.security import BodyLimit, RateLimiter, token_matches
from wanimate.serve.store import STATES, Job, JobStore
from wanimate.serve.supervisor import WorkerSupervisor

SSE_POLL_S = 0.2
SSE_HEARTBEAT_S = 15.0
MULTIPART_SLACK = 64 * 1024
OPTIONS_HELP = "A JSON object, every field optional: " + ", ".join(JobOptions.model_fields) + " (see docs/serve.md)."


def create_app(config: ServeConfig, *, worker: bool = True) -> FastAPI:
    """The server; ``worker=False`` serves the API without running jobs (they wait in the queue)."""
    config.validate()
    token = config.resolved_token()
    store = JobStore(config.database)
    supervisor = WorkerSupervisor(config) if worker else None
    limiter = RateLimiter(config.rate_per_s, config.rate_burst)
    submit_limiter = RateLimiter(config.submit_per_s, config.submit_burst)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if supervisor is not None:
            supervisor.start()
        try:
            yield
        finally:
            if supervisor is not None:
                await anyio.to_thread.run_sync(supervisor.stop)

    app = FastAPI(
        title="wanimate",
        version=wanimate.__version__,
        summary="Character animation jobs: upload a character and a driving video, get the animation back.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.store = store
    app.state.supervisor = supervisor
    images = config.max_image_bytes * MAX_CHARACTERS  # a cast uploads one image per character
    app.add_middleware(BodyLimit, limit=images + config.max_video_bytes + MULTIPART_SLACK)

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def rate_limited(request: Request) -> None:
        wait = limiter.retry_after(client_of(request))
        if wait:
            raise HTTPException(429, "too many requests; slow down", headers={"Retry-After": str(int(wait) + 1)})

    def authorized(request: Request, _: None = Depends(rate_limited)) -> None:
        if token is not None and not token_matches(request.headers.get("authorization"), token):
            raise HTTPException(
                401,
                "missing or wrong bearer token (Authorization: Bearer $WANIMATE_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def get_job(job_id: str) -> Job:
        job = store.get(job_id) if len(job_id) < 64 else None
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (it may have expired)")
        return job

    Guard = Depends(authorized)

    @app.get("/health", tags=["server"], dependencies=[Depends(rate_limited)])
    def health() -> dict[str, Any]:
        """Liveness: the API answers, and whether the worker process is up."""
        status = "running" if supervisor is not None and supervisor.alive else "stopped"
        return {
            "status": "ok",
            "worker": status,
            "jobs": store.counts(),
            "auth": token is not None,
            "weights": list(config.allowed_weights),
        }

    @app.get("/options", tags=["server"], dependencies=[Depends(rate_limited)])
    def job_options() -> dict[str, Any]:
        """The ``options`` a job accepts: names, types, defaults and bounds, as JSON Schema (no token needed)."""
        return JobOptions.model_json_schema()

    @app.post("/jobs", status_code=201, response_model=JobView, tags=["jobs"], dependencies=[Guard])
    def submit(
        request: Request,
        image: Annotated[UploadFile | None, File(description="Character image (PNG, JPEG, WebP).")] = None,
        video: Annotated[UploadFile | None, File(description="Driving video (MP4, MOV, WebM, MKV).")] = None,
        cast_image: Annotated[
            list[UploadFile] | None, File(description="Cast: one character image per id of options.cast, in order.")
        ] = None,
        options: Annotated[str, Form(description=OPTIONS_HELP)] = "{}",
    ) -> JSONResponse:
        """Queue a job. Send the two files, or name files under the server's input root in ``options``."""
        wait = submit_limiter.retry_after(client_of(request))
        if wait:
            raise HTTPException(429, "too many submissions; slow down", headers={"Retry-After": str(int(wait) + 1)})
        opts = parse_options(options, config)
        job_id = secrets.token_urlsafe(18)
        inputs = config.jobs_dir / job_id / "inputs"
        inputs.mkdir(parents=True)
        try:
            if opts.cast:
                receive_cast(opts.cast, image, cast_image or [], inputs, config)
                receive("video", video, opts.video_path, inputs, config)
            else:
                image_file = receive("image", image, opts.image_path, inputs, config)
                video_file = receive("video", video, opts.video_path, inputs, config)
                opts.check_size(image_file, video_file)
        except MediaError as exc:
            shutil.rmtree(inputs.parent, ignore_errors=True)
            raise HTTPException(exc.status, str(exc)) from None
        except WanimateError as exc:
            shutil.rmtree(inputs.parent, ignore_errors=True)
            raise HTTPException(422, str(exc)) from None
        except BaseException:
            shutil.rmtree(inputs.parent, ignore_errors=True)
            raise
        # What the client set (on the server's defaults): the options left out keep the model's own defaults.
        job = store.add(job_id, opts.lane, opts.stored(), client_of(request))
        return JSONResponse(job_view(job).model_dump(), status_code=201, headers={"Location": f"/jobs/{job_id}"})

    @app.get("/jobs", response_model=JobPage, tags=["jobs"], dependencies=[Guard])
    def list_jobs(
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
        state: Annotated[str | None, Query(description=f"One of {', '.join(STATES)}.")] = None,
    ) -> JobPage:
        """Past and current jobs, newest first."""
        if state is not None and state not in STATES:
            raise HTTPException(400, f"state must be one of {', '.join(STATES)}")
        jobs, total = store.page(limit=limit, offset=offset, state=state)
        following = offset + len(jobs)
        return JobPage(
            jobs=[job_view(j) for j in jobs], total=total, next_offset=following if following < total else None
        )

    @app.get("/jobs/{job_id}", response_model=JobView, tags=["jobs"], dependencies=[Guard])
    def job_status(job_id: str) -> JobView:
        """State (queued, preprocessing, generating, done, failed, cancelled), progress with ETA, error."""
        return job_view(get_job(job_id))

    @app.get("/jobs/{job_id}/events", tags=["jobs"], dependencies=[Guard])
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        """Server-sent events: one ``job`` event (the same JSON as ``GET /jobs/{id}``) per change, until it ends."""
        first = await anyio.to_thread.run_sync(get_job, job_id)

        async def stream() -> AsyncIterator[str]:
            job: Job | None = first
            seen = None
            quiet = 0.0
            while job is not None:
                if job.updated != seen:
                    seen = job.updated
                    quiet = 0.0
                    yield f"event: job\ndata: {json.dumps(job_view(job).model_dump())}\n\n"
                    if job.terminal:
                        return
                elif quiet >= SSE_HEARTBEAT_S:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(SSE_POLL_S)
                quiet += SSE_POLL_S
                if await request.is_disconnected():
                    return
                job = await anyio.to_thread.run_sync(store.get, job_id)
            yield 'event: gone\ndata: {"detail": "the job was deleted"}\n\n'

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    def job_file(job: Job, name: str, what: str) -> FileResponse:
        path = config.jobs_dir / job.id / name
        if job.state != "done" or not path.is_file():
            raise HTTPException(409, f"the {what} is not ready: the job is {job.state}")
        return FileResponse(path, media_type="video/mp4", filename=f"wanimate-{job.id[:8]}-{name}")

    @app.get("/jobs/{job_id}/result", tags=["files"], dependencies=[Guard], response_class=FileResponse)
    def job_result(job_id: str) -> FileResponse:
        """The generated mp4 (409 until the job is done)."""
        return job_file(get_job(job_id), "result.mp4", "result")

    @app.get("/jobs/{job_id}/compare", tags=["files"], dependencies=[Guard], response_class=FileResponse)
    def job_compare(job_id: str) -> FileResponse:
        """The side-by-side video: driving | skeleton | result."""
        return job_file(get_job(job_id), "compare.mp4", "side-by-side video")

    @app.get("/jobs/{job_id}/materials", tags=["files"], dependencies=[Guard], response_class=FileResponse)
    def job_materials_strip(job_id: str) -> FileResponse:
        """The materials strip (driving | skeleton | face | mask), as soon as preprocessing is finished."""
        job = get_job(job_id)
        path = materials_file(config.jobs_dir / job.id, job, STRIP_NAME)
        if path is None:
            raise HTTPException(409, f"the materials strip is not ready: the job is {job.state}")
        return FileResponse(path, media_type="video/mp4")

    @app.get("/jobs/{job_id}/people", tags=["files"], dependencies=[Guard], response_class=FileResponse)
    def job_people_sheet(job_id: str) -> FileResponse:
        """The contact sheet of everyone tracked in the driving video (PNG: each id on its person, one
        thumbnail each), as soon as preprocessing is finished; the ids are the ``person`` option's."""
        job = get_job(job_id)
        path = materials_file(config.jobs_dir / job.id, job, PEOPLE_SHEET)
        if path is None:
            raise HTTPException(409, f"the people sheet is not ready: the job is {job.state}")
        return FileResponse(path, media_type="image/png")

    @app.get("/jobs/{job_id}/people.json", tags=["files"], dependencies=[Guard])
    def job_people(job_id: str) -> dict[str, Any]:
        """The ``people`` record's index (docs/materials.md): ids, frames present, chosen performer."""
        job = get_job(job_id)
        path = materials_file(config.jobs_dir / job.id, job, PEOPLE_JSON)
        if path is None:
            raise HTTPException(409, f"the people record is not ready: the job is {job.state}")
        return json.loads(path.read_text())

    @app.delete("/jobs/{job_id}", tags=["jobs"], dependencies=[Guard])
    def delete_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job and remove its files; a finished job is removed from history."""
        job = get_job(job_id)
        outcome = None if job.terminal else store.cancel(job.id)
        if outcome is None:  # finished (possibly just now, between the two reads)
            shutil.rmtree(config.jobs_dir / job.id, ignore_errors=True)
            store.delete(job.id)
            return {"id": job.id, "deleted": True}
        if outcome == "cancelled":
            shutil.rmtree(config.jobs_dir / job.id, ignore_errors=True)
        # A running job stops at its next progress event; the worker then removes its files.
        return {"id": job.id, "deleted": False, "cancelling": outcome != "cancelled"}

    app.include_router(people_router(config, Guard))

    static = resources.files("wanimate.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.exception_handler(WanimateError)
    async def wanimate_error(request: Request, exc: WanimateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app


def parse_options(text: str, config: ServeConfig) -> JobOptions:
    try:
        raw = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"options is not valid JSON ({exc.msg} at character {exc.pos})") from None
    try:
        options = JobOptions.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, f"bad options: {problems}") from None
    options.check_weights(config.allowed_weights)
    try:
        options.settings()
    except WanimateError as exc:
        raise HTTPException(422, f"bad options: {exc}") from None
    return options


INPUTS = {"image": "character image", "video": "driving video"}


def receive(kind: str, upload: UploadFile | None, server_path: str | None, folder: Path, config: ServeConfig) -> Path:
    """Put one input (``image`` or ``video``) into the job's workspace, checked, named after its real format."""
    what = INPUTS[kind]
    if (upload is None) == (server_path is None):
        raise MediaError(400, f"send the {what} as the '{kind}' file or as options.{kind}_path, exactly one of them")
    limit = config.max_image_bytes if kind == "image" else config.max_video_bytes
    staged = folder / f"{kind}.upload"
    if upload is not None:
        save_upload(upload.file, staged, limit, what)
    else:
        copy_checked(confined_path(config.input_root, server_path or "", what), staged, limit, what)
    suffix = check_image(staged, what) if kind == "image" else check_video(staged, what)[1]
    final = folder / f"{kind}{suffix}"
    staged.rename(final)
    return final


def receive_cast(
    ids: list[int], image: UploadFile | None, images: list[UploadFile], folder: Path, config: ServeConfig
) -> None:
    """A cast's images, one ``cast_image`` file per id in ``options.cast``, saved as ``cast_<id>.<ext>``."""
    if image is not None:
        raise MediaError(400, "a cast job takes its characters as cast_image files, not an image file")
    if len(images) != len(ids):
        raise MediaError(400, f"options.cast lists {len(ids)} ids but {len(images)} cast_image files were sent")
    for person, upload in zip(ids, images, strict=True):
        what = f"character image for person {person}"
        staged = folder / f"cast_{person}.upload"
        save_upload(upload.file, staged, config.max_image_bytes, what)
        staged.rename(folder / f"cast_{person}{check_image(staged, what)}")


def materials_file(folder: Path, job: Job, name: str) -> Path | None:
    """A file of the job's materials folder (``strip.mp4``, ``people.png``...), once a complete
    folder (``meta.json``) exists."""
    if job.result and job.result.get("materials"):
        candidate = Path(job.result["materials"]) / name
        if candidate.is_file() and candidate.resolve().is_relative_to(folder.resolve()):
            return candidate
    for meta in sorted((folder / "work").glob("**/meta.json")):
        if (meta.parent / name).is_file():
            return meta.parent / name
    return None
