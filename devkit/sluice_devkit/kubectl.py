"""Running kubectl against the platform's cluster: JSON reads, applies from memory, status patches.

The platform talks to Kubernetes through kubectl (the binary built with the local control plane, or the one
on PATH for an existing cluster), so what it does is what a user can repeat by hand.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice_devkit.platform_errors import PlatformError

__all__ = ["Kubectl"]

KUBECTL_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Kubectl:
    """kubectl with a fixed binary, kubeconfig and (optionally) context."""

    binary: Path
    kubeconfig_path: Path
    context: str | None = None

    def base_command(self) -> list[str]:
        command = [str(self.binary), f"--kubeconfig={self.kubeconfig_path}"]
        if self.context is not None:
            command.append(f"--context={self.context}")
        return command

    def run(self, *arguments: str, namespace: str | None = None, stdin: str | None = None) -> str:
        """Run kubectl and return its standard output; PlatformError with its output when it fails."""
        command = self.base_command()
        if namespace is not None:
            command.append(f"--namespace={namespace}")
        command.extend(arguments)
        try:
            completed = subprocess.run(
                command, input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise PlatformError(
                f"kubectl {' '.join(arguments)} did not finish in {KUBECTL_TIMEOUT_SECONDS} s"
            ) from error
        if completed.returncode != 0:
            raise PlatformError(
                f"kubectl {' '.join(arguments)} failed ({completed.returncode}): {completed.stderr.strip()}"
            )
        return completed.stdout

    def get_json(self, *arguments: str, namespace: str | None = None) -> dict[str, Any]:
        """``kubectl get ... -o json`` as a JSON object."""
        output = self.run("get", *arguments, "-o", "json", namespace=namespace)
        value = json.loads(output)
        if not isinstance(value, dict):
            raise PlatformError(f"kubectl get {' '.join(arguments)} did not return a JSON object")
        return value

    def apply(self, manifests: Sequence[Mapping[str, Any]], *, namespace: str) -> str:
        """``kubectl apply`` of objects held in memory (a List, as JSON on standard input)."""
        document = {"apiVersion": "v1", "kind": "List", "items": [dict(manifest) for manifest in manifests]}
        return self.run("apply", "-f", "-", namespace=namespace, stdin=json.dumps(document))

    def patch_status(self, kind: str, name: str, status: Mapping[str, Any], *, namespace: str) -> None:
        """A merge patch through the status subresource (what a kubelet writes for its pods)."""
        self.run(
            "patch",
            kind,
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": dict(status)}),
            namespace=namespace,
        )
