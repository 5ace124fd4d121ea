"""The materials folder: the documented hand-off between preprocessing and generation."""

from wanimate.materials.folder import (
    FORMAT_VERSION,
    MATERIAL_FILES,
    AudioSource,
    Materials,
    MaterialsMeta,
    load_materials,
    write_meta,
)

__all__ = [
    "FORMAT_VERSION",
    "MATERIAL_FILES",
    "AudioSource",
    "Materials",
    "MaterialsMeta",
    "load_materials",
    "write_meta",
]
