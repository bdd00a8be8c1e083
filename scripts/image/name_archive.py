"""Names the image inside an OCI archive for containerd: adds the io.containerd.image.name annotation
to index.json (buildah writes only org.opencontainers.image.ref.name), so `ctr -n k8s.io images import`
stores the image under exactly that reference on every import path. Stdlib only (runs on the host's
python3). Usage: python3 scripts/image/name_archive.py ARCHIVE REFERENCE (rewrites ARCHIVE in place)."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

CONTAINERD_NAME = "io.containerd.image.name"


def named_index(index_json: bytes, reference: str) -> bytes:
    index = json.loads(index_json)
    for manifest in index["manifests"]:
        manifest.setdefault("annotations", {})[CONTAINERD_NAME] = reference
    return json.dumps(index, separators=(",", ":")).encode()


def name_archive(archive: Path, reference: str) -> None:
    renamed = archive.with_name(archive.name + ".naming")
    with tarfile.open(archive) as source, tarfile.open(renamed, "w", format=tarfile.PAX_FORMAT) as target:
        for member in source:
            content = source.extractfile(member) if member.isfile() else None
            if member.name.lstrip("./") == "index.json" and content is not None:
                data = named_index(content.read(), reference)
                member.size = len(data)
                content = io.BytesIO(data)
            target.addfile(member, content)
    renamed.replace(archive)


if __name__ == "__main__":
    name_archive(Path(sys.argv[1]), sys.argv[2])
