"""The `diffusers` engine: open video models from a local folder in diffusers' format.

An operator binds a weights folder through the `engines` setting with a factory string whose
query carries the family and the folder, for example
`videoqueue.engines.diffusers:load?family=wan21&path=/weights/Wan2.1-T2V-1.3B-Diffusers`;
the worker's engine child calls `load` with those keyword arguments.
"""

from __future__ import annotations

from videoqueue.engines.diffusers.engine import DiffusersEngine, load

__all__ = ["DiffusersEngine", "load"]
