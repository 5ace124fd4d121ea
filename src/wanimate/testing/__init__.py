"""Test and benchmark fixtures: NOT part of the data path, and not needed to use wanimate.

They are installed because the benchmarks (``wanimate bench ...``) use them too, and so that the
test suite and other projects' tests can build the same inputs:

- :mod:`wanimate.testing.synthetic`: materials folders of smooth random content, any size and length;
- :mod:`wanimate.testing.official_export`: a pipeline saved in the official Wan2.2-Animate layout;
- :mod:`wanimate.testing.demo`: demo materials for the preview renderer, without preprocessing;
- :mod:`wanimate.testing.quality`: an independent pose estimator and colour checks for renders.
"""
