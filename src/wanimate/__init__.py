"""wanimate: character animation and replacement with the Wan2.2-Animate family.

The data path is: inputs -> ``preprocess`` (a materials folder) -> ``generate``
(segment by segment) -> an encoded video. Each stage is importable on its own.
"""

from wanimate.errors import WanimateError

__version__ = "0.1.0"

__all__ = ["WanimateError", "__version__"]
