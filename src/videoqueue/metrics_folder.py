"""Where the processes `serve` starts write their Prometheus metrics (docs/observability.md).

prometheus-client reads `PROMETHEUS_MULTIPROC_DIR` once, when it is first imported: this
module sets it and imports nothing of prometheus-client, so a process can set it first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR = "metrics"
"""The folder under the data dir `serve` gives its processes."""


def use_metrics_dir(data_dir: Path, *, clean: bool) -> None:
    """Have the processes started from now on (and this one, if it has not imported
    prometheus-client yet) write their metrics under `data_dir`; `clean` empties it first."""
    folder = (data_dir / METRICS_DIR).resolve()
    if clean:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)


def shared() -> bool:
    """Whether this process writes its metrics to the shared folder."""
    return MULTIPROC_ENV in os.environ
