"""Images for a local node that pulls nothing: the pause image written as an OCI archive, and importing
archives into containerd's ``k8s.io`` namespace (the one the CRI plugin, and so the kubelet, sees).

The pause image is one layer holding the ``pause`` binary that ``scripts/node/build.sh`` compiles from
Kubernetes' own ``build/pause/linux/pause.c``; its entrypoint is ``/pause``, run as 65535 like upstream's.
An archive's ``index.json`` names the image with the ``io.containerd.image.name`` annotation, which
``ctr images import`` keeps.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["ImageImportError", "import_image_archive", "write_pause_image_archive"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMPORT_TIMEOUT_SECONDS = 300


class ImageImportError(RuntimeError):
    """``ctr images import`` failed; the message holds its output."""


def _descriptor(media_type: str, content: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{hashlib.sha256(content).hexdigest()}", "size": len(content)}


def _add_file(archive: tarfile.TarFile, name: str, content: bytes, mode: int = 0o644) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(content)
    member.mode = mode
    archive.addfile(member, io.BytesIO(content))


def _layer_with(binary: Path, name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _add_file(layer, name, binary.read_bytes(), mode=0o755)
    return buffer.getvalue()


def write_pause_image_archive(pause_binary: Path, archive_path: Path, *, image_name: str) -> Path:
    """Write an OCI archive of a one-layer image whose entrypoint is ``/pause``; returns ``archive_path``."""
    layer = _layer_with(pause_binary, "pause")
    layer_descriptor = _descriptor(OCI_LAYER, layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [layer_descriptor["digest"]]},
        },
        sort_keys=True,
    ).encode()
    config_descriptor = _descriptor(OCI_CONFIG, config)
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": [layer_descriptor]},
        sort_keys=True,
    ).encode()
    manifest_descriptor = _descriptor(OCI_MANIFEST, manifest)
    tag = image_name.rsplit(":", 1)[-1]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **manifest_descriptor,
                    "annotations": {"io.containerd.image.name": image_name, "org.opencontainers.image.ref.name": tag},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add_file(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add_file(archive, "index.json", index)
        for blob in (layer, config, manifest):
            _add_file(archive, f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}", blob)
    return archive_path


def import_image_archive(ctr_binary: Path, containerd_socket: Path, archive_path: Path) -> str:
    """``ctr -n k8s.io images import`` of an OCI archive, unpacked for overlayfs; returns ctr's output."""
    command = [
        str(ctr_binary),
        f"--address={containerd_socket}",
        "--namespace=k8s.io",
        "images",
        "import",
        "--snapshotter=overlayfs",
        str(archive_path),
    ]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as error:
        raise ImageImportError(f"importing {archive_path} took more than {IMPORT_TIMEOUT_SECONDS} s") from error
    if completed.returncode != 0:
        raise ImageImportError(f"ctr images import {archive_path} failed: {completed.stderr.strip()}")
    return completed.stdout
