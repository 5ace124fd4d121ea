"""``POST /people``: who is in a video, before any job: the people sheet and the tracks.

The page's cast picker calls it when a video is chosen: the answer is the same listing as
``wanimate people`` (preprocessing's own first pass, so the ids are the ones a cast job's
``options.cast`` takes), with the contact sheet inlined as a PNG data URL so nothing is stored
on the server. The video goes to a temporary folder in the server's data folder, removed when
the answer is sent. Listings run one at a time (tracking is CPU-bound).
"""

from __future__ import annotations

import base64
import io
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from wanimate.errors import WanimateError
from wanimate.options import pydantic_fields
from wanimate.preprocess.settings import PEOPLE_OPTIONS, PreprocessSettings
from wanimate.serve.config import ServeConfig
from wanimate.serve.media import MediaError, check_video, confined_path, copy_checked, save_upload


class _PeopleOptionsBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The options of ``wanimate people`` (PEOPLE_OPTIONS of PreprocessSettings), with their bounds.
PeopleOptions: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "PeopleOptions",
    __base__=_PeopleOptionsBase,
    __doc__="The ``options`` JSON of ``POST /people`` (every field optional).",
    **pydantic_fields(PreprocessSettings, names=PEOPLE_OPTIONS),
    video_path=(str | None, Field(None, description="Driving video under the server's input root.")),
)


def _options(text: str) -> PeopleOptions:
    import json

    try:
        return PeopleOptions.model_validate(json.loads(text or "{}"))
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"options is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, f"bad options: {problems}") from None


def listing_json(listing: Any) -> dict[str, Any]:
    """A :class:`~wanimate.preprocess.people_sheet.PeopleListing` as the endpoint's answer."""
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(listing.sheet).save(png, format="PNG")
    height, width = listing.frame_size
    return {
        "video": {"width": width, "height": height, "num_frames": listing.num_frames, "fps": listing.fps},
        "people": listing.tracks(),
        "lines": listing.lines(),
        "sheet": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(),
    }


def people_router(config: ServeConfig, guard: Any) -> APIRouter:
    router = APIRouter()
    busy = threading.Lock()

    @router.post("/people", tags=["people"], dependencies=[guard])
    def list_people_in_video(
        video: Annotated[UploadFile | None, File(description="Driving video (MP4, MOV, WebM, MKV).")] = None,
        options: Annotated[str, Form(description="JSON: video_path, fps, max_people, finder.")] = "{}",
    ) -> dict[str, Any]:
        """Everyone in a video with their ids (as ``wanimate people``): tracks and the contact sheet (PNG data URL).

        Send the video as a file or name one under the input root with ``options.video_path``. The ids
        are what a cast job's ``options.cast`` takes.
        """
        from wanimate.native_logs import quiet_native_logs
        from wanimate.preprocess.people_sheet import list_people

        opts = _options(options)
        what = "driving video"
        if (video is None) == (opts.video_path is None):
            raise HTTPException(400, f"send the {what} as the 'video' file or as options.video_path, exactly one")
        config.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".people-", dir=config.data_dir) as folder:
            staged = Path(folder) / "video.upload"
            try:
                if video is not None:
                    save_upload(video.file, staged, config.max_video_bytes, what)
                else:
                    source = confined_path(config.input_root, opts.video_path or "", what)
                    copy_checked(source, staged, config.max_video_bytes, what)
                final = staged.with_suffix(check_video(staged, what)[1])
                staged.rename(final)
                with busy, quiet_native_logs():
                    listing = list_people(
                        final, fps=opts.fps, max_people=opts.max_people, finder=opts.finder, progress=False
                    )
            except MediaError as exc:
                raise HTTPException(exc.status, str(exc)) from None
            except WanimateError as exc:
                raise HTTPException(422, str(exc)) from None
            return listing_json(listing)

    return router
