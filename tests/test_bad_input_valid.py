"""Bad input, part 4: inputs that look awkward but are valid must work, and give the right output.

Every image mode converts by its bit depth (never clipped to white, transparency over black);
rotated, variable-frame-rate and odd-sized videos, non-ASCII paths, names near the 255-byte limit,
``--area 720p`` and the Python API's ``example:`` inputs all succeed, leave the user's files as they
were and no temporary file behind.
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from bad_input import invoke, snapshot
from PIL import Image
from test_preprocess_media import carphone_frames
from test_video_clips import write_clip

from wanimate.materials import load_materials
from wanimate.preprocess.reference import load_character
from wanimate.preprocess.sizing import parse_area


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((96, 96)))


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def _png16(path: Path, rgb16: np.ndarray) -> None:
    """A 48-bit RGB PNG (Pillow cannot write one), written chunk by chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w, _ = rgb16.shape
    rows = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _half_transparent(rgb: np.ndarray) -> np.ndarray:
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, : rgb.shape[1] // 2] = 0
    return alpha


def _expected_half_black(rgb: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    out[:, : rgb.shape[1] // 2] = 0
    return out


def _palette(rgb: np.ndarray, transparent: bool) -> Image.Image:
    """63 colours; with ``transparent``, the left half uses a 64th entry marked transparent."""
    image = Image.fromarray(rgb).quantize(63)
    if not transparent:
        return image
    pixels = np.asarray(image).copy()
    pixels[:, : rgb.shape[1] // 2] = 63
    out = Image.fromarray(pixels, "P")
    out.putpalette([*image.getpalette()[: 63 * 3], 255, 255, 255])
    out.info["transparency"] = 63
    return out


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


# name -> (write the file, the RGB it must load as, mean absolute tolerance)
MODES = {
    "L": lambda p, s: (_save(Image.fromarray(_grey(s)), p / "a.png"), np.dstack([_grey(s)] * 3), 0),
    "I;16-png": lambda p, s: (
        _save(Image.fromarray(_grey(s).astype(np.uint16) * 257), p / "a.png"),
        np.dstack([_grey(s)] * 3),
        0.5,
    ),
    "I;16B-tiff": lambda p, s: (
        _save(Image.frombytes("I;16B", s.shape[1::-1], (_grey(s).astype(">u2") * 257).tobytes()), p / "a.tif"),
        np.dstack([_grey(s)] * 3),
        0.5,
    ),
    "I-tiff": lambda p, s: (
        _save(Image.fromarray(_grey(s).astype(np.int32) * 257), p / "a.tif"),
        np.dstack([_grey(s)] * 3),
        0.5,
    ),
    "F-tiff": lambda p, s: (
        _save(Image.fromarray(_grey(s).astype(np.float32) / 255), p / "a.tif"),
        np.dstack([_grey(s)] * 3),
        0.5,
    ),
    "RGB-48bit-png": lambda p, s: (_png16(p / "a.png", s.astype(np.uint16) * 257) or p / "a.png", s, 0),
    "RGBA": lambda p, s: (
        _save(Image.fromarray(np.dstack([s, _half_transparent(s)])), p / "a.png"),
        _expected_half_black(s),
        0,
    ),
    "LA": lambda p, s: (
        _save(Image.fromarray(np.dstack([_grey(s), _half_transparent(s)]), "LA"), p / "a.png"),
        _expected_half_black(np.dstack([_grey(s)] * 3)),
        0,
    ),
    "P-transparency": lambda p, s: (
        _save(_palette(s, True), p / "a.png"),
        _expected_half_black(np.asarray(_palette(s, False).convert("RGB"))),
        0,
    ),
    "P": lambda p, s: (_save(_palette(s, False), p / "a.gif"), np.asarray(_palette(s, False).convert("RGB")), 0),
    "CMYK-jpeg": lambda p, s: (_save(Image.fromarray(s).convert("CMYK"), p / "a.jpg", quality=95), s, 8),
    "CMYK-tiff": lambda p, s: (_save(Image.fromarray(s).convert("CMYK"), p / "a.tif"), s, 1),
    "YCbCr-tiff": lambda p, s: (_save(Image.fromarray(s).convert("YCbCr"), p / "a.tif"), s, 3),
    "LAB-tiff": lambda p, s: (_save(Image.fromarray(s).convert("LAB"), p / "a.tif"), s, 12),
    "1-bilevel": lambda p, s: (
        _save(Image.fromarray(_grey(s)).convert("1"), p / "a.png"),
        np.dstack([np.asarray(Image.fromarray(_grey(s)).convert("1").convert("L"))] * 3),
        0,
    ),
    "WebP-alpha": lambda p, s: (
        _save(Image.fromarray(np.dstack([s, _half_transparent(s)])), p / "a.webp", lossless=True),
        _expected_half_black(s),
        0,
    ),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_image_mode_loads_as_the_picture_it_is(mode: str, source: np.ndarray, tmp_path: Path) -> None:
    path, expected, tolerance = MODES[mode](tmp_path, source)
    before = path.read_bytes()
    pixels = load_character(path).pixels
    assert pixels.shape == expected.shape and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - expected.astype(int)).mean() <= tolerance
    assert path.read_bytes() == before


def test_exif_orientation_turns_the_image_upright(source: np.ndarray, tmp_path: Path) -> None:
    wide = np.ascontiguousarray(np.concatenate([source, source[:, :32]], axis=1))  # 128 wide, 96 high
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.fromarray(wide).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    character = load_character(tmp_path / "phone.jpg")
    assert character.pixels.shape[:2] == (128, 96) and character.original_size == (96, 128)


def test_named_areas_are_the_sizes_bench_uses() -> None:
    from wanimate.bench.generate import parse_resolution

    assert parse_area("720p") == (1280, 720) == parse_resolution("720p")
    assert parse_area("480P") == (832, 480)


def _awkward_videos(root: Path, carphone: Path) -> dict[str, Path]:
    frames = carphone_frames(carphone, 8)
    odd = [np.ascontiguousarray(f[10:83, 20:117]) for f in frames]  # 97 x 73
    return {
        "rotated": write_clip(root / "rotated.mp4", frames, rotation=-90),
        "vfr": write_clip(
            root / "vfr.mkv",
            frames,
            pts=[0, 2, 3, 7, 8, 11, 15, 16],
            time_base=Fraction(1, 60),
            container_format="matroska",
        ),
        "odd": write_clip(root / "odd.mp4", odd, pix_fmt="yuv444p", options={"crf": "10"}),
    }


def _frames_ok(materials_dir: Path, frames: int) -> None:
    materials = load_materials(materials_dir)
    assert materials.num_frames == frames
    assert materials.width % 16 == 0 and materials.height % 16 == 0


def _no_temporaries(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if ".partial" in p.name or p.name.endswith((".old", ".upload"))]
    assert leftovers == []


def _preprocess(capsys, image: Path, video: Path, out: Path, *extra: str) -> str:
    argv = [
        "preprocess",
        "--image",
        str(image),
        "--video",
        str(video),
        "-o",
        str(out),
        "--quiet",
        "--pose-workers",
        "1",
    ]
    code, out_text, err = invoke([*argv, *extra], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "wrote" in out_text
    return out_text


def test_rotated_video_in_a_non_ascii_folder_with_a_long_name(bad_input_library, carphone_video, tmp_path, capsys):
    """Replace mode follows the upright (rotated) video; a 250-byte output name still writes atomically."""
    home = tmp_path / "ダンス é"
    home.mkdir()
    videos = _awkward_videos(home, carphone_video)
    image = home / "キャラ.png"
    image.write_bytes(bad_input_library["image"].read_bytes())
    before = snapshot(home)
    out = home / ("素材" * 41 + "m")  # 247 bytes
    _preprocess(capsys, image, videos["rotated"], out, "--mode", "replace", "--area", "128x128")
    materials = load_materials(out)
    assert materials.num_frames == 8 and materials.height > materials.width  # 144x176 upright
    assert {k: v for k, v in snapshot(home).items() if not k.startswith(out.name)} == before
    _no_temporaries(home)


def test_variable_frame_rate_and_odd_sized_videos(bad_input_library, carphone_video, tmp_path, capsys):
    videos = _awkward_videos(tmp_path, carphone_video)
    before = snapshot(tmp_path)
    for name, frames in (("vfr", 8), ("odd", 8)):
        _preprocess(capsys, bad_input_library["image"], videos[name], tmp_path / name, "--mode", "replace",
                    "--area", "64x64")  # fmt: skip
        _frames_ok(tmp_path / name, frames)
    odd = load_materials(tmp_path / "odd")
    assert odd.width > odd.height  # 97x73 keeps its landscape aspect
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before
    _no_temporaries(tmp_path)


@pytest.mark.parametrize("mode", ["I;16-png", "CMYK-jpeg", "P-transparency"])
def test_awkward_image_modes_preprocess_end_to_end(mode, bad_input_library, tmp_path, capsys):
    from skimage import data

    astronaut = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128)))
    path, expected, _ = MODES[mode](tmp_path, astronaut)
    _preprocess(capsys, path, bad_input_library["video"], tmp_path / "m", "--area", "64x64", "--no-retarget")
    ref = np.asarray(Image.open(tmp_path / "m" / "src_ref.png").convert("RGB")).astype(float)
    assert abs(ref.mean() - expected.astype(float).mean()) < 12  # the picture, not a white (clipped) page


def test_python_preprocess_accepts_example_inputs(bad_input_library, tmp_path):
    from wanimate.preprocess import preprocess

    materials = preprocess(
        "example:astronaut", bad_input_library["video"], tmp_path / "m", area=(64, 64), progress=False, pose_workers=1
    )
    assert materials.num_frames == 8
    assert Path(materials.meta.provenance["inputs"]["image"]["path"]).name == "astronaut.png"


def test_png_with_a_gamma_chunk_and_text_metadata_loads(source: np.ndarray, tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "ünïcödé " * 50)
    buffer = io.BytesIO()
    Image.fromarray(source).save(buffer, format="PNG", pnginfo=info)
    (tmp_path / "meta.png").write_bytes(buffer.getvalue())
    assert np.array_equal(load_character(tmp_path / "meta.png").pixels, source)
