"""``FakeKubernetes``: an in-memory API server for the operator's controllers (``KubernetesPort``).

It does what the real API server does for the calls the controllers make, and no more:

- objects are keyed by kind, namespace and name; creating one fills in ``metadata`` (uid, generation 1,
  resourceVersion, creationTimestamp) and applies the CRD's defaults (read from crds/, as the API server
  applies the structural schema's defaults);
- a spec change bumps ``metadata.generation``; every change bumps ``metadata.resourceVersion``;
- ``patch_status`` is a JSON merge patch (RFC 7386) of ``.status``; it never touches the spec or the
  generation, and an object that is gone is no error (``KubernetesApi`` swallows that 404 too);
- deleting an object with finalizers only sets ``deletionTimestamp``, as the API server does;
- ``apply_deployment``/``apply_job`` store the manifest like server-side apply: created when missing (new
  uid), updated in place otherwise (uid and status kept; generation bumped only when the spec changed); a
  Job's pod template is immutable, so applying another one fails with 422 like the real API;
- the test plays the controllers that run in a cluster: ``observe_deployment``/``mark_deployment_available``
  write a Deployment's status as the deployment controller would, ``start_job``/``finish_job`` a Job's.

Errors are the real client's: ``fail_next(method, status)`` makes one call raise the ``ApiException`` the
real API would, which ``KubernetesApi`` lets propagate.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes.aio.client.exceptions import ApiException

from sluice_operator.kubernetes_port import KubernetesPort, Manifest
from sluice_operator.models import API_VERSION
from tests.custom_resources.manifests import CRDS_DIRECTORY, load_documents

__all__ = ["FakeKubernetes", "merge_patch"]

Key = tuple[str, str, str]
"""kind, namespace, name."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else (lists too) replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind → the openAPIV3Schema of its stored version, from the generated CRDs."""
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(CRDS_DIRECTORY.glob("*.sluice.dev.yaml")):
        for crd in load_documents(path):
            version = next(version for version in crd["spec"]["versions"] if version.get("storage"))
            schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Fill in the schema's defaults the way the API server does: absent fields of present objects get their
    ``default``, then every present value is defaulted by its own schema."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, field_schema in properties.items():
            if name not in value and "default" in field_schema:
                value[name] = copy.deepcopy(field_schema["default"])
        for name, item in value.items():
            item_schema = properties.get(name) or schema.get("additionalProperties")
            if isinstance(item_schema, Mapping):
                value[name] = apply_defaults(item_schema, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


class FakeKubernetes(KubernetesPort):
    """Custom objects, Secrets, Deployments and Jobs in memory, behaving as the API server does."""

    def __init__(self) -> None:
        self._objects: dict[Key, Manifest] = {}
        self._secrets: dict[tuple[str, str], dict[str, str]] = {}
        self._versions = itertools.count(1)
        self._schemas = _crd_schemas()
        self._failures: dict[str, ApiException] = {}
        self.calls: list[tuple[str, str, str, str]] = []
        """(method, kind, namespace, name) of every call the controllers made, in order."""
        self.closed = False

    # What a test does with kubectl ------------------------------------------------------------------------

    def create(self, namespace: str, body: Mapping[str, Any]) -> Manifest:
        """Create a Sluice object, as ``kubectl create`` would; returns it as stored."""
        stored = copy.deepcopy(dict(body))
        kind = str(stored["kind"])
        metadata = stored.setdefault("metadata", {})
        key = (kind, namespace, str(metadata["name"]))
        if key in self._objects:
            raise ApiException(status=409, reason=f"{kind} {namespace}/{metadata['name']} already exists")
        stored.setdefault("apiVersion", API_VERSION)
        metadata.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            generation=1,
            creationTimestamp=_now(),
            resourceVersion=str(next(self._versions)),
        )
        stored.pop("status", None)  # the status subresource: a create never sets it
        stored["spec"] = apply_defaults(self._schemas[kind]["properties"]["spec"], stored.get("spec") or {})
        self._objects[key] = stored
        return copy.deepcopy(stored)

    def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> Manifest:
        """A merge patch of the object (spec, labels, annotations), as ``kubectl patch --type=merge`` would:
        a spec change bumps the generation."""
        stored = self._stored(kind, namespace, name)
        patched = merge_patch(stored, {key: value for key, value in patch.items() if key != "status"})
        patched["spec"] = apply_defaults(self._schemas[kind]["properties"]["spec"], patched.get("spec") or {})
        if patched["spec"] != stored.get("spec"):
            patched["metadata"]["generation"] = int(stored["metadata"]["generation"]) + 1
        if patched != stored:
            patched["metadata"]["resourceVersion"] = str(next(self._versions))
        self._objects[(kind, namespace, name)] = patched
        return copy.deepcopy(patched)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object: with finalizers it stays, marked with ``deletionTimestamp``, until they are gone."""
        stored = self._stored(kind, namespace, name)
        if stored["metadata"].get("finalizers"):
            stored["metadata"].setdefault("deletionTimestamp", _now())
            stored["metadata"]["resourceVersion"] = str(next(self._versions))
        else:
            del self._objects[(kind, namespace, name)]

    def put_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Create or replace a Secret (its data as ``stringData``: the fake stores it decoded)."""
        self._secrets[(namespace, name)] = dict(data)

    def delete_secret(self, namespace: str, name: str) -> None:
        del self._secrets[(namespace, name)]

    def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """Any stored object (Sluice objects, Deployments, Jobs) as a copy, or None."""
        stored = self._objects.get((kind, namespace, name))
        return None if stored is None else copy.deepcopy(stored)

    def names(self, kind: str, namespace: str) -> list[str]:
        """The names of the stored objects of one kind in a namespace."""
        return sorted(name for (stored_kind, space, name) in self._objects if (stored_kind, space) == (kind, namespace))

    def fail_next(self, method: str, status: int, reason: str = "injected") -> None:
        """Make the next call of ``method`` (e.g. ``"apply_deployment"``) raise the API's ApiException."""
        self._failures[method] = ApiException(status=status, reason=reason)

    # What the cluster's controllers do ----------------------------------------------------------------------

    def observe_deployment(self, namespace: str, name: str, *, ready_replicas: int) -> Manifest:
        """Write the status the deployment controller writes once ``ready_replicas`` of its pods are ready."""
        deployment = self._stored("Deployment", namespace, name)
        desired = int(deployment["spec"].get("replicas", 1))
        available = ready_replicas >= min(desired, 1)
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": ready_replicas,
            "availableReplicas": ready_replicas,
            "unavailableReplicas": desired - ready_replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available else "False",
                    "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                }
            ],
        }
        deployment["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(deployment)

    def mark_deployment_available(self, namespace: str, name: str) -> Manifest:
        """Every wanted pod of the Deployment is ready."""
        deployment = self._stored("Deployment", namespace, name)
        return self.observe_deployment(namespace, name, ready_replicas=int(deployment["spec"].get("replicas", 1)))

    def start_job(self, namespace: str, name: str) -> Manifest:
        """The Job's pod is running and ready."""
        job = self._stored("Job", namespace, name)
        job["status"] = {"startTime": _now(), "active": 1, "ready": 1}
        job["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(job)

    def finish_job(self, namespace: str, name: str, *, succeeded: bool) -> Manifest:
        """The Job's pod exited: 0 (Complete) or failed past its backoffLimit (Failed)."""
        job = self._stored("Job", namespace, name)
        started = (job.get("status") or {}).get("startTime") or _now()
        if succeeded:
            status = {
                "startTime": started,
                "completionTime": _now(),
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}],
            }
        else:
            status = {
                "startTime": started,
                "failed": int(job["spec"].get("backoffLimit", 6)) + 1,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            }
        job["status"] = status
        job["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(job)

    # KubernetesPort --------------------------------------------------------------------------------------

    async def get_custom_object(self, kind: str, namespace: str, name: str) -> Manifest | None:
        self._record("get_custom_object", kind, namespace, name)
        return self.get(kind, namespace, name)

    async def list_custom_objects(self, kind: str, namespace: str | None) -> list[Manifest]:
        self._record("list_custom_objects", kind, namespace or "", "")
        # The API server lists in key order: by namespace, then by name.
        return [
            copy.deepcopy(body)
            for (stored_kind, space, _), body in sorted(self._objects.items())
            if stored_kind == kind and (namespace is None or space == namespace)
        ]

    async def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self._record("patch_status", kind, namespace, name)
        stored = self._objects.get((kind, namespace, name))
        if stored is None:
            return  # deleted meanwhile: KubernetesApi ignores this 404
        patched = merge_patch(stored.get("status") or {}, dict(status))
        if patched != stored.get("status"):
            stored["status"] = patched
            stored["metadata"]["resourceVersion"] = str(next(self._versions))

    async def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self._record("read_secret_data", "Secret", namespace, name)
        data = self._secrets.get((namespace, name))
        return None if data is None else dict(data)

    async def apply_deployment(self, manifest: Mapping[str, Any]) -> Manifest:
        self._record("apply_deployment", "Deployment", *_namespace_and_name(manifest))
        return self._apply("Deployment", manifest)

    async def apply_job(self, manifest: Mapping[str, Any]) -> Manifest:
        namespace, name = _namespace_and_name(manifest)
        self._record("apply_job", "Job", namespace, name)
        existing = self._objects.get(("Job", namespace, name))
        if existing is not None and existing["spec"].get("template") != manifest["spec"].get("template"):
            raise ApiException(status=422, reason="Job.batch is invalid: spec.template: field is immutable")
        return self._apply("Job", manifest)

    async def close(self) -> None:
        self.closed = True

    # Internals --------------------------------------------------------------------------------------------

    def _stored(self, kind: str, namespace: str, name: str) -> Manifest:
        stored = self._objects.get((kind, namespace, name))
        if stored is None:
            raise ApiException(status=404, reason=f"{kind} {namespace}/{name} not found")
        return stored

    def _record(self, method: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append((method, kind, namespace, name))
        failure = self._failures.pop(method, None)
        if failure is not None:
            raise failure

    def _apply(self, kind: str, manifest: Mapping[str, Any]) -> Manifest:
        """Server-side apply with one field manager: the manifest's fields replace what it set before."""
        namespace, name = _namespace_and_name(manifest)
        applied = copy.deepcopy(dict(manifest))
        existing = self._objects.get((kind, namespace, name))
        if existing is None:
            applied["metadata"].update(
                uid=str(uuid.uuid4()),
                generation=1,
                creationTimestamp=_now(),
                resourceVersion=str(next(self._versions)),
            )
            self._objects[(kind, namespace, name)] = applied
            return copy.deepcopy(applied)
        server_fields = ("uid", "generation", "creationTimestamp", "resourceVersion")
        applied["metadata"].update({field: existing["metadata"][field] for field in server_fields})
        if "status" in existing:
            applied["status"] = existing["status"]
        if applied["spec"] != existing["spec"]:
            applied["metadata"]["generation"] = int(existing["metadata"]["generation"]) + 1
        if applied != existing:
            applied["metadata"]["resourceVersion"] = str(next(self._versions))
            self._objects[(kind, namespace, name)] = applied
        return copy.deepcopy(self._objects[(kind, namespace, name)])


def _namespace_and_name(manifest: Mapping[str, Any]) -> tuple[str, str]:
    metadata = manifest["metadata"]
    return str(metadata["namespace"]), str(metadata["name"])
