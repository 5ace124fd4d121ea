"""Hugging Face hub access: resolving repo ids through the standard cache, and where conversions live.

Downloads go through ``snapshot_download`` so weights land in (and are found offline from) the same
cache every other Hugging Face tool uses. An official-layout repo is converted once into
``$HF_HOME/wanimate/converted/<org>--<name>--<commit>``; the commit in the name means a new upstream
revision gets a fresh conversion instead of silently reusing a stale one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wanimate.errors import WanimateError

DEFAULT_REPO = "Wan-AI/Wan2.2-Animate-14B"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_repo_id(text: str) -> bool:
    return bool(_REPO_ID.match(text)) and ".." not in text


def download_hint(repo_id: str, folder: str | None = None, option: str = "--weights", use: str | None = None) -> str:
    """How to fetch ``repo_id`` by hand; ``use`` says what to do with the folder instead (``{local}`` is its path)."""
    local = "./" + repo_id.split("/")[-1]
    include = f" --include '{folder}/*'" if folder else ""
    target = f"{local}/{folder}" if folder else local
    then = use.format(local=target) if use is not None else f"pass `{option} {target}`"
    return f"`hf download {repo_id}{include} --local-dir {local}` and {then}"


@contextmanager
def hub_progress(enabled: bool) -> Iterator[None]:
    """Show or hide huggingface_hub's download bars for the duration of a call."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if enabled:
        enable_progress_bars()
    else:
        disable_progress_bars()
    try:
        yield
    finally:
        if was_disabled:
            disable_progress_bars()
        else:
            enable_progress_bars()


def resolve_repo(
    repo_id: str,
    revision: str | None = None,
    progress: bool = True,
    *,
    folder: str | None = None,
    option: str = "--weights",
    use: str | None = None,
) -> Path:
    """The local snapshot folder of ``repo_id``, downloading what is missing (or, offline, the cached copy).

    ``folder`` limits the download to one subfolder (a repo holding several checkpoints); ``option``
    names the command-line option the hint tells the user to pass, or ``use`` says what to do
    instead (a command without that option, see :func:`download_hint`).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    patterns = [f"{folder}/*"] if folder else None
    try:
        with hub_progress(progress):
            return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        what = f"{repo_id}/{folder}" if folder else repo_id
        raise WanimateError(
            f"weights {what!r} are not in the Hugging Face cache and could not be downloaded ({reason}); "
            f"download them with {download_hint(repo_id, folder, option, use)}"
        ) from exc


def converted_root() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "wanimate" / "converted"


def converted_dir(repo_id: str, snapshot: Path) -> Path:
    return converted_root() / f"{repo_id.replace('/', '--')}--{snapshot.name}"


@dataclass(frozen=True)
class CachedWeights:
    """One copy of weights wanimate runs (Wan-Animate, MultiAnimate and its Wan2.1-I2V base), for ``wanimate info``."""

    name: str
    kind: str  # "hub" or "converted"
    size_bytes: int
    path: Path


def find_cached_weights() -> list[CachedWeights]:
    """Wan-Animate, MultiAnimate and Wan2.1-I2V repos in the hub cache plus wanimate's converted folders."""
    from huggingface_hub import scan_cache_dir

    found: list[CachedWeights] = []
    try:
        cache = scan_cache_dir()
    except Exception:  # an absent or unreadable cache simply has nothing to list
        cache = None
    for repo in cache.repos if cache else []:
        name = repo.repo_id.lower()
        if ("wan" in name and "animate" in name) or "multianimate" in name or "wan2.1-i2v" in name:
            found.append(CachedWeights(repo.repo_id, "hub", repo.size_on_disk, Path(repo.repo_path)))
    root = converted_root()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if (folder / "model_index.json").is_file():
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            found.append(CachedWeights(folder.name, "converted", size, folder))
    return found
