"""The image itself, built without a Docker daemon (``scripts/image/build.sh``: buildah FROM the Debian base
made by debootstrap) and run without one: its entrypoints answer ``--help`` as user 10001, on a read-only
root file system (runc, as a kubelet would run it), bytecode was compiled at build time, the OCI archive
names the image for ``ctr images import``, and the image's size stays bounded.

Uses the cached image of ``./dev image`` and builds it when missing (minutes cold). Needs root, buildah
and debootstrap; the read-only check needs runc (the node's, built by ``scripts/node/build.sh``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.timeout(1800)]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "image" / "build.sh"
IMAGE_USER = "10001:10001"
MAXIMUM_IMAGE_MEGABYTES = 500  # 430 MB measured; dev dependencies or build caches would push it over


@dataclass(frozen=True)
class BuiltImage:
    archive: Path
    reference: str


def buildah(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """buildah on the project's image storage (scripts/image/common.sh), capturing its output."""
    command = ["bash", "-c", 'source scripts/image/common.sh && image_buildah "$@"', "buildah", *arguments]
    result = subprocess.run(command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=False)
    if check:
        assert result.returncode == 0, f"buildah {arguments} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def built_image() -> BuiltImage:
    if os.geteuid() != 0 or not shutil.which("buildah") or not shutil.which("debootstrap"):
        pytest.fail("building the image needs root, buildah and debootstrap (apt-get install buildah debootstrap)")
    result = subprocess.run(["bash", BUILD_SCRIPT], cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"scripts/image/build.sh failed:\n{result.stdout}\n{result.stderr}"
    archive, reference = result.stdout.strip().splitlines()[-2:]
    return BuiltImage(archive=Path(archive), reference=reference)


@pytest.fixture(scope="module")
def image_config(built_image: BuiltImage) -> dict[str, Any]:
    inspected = buildah("inspect", "--type", "image", built_image.reference).stdout
    config: dict[str, Any] = json.loads(inspected)["OCIv1"]["config"]
    return config


@pytest.fixture
def container_root(built_image: BuiltImage) -> Iterator[tuple[str, Path]]:
    """A working container of the image and its mounted root file system; removed afterwards."""
    name = f"sluice-test-{uuid.uuid4().hex[:12]}"
    buildah("from", "--pull=never", "--name", name, built_image.reference)
    try:
        yield name, Path(buildah("mount", name).stdout.strip())
    finally:
        buildah("rm", name, check=False)


def output_in_working_container(container: str, root: Path, *command: str) -> str:
    """What ``command`` prints, run by ``buildah run`` as the image's user. The output is written to a file in the
    container and read from its mounted root: buildah's relay of a chroot-isolated process's stdout came back
    empty once, with exit status 0, in a loaded full run (the clean-clone run at 80596a5)."""
    name = f"output-{uuid.uuid4().hex[:12]}"
    buildah("run", "--isolation", "chroot", container, "--", "sh", "-c", f'"$@" > /tmp/{name} 2>&1', "sh", *command)
    return (root / "tmp" / name).read_text()


def find_runc() -> Path:
    node_runc = sorted(REPOSITORY_ROOT.glob(".cache/node/*/bin/runc"))
    found = node_runc[-1] if node_runc else shutil.which("runc")
    if not found:
        pytest.fail("no runc: build the node's binaries (scripts/node/build.sh) or apt-get install runc")
    return Path(found)


def run_in_runc(
    root: Path, config: dict[str, Any], arguments: list[str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``arguments`` in the image the way a pod with readOnlyRootFilesystem runs it: runc's default
    spec (new namespaces, no capabilities, no new privileges) with the root read-only, the image's user
    and environment, and a tmpfs at /tmp as the chart's emptyDir."""
    bundle = tmp_path / f"bundle-{uuid.uuid4().hex[:8]}"
    bundle.mkdir()
    runc = find_runc()
    subprocess.run([runc, "spec", "--bundle", bundle], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    uid, gid = (int(part) for part in str(config["User"]).split(":"))
    spec["root"] = {"path": str(root), "readonly": True}
    spec["process"].update(
        terminal=False,
        user={"uid": uid, "gid": gid},
        args=arguments,
        env=config["Env"],
        cwd=config.get("WorkingDir") or "/",
    )
    spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})
    (bundle / "config.json").write_text(json.dumps(spec))
    state = tmp_path / "runc-state"
    command: list[str | Path] = [
        runc,
        "--root",
        state,
        "run",
        "--bundle",
        bundle,
        f"sluice-test-{uuid.uuid4().hex[:12]}",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_archive_names_the_image_for_containerd(built_image: BuiltImage) -> None:
    assert built_image.reference.startswith("localhost/sluice:")
    with tarfile.open(built_image.archive) as archive:
        index_file = archive.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
    (manifest,) = index["manifests"]
    assert manifest["annotations"]["io.containerd.image.name"] == built_image.reference
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == built_image.reference


def test_the_image_runs_as_user_10001_with_its_entrypoint(
    image_config: dict[str, Any], container_root: tuple[str, Path]
) -> None:
    assert image_config["User"] == IMAGE_USER
    assert image_config["Entrypoint"] == ["sluice"]
    container, root = container_root
    # buildah run applies the image's user, environment and working directory.
    identity = output_in_working_container(container, root, "id", "-u").strip()
    assert identity == "10001"
    for entrypoint in ("sluice", "sluice-operator"):
        assert "Usage" in output_in_working_container(container, root, entrypoint, "--help")


def test_the_entrypoints_run_on_a_read_only_root_file_system(
    image_config: dict[str, Any], container_root: tuple[str, Path], tmp_path: Path
) -> None:
    _, root = container_root
    for arguments in ([*image_config["Entrypoint"], "--help"], ["sluice-operator", "--help"]):
        result = run_in_runc(root, image_config, arguments, tmp_path)
        assert result.returncode == 0, f"{arguments}: {result.stdout}\n{result.stderr}"
        assert "Usage" in result.stdout
    # The root really is read-only, and /tmp (the chart's emptyDir) is writable.
    probe = (
        "import pathlib; pathlib.Path('/tmp/probe').write_text('x'); pathlib.Path('/opt/sluice/probe').write_text('x')"
    )
    result = run_in_runc(root, image_config, ["python3", "-c", probe], tmp_path)
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_bytecode_was_compiled_at_build_time(container_root: tuple[str, Path]) -> None:
    """As root and with bytecode writing on, importing everything the entrypoints import writes no .pyc:
    each module already had its bytecode, compiled at build time."""
    container, root = container_root
    upper = root.parent / "diff"  # the container's own overlay layer, next to its merged mount
    assert upper.is_dir(), f"expected buildah's overlay layout: {upper}"
    for entrypoint in ("sluice", "sluice-operator"):
        buildah("run", "--isolation", "chroot", "--user", "0:0", container, "--",
                "env", "-u", "PYTHONDONTWRITEBYTECODE", entrypoint, "--help")  # fmt: skip
    written = sorted(str(path.relative_to(upper)) for path in upper.rglob("*.pyc"))
    assert written == [], f"bytecode written at run time: {written[:10]}"


def test_the_image_size_stays_bounded(built_image: BuiltImage, container_root: tuple[str, Path]) -> None:
    _, root = container_root
    megabytes = int(subprocess.run(["du", "-sm", root], capture_output=True, text=True, check=True).stdout.split()[0])
    archive_megabytes = built_image.archive.stat().st_size / 2**20
    print(f"image {built_image.reference}: {megabytes} MB unpacked, {archive_megabytes:.0f} MB OCI archive")
    assert megabytes < MAXIMUM_IMAGE_MEGABYTES
