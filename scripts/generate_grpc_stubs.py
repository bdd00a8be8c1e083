"""Generate the Python gRPC stubs of ``proto/`` into ``runtime/`` (or, with ``--check``, fail when they drift).

    .venv/bin/python scripts/generate_grpc_stubs.py          # write the stubs
    .venv/bin/python scripts/generate_grpc_stubs.py --check  # exit 1 if the checked-in stubs differ

grpcio-tools and mypy-protobuf are development dependencies, so this lives outside the runtime package.
For each ``proto/sluice/rpc/v1/*.proto`` it writes ``runtime/sluice/rpc/v1/<name>_pb2.py``, ``_pb2.pyi``
(typed, by mypy-protobuf), ``_pb2_grpc.py`` and ``_pb2_grpc.pyi``.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPOSITORY / "proto"
OUTPUT_ROOT = REPOSITORY / "runtime"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """Every .proto file under proto/, relative to it (the path protoc and the imports use)."""
    return sorted(path.relative_to(PROTO_ROOT) for path in PROTO_ROOT.rglob("*.proto"))


def generated_paths(root: Path) -> list[Path]:
    """The files the generator writes under ``root`` for the current .proto files."""
    paths = []
    for proto in proto_files():
        stem = proto.with_suffix("")
        paths.extend(root / (str(stem) + suffix) for suffix in GENERATED_SUFFIXES)
    return paths


def generate(output_root: Path) -> None:
    """Run protoc (from grpcio-tools) with the mypy-protobuf plugins into ``output_root``."""
    well_known_types = importlib.resources.files("grpc_tools") / "_proto"
    bin_directory = Path(sys.executable).parent
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known_types}",
        f"--plugin=protoc-gen-mypy={bin_directory / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_directory / 'protoc-gen-mypy_grpc'}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        *(str(proto) for proto in proto_files()),
    ]
    result = subprocess.run(command, check=False, cwd=REPOSITORY, capture_output=True, text=True)
    if result.returncode != 0:  # the plugins chatter on success; show their output only on failure
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"protoc failed with exit code {result.returncode}")


def check() -> list[Path]:
    """Generate into a temporary directory; return the checked-in files that differ or are missing."""
    with tempfile.TemporaryDirectory() as temporary:
        generate(Path(temporary))
        drifted = []
        for fresh, checked_in in zip(generated_paths(Path(temporary)), generated_paths(OUTPUT_ROOT), strict=True):
            if not checked_in.exists() or not filecmp.cmp(fresh, checked_in, shallow=False):
                drifted.append(checked_in.relative_to(REPOSITORY))
        return drifted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the checked-in stubs drift from proto/")
    arguments = parser.parse_args()
    if arguments.check:
        drifted = check()
        if drifted:
            names = ", ".join(str(path) for path in drifted)
            print(f"gRPC stubs out of date: {names}; run scripts/generate_grpc_stubs.py", file=sys.stderr)
            return 1
        print("gRPC stubs are up to date")
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        generate(Path(temporary))
        for fresh, target in zip(generated_paths(Path(temporary)), generated_paths(OUTPUT_ROOT), strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh, target)
            print(f"wrote {target.relative_to(REPOSITORY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
