"""Batches: many runs from a jobs file, one after another here or spread over a Ray cluster.

``jobs`` reads the file, ``lease`` keeps a job's work folder to one writer, ``tasks``
is what a worker does for a job, ``cluster`` puts those on Ray, ``runner`` chooses,
``progress`` shows it. See docs/scale.md.
"""
