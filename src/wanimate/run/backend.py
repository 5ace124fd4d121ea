"""Which renderer a run uses: the Wan model when it can run here, otherwise the CPU preview."""

from __future__ import annotations

import logging
from pathlib import Path

from wanimate.errors import WanimateError

log = logging.getLogger("wanimate")
BACKENDS = ("auto", "wan", "preview")


def weights_available(weights: str) -> bool:
    """True when the weights are on this machine: a path, a random model, or a repo in the hub cache."""
    if weights.startswith("random:") or Path(weights).exists():
        return True
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(weights, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return False
    return True


def check_weights(weights: str) -> None:
    """Refuse, before preprocessing starts, weights that could never load: a typo or a missing offline copy."""
    from wanimate.models import hub

    if weights.startswith("random:"):
        from wanimate.models.configs import model_config

        model_config(weights.removeprefix("random:"))
        return
    if Path(weights).expanduser().exists():
        return
    if not hub.looks_like_repo_id(weights):
        raise WanimateError(f"--weights {weights!r} is not a file, a folder or a hub repo id like {hub.DEFAULT_REPO}")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE and not weights_available(weights):
        raise WanimateError(
            f"--weights {weights} are not in the Hugging Face cache and the hub is offline (HF_HUB_OFFLINE); "
            f"download them with {hub.download_hint(weights)}"
        )


def choose_backend(backend: str, weights: str, device: str) -> str:
    """``auto``: Wan when its weights are here and a GPU is present (or ``--device cpu`` was asked for)."""
    if backend not in BACKENDS:
        raise WanimateError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "auto":
        return backend
    import torch

    has_weights = weights_available(weights)
    can_run = torch.cuda.is_available() or device != "auto"
    if has_weights and can_run:
        return "wan"
    reason = "no GPU found" if has_weights else f"the Wan weights ({weights}) are not on this machine"
    log.info(
        "using the CPU preview renderer: %s. For the full model: `hf download Wan-AI/Wan2.2-Animate-14B` "
        "on a machine with a GPU, then `--backend wan`.",
        reason,
    )
    return "preview"
