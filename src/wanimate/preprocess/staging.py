"""Where preprocessing writes: a hidden sibling folder, published whole, never over anyone's files.

The folder is built under ``.<output>.partial`` (removed on any error, and when a killed run left it,
by the next run) and swapped into place only when complete, so a folder that ``load_materials``
accepts is always complete. ``--overwrite`` replaces only a materials folder holding nothing but
materials files; the old folder is removed after the swap. Single- and N-character preprocessing
share this.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from wanimate.cast.folder import CAST_JSON
from wanimate.errors import WanimateError
from wanimate.materials.folder import MATERIAL_FILES, META_NAME
from wanimate.paths import check_apart, make_parents, os_faults, output_folder, remove_empty, temp_sibling
from wanimate.workdir import MATERIALS_LAYOUT, Layout, foreign_entries, remove_tree_if_owned

# Files only a folder that preprocessing wrote has (a cast folder's replace mode has no meta.json).
_SIGNATURE = {META_NAME, MATERIAL_FILES["pose"], CAST_JSON}


def claim_output(output: Path, overwrite: bool, layout: Layout = MATERIALS_LAYOUT) -> None:
    """Refuse to clobber anything unless asked, and even then only a materials folder holding nothing else."""
    output_folder(output, "-o")
    if not output.exists() and not output.is_symlink():
        return
    if not overwrite:
        raise WanimateError(f"{output} already exists; pass --overwrite to replace it or choose another -o path")
    entries = {p.name for p in output.iterdir()}
    if entries and not entries & _SIGNATURE:
        raise WanimateError(
            f"{output} is not empty and not a materials folder; refusing to overwrite it (choose another -o)"
        )
    foreign = foreign_entries(output, layout)
    if foreign:
        listed = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise WanimateError(
            f"{output} holds files wanimate did not write ({listed}); --overwrite replaces the whole folder, so "
            "move them out first or choose another -o"
        )


def publish_folder(staging: Path, output: Path, layout: Layout = MATERIALS_LAYOUT) -> None:
    """Swap the finished folder into place; an old folder is removed only after the swap."""
    old: Path | None = None
    if output.exists():
        old = temp_sibling(output, "old")
        remove_tree_if_owned(old, layout)  # left by a run killed mid-swap
        os.replace(output, old)
    try:
        os.replace(staging, output)
    except BaseException:
        if old is not None:
            os.replace(old, output)
        raise
    if old is not None:
        remove_tree_if_owned(old, layout)


@contextlib.contextmanager
def staged_folder(
    output: Path, overwrite: bool, inputs: Mapping[str, Path | None], layout: Layout = MATERIALS_LAYOUT
) -> Iterator[Path]:
    """A fresh staging folder to fill; published at ``output`` when the block ends without an error.

    Checked first: ``output`` may be replaced (``overwrite``) and is apart from every one of ``inputs``.
    ``layout`` names what may be in such a folder (materials, or a cast folder).
    """
    output = Path(output).absolute()
    claim_output(output, overwrite, layout)
    check_apart(inputs, {"-o": output})
    with os_faults():
        staging = temp_sibling(output)
        remove_tree_if_owned(staging, layout)  # left by a killed run
        if os.path.lexists(staging):
            raise WanimateError(f"{staging} is in the way and holds files wanimate did not write; move it away")
        created = make_parents(output)
        try:
            staging.mkdir()  # the umask applies, as to any folder the user makes
            yield staging
            publish_folder(staging, output, layout)
        except BaseException:
            remove_tree_if_owned(staging, layout)
            remove_empty(created)
            raise
