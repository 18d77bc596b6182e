"""The API process loads no decoder, chain or model library: they are the sandbox's and the
workers'. Checking a model bound to a diffusers family reads a table, not the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WORKER_ONLY = ("av", "numpy", "cv2", "PIL", "web3", "torch", "diffusers", "transformers")

BOUND = """
[models."wan-2.1-pro-image-to-video"]
engine = "wan"
fps = 16
[models."wan-2.1-pro-image-to-video".constraints]
durations = ["5s"]
"""
WAN21 = "videoqueue.engines.diffusers:load?family=wan21&path=/weights/Wan2.1-I2V-14B-720P-Diffusers"

BUILD_THE_APP = """
import sys
from pathlib import Path
from videoqueue.api.app import create_app
from videoqueue.settings import Settings
data, factory = Path(sys.argv[1]), sys.argv[2]
create_app(Settings(data_dir=data, catalog_path=data / "catalog.toml", engines={"wan": factory}))
print(",".join(sorted(m for m in sys.argv[3:] if m in sys.modules)))
"""


def test_building_the_app_imports_no_decoder_web3_or_torch(tmp_path: Path) -> None:
    (tmp_path / "catalog.toml").write_text(BOUND)
    done = subprocess.run(
        [sys.executable, "-c", BUILD_THE_APP, str(tmp_path), WAN21, *WORKER_ONLY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "", f"the API process imported {done.stdout.strip()}"
