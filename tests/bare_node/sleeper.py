"""The pod the bare-node tests run: the node's own pause image, which needs no registry and does nothing."""

from __future__ import annotations

import json
from typing import Any

from sluice_devkit.local_node import PAUSE_IMAGE

SLEEPER_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper"},
    "spec": {
        "containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}],
        "terminationGracePeriodSeconds": 1,
    },
}
SLEEPER_POD_JSON = json.dumps(SLEEPER_POD)
