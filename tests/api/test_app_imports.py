"""The API process loads no decoder or chain library: they are the sandbox's and the workers'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WORKER_ONLY = ("av", "numpy", "cv2", "PIL", "web3")

BUILD_THE_APP = """
import sys
from pathlib import Path
from videoqueue.api.app import create_app
from videoqueue.settings import Settings
create_app(Settings(data_dir=Path(sys.argv[1])))
print(",".join(sorted(m for m in sys.argv[2:] if m in sys.modules)))
"""


def test_building_the_app_imports_no_decoder_or_web3(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUILD_THE_APP, str(tmp_path), *WORKER_ONLY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "", f"the API process imported {done.stdout.strip()}"
