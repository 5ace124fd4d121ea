"""The model session owns every runtime change: a reused session equals a fresh load, option by option.

Tiny random model, fp32, CPU, one 9-frame segment of 8 steps (enough for both step caches to skip
steps). For every option a session can change, one session runs the default, then the option,
then the default again; the second and third outputs must equal fresh sessions' outputs exactly.
Options that are exact anyway (motion memo, VAE tiling below the tile size, group offload, the
text encoder's placement) are checked by what the session leaves behind instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_runs import BASE
from PIL import Image
from test_lora_relight import _native_lora
from test_speed import _lightx2v_style_lora

from wanimate.errors import WanimateError
from wanimate.generate import GenerateSettings, generate
from wanimate.generate.engine import SegmentGenerator
from wanimate.generate.runtime import prepare
from wanimate.models.adapters import DISTILL, RELIGHT
from wanimate.models.caching import _MOTION
from wanimate.models.factory import build_pipeline
from wanimate.models.loading import LoadedModel
from wanimate.models.session import ModelSession, Runtime
from wanimate.testing.synthetic import write_materials

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS = dict(steps=8, seed=3)


@pytest.fixture(scope="module")
def materials(tmp_path_factory):
    from wanimate.materials import load_materials

    return load_materials(write_materials(tmp_path_factory.mktemp("session") / "m", num_frames=9))


@pytest.fixture(scope="module")
def loras(tmp_path_factory) -> dict[str, Path]:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("loras")
    transformer = build_pipeline("tiny").transformer
    torch.save({"state_dict": _native_lora(transformer, zero_b=False, seed=2)}, root / "relighting_lora.ckpt")
    save_file(_lightx2v_style_lora(transformer, 0.5), str(root / "distill.safetensors"))
    return {"relight": root / "relighting_lora.ckpt", "distill": root / "distill.safetensors"}


def _wrapped(loras) -> ModelSession:
    """A session around a freshly built tiny pipeline that carries a relighting LoRA."""
    model = LoadedModel(build_pipeline("tiny"), "random", "random:tiny", loras["relight"])
    return ModelSession.wrap(model, dtype="fp32", device="cpu")


def _loaded() -> ModelSession:
    """A session that loads random:tiny itself, so it can load again."""
    return ModelSession("random:tiny", dtype="fp32", device="cpu")


def _run(session: ModelSession, materials, **options) -> np.ndarray:
    settings = GenerateSettings(**{**BASE, **STEPS, "weights": "random:tiny", **options})
    resolved, _ = prepare(session, settings, materials)
    generator = SegmentGenerator(session.pipeline, materials, resolved, session.device)
    return torch.cat([out.frames for out in generator.run()]).numpy()


_FRESH: dict[tuple, np.ndarray] = {}


def _fresh(make, materials, **options) -> np.ndarray:
    key = (make.__name__, tuple(sorted(options.items())))
    if key not in _FRESH:
        _FRESH[key] = _run(make(), materials, **options)
    return _FRESH[key]


def _options(loras) -> dict[str, dict]:
    return {
        "relight": dict(relight=True),
        "relight_scale": dict(relight=True, relight_scale=0.5),
        "distill": dict(distill_lora=str(loras["distill"])),
        "distill_scale": dict(distill_lora=str(loras["distill"]), distill_scale=0.3),
        "shift": dict(shift=2.0),
        "attention": dict(attention="_native_math"),
        "fbc": dict(cache="fbc", cache_threshold=0.5),
        "taylorseer": dict(cache="taylorseer", cache_interval=2),
    }


IN_PLACE = ["relight", "relight_scale", "distill", "distill_scale", "shift", "attention", "fbc", "taylorseer"]


@pytest.mark.parametrize("name", IN_PLACE)
def test_an_option_changed_in_place_gives_what_a_fresh_load_gives(materials, loras, name):
    wanted = _options(loras)[name]
    make = lambda: _wrapped(loras)  # noqa: E731
    make.__name__ = "wrapped"
    base = _fresh(make, materials, relight=False)
    other = _fresh(make, materials, **{"relight": False, **wanted})
    if name != "attention":  # the math backend differs from SDPA by rounding only
        assert np.abs(other - base).max() > 1e-3, "the option must change the output for this test to mean anything"
    session = _wrapped(loras)
    assert np.array_equal(_run(session, materials, relight=False), base)
    assert np.array_equal(_run(session, materials, **{"relight": False, **wanted}), other)
    assert np.array_equal(_run(session, materials, relight=False), base)  # and back: nothing left behind
    assert session.loads == 0  # all in place


def test_the_distill_lora_is_switched_off_when_no_longer_asked_for(tmp_path, materials, loras):
    """The bug this session fixes: a second generate() without the LoRA returned the LoRA's output."""
    session = _loaded()
    plain_dir, lora_dir, again_dir = tmp_path / "plain", tmp_path / "lora", tmp_path / "again"
    common = dict(**BASE, **STEPS, weights="random:tiny", device="cpu")
    generate(materials, tmp_path / "a.mp4", GenerateSettings(**common), session=_loaded(), save_frames=plain_dir)
    generate(
        materials,
        tmp_path / "b.mp4",
        GenerateSettings(**common, distill_lora=str(loras["distill"])),
        session=session,
        save_frames=lora_dir,
    )
    generate(materials, tmp_path / "c.mp4", GenerateSettings(**common), session=session, save_frames=again_dir)

    def frames(folder: Path) -> np.ndarray:
        return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])

    assert not np.array_equal(frames(lora_dir), frames(plain_dir))
    assert np.array_equal(frames(again_dir), frames(plain_dir))
    assert session.loads == 1


@pytest.mark.parametrize(
    ("name", "options"),
    [("fp8", dict(quantize="fp8")), ("int8", dict(quantize="int8")), ("group", dict(offload="group"))],
)
def test_a_change_that_cannot_be_undone_loads_again(materials, name, options):
    base = _fresh(_loaded, materials)
    other = _fresh(_loaded, materials, **options)
    session = _loaded()
    assert np.array_equal(_run(session, materials), base)
    assert np.array_equal(_run(session, materials, **options), other)
    assert session.loads == 2
    assert np.array_equal(_run(session, materials, **options), other)
    assert session.loads == 2  # the same options again: nothing to do
    assert np.array_equal(_run(session, materials), base)
    assert session.loads == 3
    if name == "fp8":
        assert session.pipeline.transformer.blocks[0].attn1.to_q.weight.dtype == torch.float32


def test_exact_options_leave_nothing_behind(materials, loras):
    session = _wrapped(loras)
    transformer = session.loaded().pipeline.transformer
    _run(session, materials, vae_tiling=True, motion_memo=True)
    assert session.pipeline.vae.use_tiling
    assert _MOTION in transformer.motion_encoder._diffusers_hook.hooks
    _run(session, materials, vae_tiling=False, motion_memo=False)
    assert not session.pipeline.vae.use_tiling
    assert _MOTION not in transformer.motion_encoder._diffusers_hook.hooks

    loaded = _loaded()
    _run(loaded, materials, text_encoder_cpu=True)
    _run(loaded, materials)
    assert loaded.loads == 2  # the encoder's placement is a load-time choice


def test_adapters_stay_loaded_but_only_the_wanted_ones_are_active(materials, loras):
    session = _wrapped(loras)
    _run(session, materials, relight=True, distill_lora=str(loras["distill"]))
    adapters = session._adapters
    assert adapters.active() == {RELIGHT: 1.0, DISTILL: 1.0}
    _run(session, materials, relight=False)
    assert adapters.active() == {} and set(session.pipeline.transformer.peft_config) == {RELIGHT, DISTILL}


def test_compiling_is_undone_by_a_reload_and_a_wrapped_session_says_so(materials, loras):
    compiled = Runtime(compile=True)
    assert ModelSession._needs_reload(compiled, Runtime())
    assert ModelSession._needs_reload(compiled, Runtime(compile=True, attention="_native_math"))
    assert not ModelSession._needs_reload(compiled, Runtime(compile=True, relight=0.5, distill="d.safetensors"))
    assert not ModelSession._needs_reload(Runtime(), Runtime(compile=True))  # compiling is done in place
    session = _wrapped(loras)
    _run(session, materials, quantize="fp8")
    with pytest.raises(WanimateError, match="load it again"):
        _run(session, materials)


def test_constructing_the_engine_changes_nothing(materials):
    pipe = build_pipeline("tiny")
    before = {name: p.clone() for name, p in pipe.transformer.named_parameters()}
    scheduler = pipe.scheduler
    settings = GenerateSettings(**BASE, quantize="fp8", cache="fbc", attention="_native_math", shift=2.0)
    SegmentGenerator(pipe, materials, settings, torch.device("cpu"))
    assert pipe.scheduler is scheduler
    assert getattr(pipe.transformer.blocks[0], "_diffusers_hook", None) is None
    assert all(torch.equal(p, before[name]) for name, p in pipe.transformer.named_parameters())


def test_no_library_object_carries_wanimate_state(materials, loras):
    session = _wrapped(loras)
    _run(session, materials, relight=True, distill_lora=str(loras["distill"]), cache="fbc", shift=2.0)
    pipe = session.pipeline
    for component in filter(None, pipe.components.values()):
        objects = list(component.modules()) if isinstance(component, torch.nn.Module) else [component]
        for obj in objects:
            assert not [k for k in vars(obj) if k.startswith("_wanimate")], type(obj)
    source = Path(__file__).resolve().parents[1] / "src" / "wanimate"
    assert not [p for p in source.rglob("*.py") if "._wanimate" in p.read_text()]


def test_a_session_for_other_weights_is_refused(tmp_path, materials):
    with pytest.raises(WanimateError, match="the model session holds random:tiny"):
        generate(materials, tmp_path / "o.mp4", GenerateSettings(**BASE, device="cpu"), session=_loaded())


def test_the_mode_override_means_the_same_for_a_path_and_a_materials_object(tmp_path):
    """`generate(..., mode=)` overrides the materials' mode whichever form they come in (it used to differ)."""
    from wanimate.materials import load_materials

    folder = write_materials(tmp_path / "m", num_frames=9, mode="replace")
    session = _loaded()
    settings = GenerateSettings(**BASE, steps=2, weights="random:tiny", device="cpu")

    def frames(source, name: str, mode: str | None) -> np.ndarray:
        generate(source, tmp_path / f"{name}.mp4", settings, mode=mode, session=session, save_frames=tmp_path / name)
        return np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / name).glob("*.png"))])

    by_path = frames(folder, "path", "animate")
    by_object = frames(load_materials(folder), "object", "animate")
    as_stored = frames(load_materials(folder), "stored", None)
    assert np.array_equal(by_path, by_object)
    assert not np.array_equal(by_path, as_stored)  # replace mode (the folder's own) really is different

    animate_only = write_materials(tmp_path / "a", num_frames=9)
    for source in (animate_only, load_materials(animate_only)):
        with pytest.raises(WanimateError, match=r"src_bg\.mp4"):
            generate(source, tmp_path / "x.mp4", settings, mode="replace", session=session)


def test_a_multianimate_session_is_reused_and_loads_again_for_more_characters(tmp_path, tiny_character_materials):
    """MultiAnimate lives in the same session: placement changes load again; --adapter auto follows the characters."""
    from engine_runs import BASE as ANIMATE_BASE

    from wanimate.materials.characters import load_character_materials
    from wanimate.multianimate.settings import MultiAnimateSettings
    from wanimate.testing.synthetic import write_character_materials

    common = {k: v for k, v in ANIMATE_BASE.items() if k not in ("clip_input", "sampler")}
    settings = MultiAnimateSettings(**common, steps=1, weights="random:tiny", device="cpu")
    session = ModelSession("random:tiny", dtype="fp32", device="cpu", model="multianimate", adapter="auto")

    def frames(materials, **options) -> np.ndarray:
        resolved, _ = prepare(session, dataclasses.replace(settings, **options), materials)
        generator = SegmentGenerator(session.model, materials, resolved, session.device)
        return torch.cat([out.frames for out in generator.run()]).numpy()

    plain = frames(tiny_character_materials)
    assert session.model.max_characters == 3 and session.loads == 1
    assert np.array_equal(frames(tiny_character_materials, vae_tiling=True), plain)
    assert session.loads == 1
    frames(tiny_character_materials, quantize="int8")
    assert session.loads == 2
    assert np.array_equal(frames(tiny_character_materials), plain)  # back: loaded again, same output
    five = write_character_materials(tmp_path / "five", characters=5, num_frames=9, height=32, width=80)
    five = load_character_materials(five)
    frames(five)
    assert session.model.max_characters == 7 and session.loads == 4
