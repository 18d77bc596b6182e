"""The `diffusers` engine: open video models from a local folder in diffusers' format.

An operator binds a weights folder through the `engines` setting with a factory string that
carries the folder and its family, for example
`videoqueue.engines.diffusers:load?family=wan21&path=/weights/Wan2.1-T2V-1.3B-Diffusers`.
The worker's engine child imports this package and asks it for the attribute after the colon;
`__getattr__` below turns such a string into the call that loads the pipeline, so no other
part of videoqueue needs to know that a factory may take arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import parse_qsl

from videoqueue.engines.diffusers.engine import DiffusersEngine, load

__all__ = ["DiffusersEngine", "load"]


def __getattr__(name: str) -> Callable[[], DiffusersEngine]:
    base, query_mark, query = name.partition("?")
    if base != "load" or not query_mark:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Percent-escapes let a path hold `&` or `=`.
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
    return functools.partial(load, **options)
