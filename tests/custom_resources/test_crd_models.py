"""The CRD schemas generated from the models, without a cluster: structural, with the defaults, enums and CEL
rules the kinds promise, in step with the runtime's rules and with the files in crds/."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sluice.core.names import SCHEMA_NAME_PATTERN, STREAM_NAME_PATTERN
from sluice.core.streams import StreamConfig
from sluice_operator import crd_generation
from sluice_operator.crd_generation import (
    REGENERATE_COMMAND,
    SchemaConversionError,
    custom_resource_definition,
    rendered_files,
    structural_schema,
)
from sluice_operator.models import CUSTOM_RESOURCES, ConsumerGroup, CustomResource, EventStream
from sluice_operator.models.common import SluiceSchemaModel, parse_byte_quantity, parse_duration
from tests.custom_resources.manifests import CRDS_DIRECTORY, SLUICE_EXAMPLE_FILES, load_documents, load_example
from tests.custom_resources.specimens import INVALID_SPECS, InvalidSpec

RESOURCES_BY_KIND = {resource.definition.kind: resource for resource in CUSTOM_RESOURCES}
KINDS = list(RESOURCES_BY_KIND)
FORBIDDEN_KEYWORDS = {"$ref", "$defs", "allOf", "oneOf", "not", "nullable", "const", "title", "propertyNames"}


def root_schema(kind: str) -> dict[str, Any]:
    crd = custom_resource_definition(RESOURCES_BY_KIND[kind])
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node of a schema with its path (``.spec.partitions``, ``.status.conditions[*]``, ``.map.*``)."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")


def node(kind: str, path: str) -> dict[str, Any]:
    nodes = dict(walk(root_schema(kind)))
    return nodes[path]


# Structure -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_schema_node_is_structural(kind: str) -> None:
    problems = []
    for path, schema in walk(root_schema(kind)):
        if used := FORBIDDEN_KEYWORDS & schema.keys():
            problems.append(f"{path}: {sorted(used)}")
        int_or_string = schema.get("x-kubernetes-int-or-string") is True
        free_form = schema.get("x-kubernetes-preserve-unknown-fields") is True
        if "anyOf" in schema and not int_or_string:
            problems.append(f"{path}: anyOf outside int-or-string")
        if "type" not in schema and not (int_or_string or free_form):
            problems.append(f"{path}: no type")
        if schema.get("type") == "object" and not free_form and path != ".metadata":
            has_properties = "properties" in schema
            has_map_values = isinstance(schema.get("additionalProperties"), dict)
            if has_properties == has_map_values:
                problems.append(f"{path}: an object needs exactly one of properties or additionalProperties")
        if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], dict):
            problems.append(f"{path}: additionalProperties must be a schema, not a boolean")
        if schema.get("type") == "array" and "items" not in schema:
            problems.append(f"{path}: an array without items")
        for required in schema.get("required", []):
            if required not in schema.get("properties", {}):
                problems.append(f"{path}: required {required} is not a property")
        if schema.get("x-kubernetes-list-type") == "map":
            item = schema["items"]
            missing = [key for key in schema["x-kubernetes-list-map-keys"] if key not in item.get("required", [])]
            if missing:
                problems.append(f"{path}: list-map keys {missing} are not required")
    assert problems == []


@pytest.mark.parametrize("kind", KINDS)
def test_root_has_spec_status_and_plain_metadata(kind: str) -> None:
    schema = root_schema(kind)
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]
    assert schema["description"]


@pytest.mark.parametrize("kind", KINDS)
def test_status_has_no_defaults_and_has_the_condition_shape(kind: str) -> None:
    status_nodes = [(path, schema) for path, schema in walk(root_schema(kind)) if path.startswith(".status")]
    assert [path for path, schema in status_nodes if "default" in schema] == []
    conditions = node(kind, ".status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    condition = conditions["items"]
    assert list(condition["properties"]) == [
        "type",
        "status",
        "observedGeneration",
        "lastTransitionTime",
        "reason",
        "message",
    ]
    assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert condition["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert node(kind, ".status.observedGeneration")["type"] == "integer"


def test_only_the_pod_template_is_free_form() -> None:
    free_form = [
        (kind, path)
        for kind in KINDS
        for path, schema in walk(root_schema(kind))
        if schema.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert free_form == [("ConsumerGroup", ".spec.podTemplate")]


def test_every_description_is_clean() -> None:
    for kind in KINDS:
        for path, schema in walk(root_schema(kind)):
            description = schema.get("description", "")
            assert "``" not in description, path
            assert "\n" not in description.replace("\n\n", ""), path


# Defaults, enums, bounds, patterns ---------------------------------------------------------------------------

EXPECTED_DEFAULTS = [
    ("EventStream", ".spec.type", "persistent"),
    ("EventStream", ".spec.partitions", 1),
    ("EventStream", ".spec.deliverySemantics", "broadcast"),
    ("EventStream", ".spec.deletionPolicy", "retain"),
    ("EventStream", ".spec.deadLetter.maxAttempts", 5),
    (
        "EventStream",
        ".spec.deadLetter",
        {"maxAttempts": 5, "backoff": {"type": "exponential", "initial": "1s", "maximum": "5m"}},
    ),
    ("EventStream", ".spec.retention.respectConsumerPositions", True),
    ("EventStream", ".spec.database.schema", "sluice"),
    ("ConsumerGroup", ".spec.replicas", 1),
    ("ConsumerGroup", ".spec.commitStrategy", "afterBatch"),
    ("ConsumerGroup", ".spec.batchSize", 100),
    ("ConsumerGroup", ".spec.sessionTimeout", "30s"),
    ("ConsumerGroup", ".spec.startPosition", {"from": "earliest"}),
    ("ConsumerGroup", ".spec.handler.sink.timeout", "10s"),
    ("RetentionPolicy", ".spec.schedule", "0 3 * * *"),
    ("RetentionPolicy", ".spec.respectConsumerPositions", True),
    ("Projection", ".spec.batchSize", 100),
    ("Projection", ".spec.resetGeneration", 0),
    ("Projection", ".spec.database.schema", "sluice"),
    ("Replay", ".spec.batchSize", 500),
]


@pytest.mark.parametrize(("kind", "path", "default"), EXPECTED_DEFAULTS)
def test_defaults_are_in_the_schema(kind: str, path: str, default: object) -> None:
    assert node(kind, path)["default"] == default


EXPECTED_ENUMS = [
    ("EventStream", ".spec.type", ["persistent", "ephemeral"]),
    ("EventStream", ".spec.deliverySemantics", ["broadcast", "queue"]),
    ("EventStream", ".spec.deletionPolicy", ["retain", "delete"]),
    ("EventStream", ".spec.deadLetter.backoff.type", ["fixed", "exponential"]),
    ("ConsumerGroup", ".spec.commitStrategy", ["manual", "afterEach", "afterBatch", "periodic"]),
    ("ConsumerGroup", ".spec.startPosition.from", ["earliest", "latest", "offset", "time"]),
    ("Projection", ".status.rebuild.phase", ["Pending", "Running", "Succeeded", "Failed"]),
    ("Replay", ".status.phase", ["Pending", "Running", "Succeeded", "Failed"]),
]


@pytest.mark.parametrize(("kind", "path", "values"), EXPECTED_ENUMS)
def test_enums_are_in_the_schema(kind: str, path: str, values: list[str]) -> None:
    assert node(kind, path)["enum"] == values


def test_bounds_and_patterns_follow_the_runtime() -> None:
    runtime = StreamConfig.model_json_schema()["properties"]
    partitions = node("EventStream", ".spec.partitions")
    assert (partitions["minimum"], partitions["maximum"]) == (runtime["partitions"]["minimum"], 1024)
    assert partitions["maximum"] == runtime["partitions"]["maximum"]
    attempts = node("EventStream", ".spec.deadLetter.maxAttempts")
    assert (attempts["minimum"], attempts["maximum"]) == (
        runtime["max_attempts"]["minimum"],
        runtime["max_attempts"]["maximum"],
    )
    assert node("EventStream", ".spec.streamName")["pattern"] == f"^{STREAM_NAME_PATTERN.pattern}$"
    assert node("EventStream", ".spec.database.schema")["pattern"] == f"^{SCHEMA_NAME_PATTERN.pattern}$"
    assert node("ConsumerGroup", ".spec.replicas")["minimum"] == 0
    assert node("ConsumerGroup", ".spec.batchSize")["minimum"] == 1
    assert node("Projection", ".spec.sources")["minItems"] == 1
    assert node("ConsumerGroup", ".spec.resources.requests.*")["x-kubernetes-int-or-string"] is True
    assert node("EventStream", ".spec.retention.maxBytes")["x-kubernetes-int-or-string"] is True


# CEL rules ----------------------------------------------------------------------------------------------------

EXPECTED_RULES = [
    ("EventStream", ".spec.type", "self == oldSelf"),
    ("EventStream", ".spec.partitions", "self >= oldSelf"),
    (
        "EventStream",
        ".spec",
        "has(self.streamName) == has(oldSelf.streamName)"
        " && (!has(self.streamName) || self.streamName == oldSelf.streamName)",
    ),
    (
        "EventStream",
        ".spec",
        "has(self.database) == has(oldSelf.database) && (!has(self.database) || self.database == oldSelf.database)",
    ),
    ("EventStream", "", "has(self.spec.streamName) || self.metadata.name.size() <= 200"),
    ("EventStream", ".spec.retention", "has(self.maxAge) || has(self.maxEventCount) || has(self.maxBytes)"),
    ("EventStream", ".spec.retention.cleanupWindow", "self.start != self.end"),
    ("ConsumerGroup", ".spec.handler", "has(self.sink) != has(self.entrypoint)"),
    ("ConsumerGroup", ".spec.streamRef", "self == oldSelf"),
    ("ConsumerGroup", ".spec", "self.commitStrategy != 'periodic' || has(self.commitInterval)"),
    ("ConsumerGroup", ".spec.startPosition", "self.from != 'offset' || has(self.offset)"),
    ("ConsumerGroup", ".spec.startPosition", "self.from != 'time' || has(self.time)"),
    ("RetentionPolicy", ".spec", "has(self.maxAge) || has(self.maxEventCount) || has(self.maxBytes)"),
    ("RetentionPolicy", ".spec.streamSelector", "has(self.names) || has(self.matchLabels)"),
    ("RetentionPolicy", ".spec.cleanupWindow", "self.start != self.end"),
    ("Projection", ".spec.target", "has(self.sql) != has(self.entrypoint)"),
    ("Projection", ".spec.target.sql", "self.upserts.all(upsert, self.keyColumns.all(key, key in upsert.columns))"),
    ("Projection", ".spec.resetGeneration", "self >= oldSelf"),
    (
        "Projection",
        ".spec.target.sql",
        "!has(self.columnTypes) || self.columnTypes.all(column, column in self.keyColumns || "
        "self.upserts.exists(upsert, column in upsert.columns))",
    ),
    (
        "Projection",
        ".spec.target.sql",
        "!has(self.indexes) || self.indexes.all(index, index.columns.all(column, "
        "column in self.keyColumns || self.upserts.exists(upsert, column in upsert.columns)))",
    ),
    (
        "Projection",
        ".spec.target.sql.columnTypes",
        "self.all(column, column.matches('^[a-z_][a-z0-9_]{0,62}$'))",
    ),
    (
        "Projection",
        ".spec.target.sql.upserts[*].columns",
        "self.all(column, column.matches('^[a-z_][a-z0-9_]{0,62}$'))",
    ),
    ("Replay", ".spec", "has(self.fromOffset) != has(self.fromTime)"),
    ("Replay", ".spec", "self == oldSelf"),
    (
        "Replay",
        ".spec.target",
        "(has(self.consumerGroup) ? 1 : 0) + (has(self.projection) ? 1 : 0) + (has(self.stream) ? 1 : 0) == 1",
    ),
]


@pytest.mark.parametrize(("kind", "path", "rule"), EXPECTED_RULES)
def test_cel_rules_are_in_the_schema_with_messages(kind: str, path: str, rule: str) -> None:
    messages = {entry["rule"]: entry["message"] for entry in node(kind, path).get("x-kubernetes-validations", [])}
    assert rule in messages
    # A sentence for people, not the CEL expression again.
    assert len(messages[rule].split()) >= 4
    assert "self" not in messages[rule]


def test_every_rule_in_the_schemas_is_expected() -> None:
    found = [
        (kind, path, entry["rule"])
        for kind in KINDS
        for path, schema in walk(root_schema(kind))
        for entry in schema.get("x-kubernetes-validations", [])
    ]
    assert sorted(found) == sorted(EXPECTED_RULES)


# Subresources, names and printer columns ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_names_subresources_and_printer_columns(kind: str) -> None:
    crd = custom_resource_definition(RESOURCES_BY_KIND[kind])
    names = crd["spec"]["names"]
    assert crd["metadata"]["name"] == f"{names['plural']}.sluice.dev"
    assert crd["spec"]["group"] == "sluice.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert names["kind"] == kind
    assert names["categories"] == ["sluice"]
    assert names["shortNames"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    columns = {column["name"]: column for column in version["additionalPrinterColumns"]}
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
    if kind != "Replay":
        assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    subresources = version["subresources"]
    if kind == "ConsumerGroup":
        assert subresources == {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        }
    else:
        assert subresources == {"status": {}}


def test_printer_columns_point_at_fields_that_exist() -> None:
    for kind in KINDS:
        crd = custom_resource_definition(RESOURCES_BY_KIND[kind])
        paths = dict(walk(root_schema(kind)))
        for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
            json_path: str = column["jsonPath"]
            if json_path.startswith(".metadata") or "[?(" in json_path or json_path.endswith(".*"):
                continue
            assert json_path in paths, f"{kind} column {column['name']}: {json_path}"


# The files in crds/ ----------------------------------------------------------------------------------------------


def test_crd_files_match_the_models() -> None:
    """Fails when a model changed but crds/ was not regenerated."""
    expected = rendered_files()
    actual = {path.name: path.read_text(encoding="utf-8") for path in sorted(CRDS_DIRECTORY.glob("*.yaml"))}
    stale = sorted(name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name))
    assert stale == [], f"crds/ is out of date ({', '.join(stale)}): run `{REGENERATE_COMMAND}`"


def test_crd_files_are_marked_generated_and_parse_back() -> None:
    for resource in CUSTOM_RESOURCES:
        path = CRDS_DIRECTORY / f"{resource.definition.name}.yaml"
        assert path.read_text(encoding="utf-8").startswith(f"# Generated by `{REGENERATE_COMMAND}`")
        (document,) = load_documents(path)
        assert document == custom_resource_definition(resource)


def test_generator_writes_every_output_folder_and_check_reports_drift(tmp_path: Path) -> None:
    folders = (Path("crds"), Path("charts/sluice/templates/crds"))
    assert crd_generation.main(["--check", "--repository-root", str(tmp_path)]) == 1
    written = crd_generation.write_custom_resource_definitions(tmp_path, folders)
    assert len(written) == 2 * len(CUSTOM_RESOURCES)
    assert crd_generation.outdated_files(tmp_path, folders) == []
    stale = tmp_path / "crds" / "oldkinds.sluice.dev.yaml"
    stale.write_text(crd_generation.GENERATED_HEADER, encoding="utf-8")
    (tmp_path / "crds" / "eventstreams.sluice.dev.yaml").write_text("edited by hand\n", encoding="utf-8")
    assert crd_generation.outdated_files(tmp_path, folders) == [
        tmp_path / "crds" / "eventstreams.sluice.dev.yaml",
        stale,
    ]
    assert crd_generation.main(["--repository-root", str(tmp_path)]) == 0
    assert not stale.exists()
    assert crd_generation.main(["--check", "--repository-root", str(tmp_path)]) == 0


class _Color(enum.StrEnum):
    RED = "red"


class _UnionModel(SluiceSchemaModel):
    value: int | _Color


class _AnythingModel(BaseModel):
    value: dict[str, object]


@pytest.mark.parametrize(
    ("model", "problem"),
    [(_UnionModel, "a union other than Optional[X]"), (_AnythingModel, "a map of anything is not structural")],
)
def test_generator_refuses_what_a_crd_cannot_express(model: type[BaseModel], problem: str) -> None:
    with pytest.raises(SchemaConversionError, match=re.escape(problem)):
        structural_schema(model)


# The models in Python ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", SLUICE_EXAMPLE_FILES)
def test_examples_are_valid_models_without_lost_fields(file_name: str) -> None:
    example = load_example(file_name)
    resource: CustomResource = RESOURCES_BY_KIND[example["kind"]].model_validate(example)
    assert resource.model_dump(mode="json", by_alias=True, exclude_unset=True)["spec"] == example["spec"]


def test_database_secret_example_has_a_uri() -> None:
    secret = load_example("database-secret.yaml")
    assert secret["kind"] == "Secret"
    assert secret["stringData"]["uri"].startswith("postgresql://")


def test_example_names_fit_together() -> None:
    stream, group, policy, projection, replay = (load_example(name) for name in SLUICE_EXAMPLE_FILES)
    assert stream["metadata"]["name"] == "orders"
    assert group["metadata"]["name"] == "email-notifications"
    assert group["spec"]["streamRef"]["name"] == "orders"
    assert group["spec"]["handler"]["sink"]["url"].startswith("http")
    assert policy["spec"]["streamSelector"]["names"] == ["orders*"]
    assert projection["metadata"]["name"] == "order-summary"
    assert "sql" in projection["spec"]["target"]
    assert replay["spec"]["fromOffset"] == 0
    assert replay["spec"]["target"] == {"consumerGroup": "email-notifications"}
    assert stream["spec"]["database"]["secretRef"]["name"] == load_example("database-secret.yaml")["metadata"]["name"]


@pytest.mark.parametrize("invalid", INVALID_SPECS, ids=lambda invalid: invalid.identifier)
def test_models_refuse_what_the_api_server_refuses(invalid: InvalidSpec) -> None:
    with pytest.raises(ValidationError) as raised:
        RESOURCES_BY_KIND[invalid.kind].model_validate(invalid.manifest())
    if invalid.python_message is not None:
        assert invalid.python_message in str(raised.value)


def test_stream_name_defaults_to_the_object_name() -> None:
    stream = EventStream.model_validate({"metadata": {"name": "orders"}, "spec": {}})
    assert stream.stream_name == "orders"
    renamed = EventStream.model_validate({"metadata": {"name": "orders"}, "spec": {"streamName": "Orders:EU"}})
    assert renamed.stream_name == "Orders:EU"
    with pytest.raises(ValidationError, match=r"set spec\.streamName"):
        EventStream.model_validate({"metadata": {"name": "o" * 201}, "spec": {}})


def test_models_read_camel_case_and_write_it_back() -> None:
    group = ConsumerGroup.model_validate(load_example("consumer-group.yaml"))
    assert group.spec.stream_ref.name == "orders"
    assert group.spec.start_position.from_ == "latest"
    assert group.spec.handler.sink is not None
    assert group.spec.handler.sink.batch_size == 50
    manifest = group.spec.to_manifest()
    assert manifest["startPosition"] == {"from": "latest"}
    assert manifest["sessionTimeout"] == "30s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7 days", "1.5h", "-1s"])
def test_parse_duration_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(1024, 1024), ("1024", 1024), ("10Gi", 10 * 2**30), ("5G", 5 * 10**9), ("512Mi", 512 * 2**20), ("3k", 3000)],
)
def test_parse_byte_quantity(quantity: int | str, expected: int) -> None:
    assert parse_byte_quantity(quantity) == expected


@pytest.mark.parametrize("quantity", [-1, "10GB", "1.5Gi", "Gi"])
def test_parse_byte_quantity_refuses_other_values(quantity: int | str) -> None:
    with pytest.raises(ValueError, match="invalid byte quantity"):
        parse_byte_quantity(quantity)
