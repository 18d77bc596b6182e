"""The files in deploy/ name only real commands and settings: compose.yaml parses, each of its
videoqueue services runs a command our parser takes, every `VIDEOQUEUE_*` variable in it, the
Dockerfile, the env files and the systemd units is a setting, and the image installs the
extras the package has, without torch."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from videoqueue.cli import build_parser
from videoqueue.settings import Settings

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"

SETTINGS = {f"VIDEOQUEUE_{name.upper()}" for name in Settings.model_fields}
VARIABLE = re.compile(r"\bVIDEOQUEUE_[A-Z0-9_]+")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the videoqueue image."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "videoqueue:local"
    }


def _parses(argv: list[str]) -> None:
    """`videoqueue <argv>` is a command line our parser takes."""
    build_parser().parse_args(argv)


def test_compose_runs_two_api_nodes_workers_a_migration_and_its_stores(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    ours = _ours(compose)
    commands = {name: service["command"] for name, service in ours.items()}
    assert commands == {
        "migrate": ["migrate"],
        "api-1": ["serve", "--no-worker"],
        "api-2": ["serve", "--no-worker"],
        "worker": ["worker"],
    }
    for argv in commands.values():
        _parses(argv)
    for name in ("api-1", "api-2", "worker"):
        assert ours[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    for name in ("postgres", "s3", "proxy"):
        assert services[name]["healthcheck"]["test"], name
    assert services["proxy"]["ports"] == ["8000:80"]


def test_the_proxy_spreads_requests_over_every_api_node(compose: dict[str, Any]) -> None:
    upstreams = re.findall(r"^\s*server (\S+):(\d+)", (DEPLOY / "nginx.conf").read_text(), re.M)
    api_nodes = [name for name, s in _ours(compose).items() if "serve" in s["command"]]
    assert upstreams == [(name, "8000") for name in api_nodes]


def test_every_videoqueue_variable_in_deploy_is_a_setting(compose: dict[str, Any]) -> None:
    for service in _ours(compose).values():
        unknown = {name for name in service["environment"] if name.startswith("VIDEOQUEUE_")}
        assert unknown <= SETTINGS, unknown - SETTINGS
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            unknown = set(VARIABLE.findall(path.read_text())) - SETTINGS
            assert not unknown, f"{path.name}: {sorted(unknown)}"


def test_every_variable_compose_requires_is_in_the_example_env(compose: dict[str, Any]) -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (DEPLOY / "compose.yaml").read_text()))
    example = (DEPLOY / "example.env").read_text()
    given = set(re.findall(r"^(\w+)=", example, re.M))
    assert required and required <= given, required - given


def _unit(name: str) -> dict[str, list[str]]:
    """A systemd unit's keys, each with every value it is given."""
    keys: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


@pytest.mark.parametrize(
    ("unit", "argv"),
    [
        ("videoqueue-api.service", ["serve", "--no-worker"]),
        ("videoqueue-worker@.service", ["worker", "--device", "cuda:%i"]),
    ],
)
def test_the_systemd_units_run_real_commands(unit: str, argv: list[str]) -> None:
    keys = _unit(unit)
    [exec_start] = keys["ExecStart"]
    program, *args = shlex.split(exec_start)
    assert program.endswith("/bin/videoqueue") and args == argv
    _parses([arg.replace("%i", "0") for arg in args])
    assert keys["EnvironmentFile"] == ["/etc/videoqueue/videoqueue.env"]
    named = {value.partition("=")[0] for value in keys.get("Environment", [])}
    assert {name for name in named if name.startswith("VIDEOQUEUE_")} <= SETTINGS


def test_the_image_installs_the_package_without_torch_and_serves() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "RUN sh deploy/install.sh /src" in dockerfile
    assert 'ENTRYPOINT ["videoqueue"]' in dockerfile
    [cmd] = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)
    _parses(yaml.safe_load(cmd))
    steps = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert not [line for line in steps if "torch" in line]

    install = DEPLOY / "install.sh"
    subprocess.run(["sh", "-n", str(install)], check=True)
    [extras] = re.findall(r'^pip install .*\[([a-z0-9,]+)\]"$', install.read_text(), re.M)
    with (ROOT / "pyproject.toml").open("rb") as f:
        known = set(tomllib.load(f)["project"]["optional-dependencies"])
    assert set(extras.split(",")) <= known
    assert "gpu" not in extras.split(",")


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_proxy_config_is_valid_nginx(tmp_path: Path) -> None:
    # The API nodes' names resolve only inside compose's network: any address does here.
    site = tmp_path / "site.conf"
    site.write_text(re.sub(r"api-\d+:", "127.0.0.1:", (DEPLOY / "nginx.conf").read_text()))
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{ include {site}; }}\n"
    )
    (tmp_path / "logs").mkdir()
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
