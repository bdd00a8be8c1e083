"""What every Sluice custom-resource model is made of: the base class, CEL rules, patterns and field types.

The pydantic models in this package are the single source of the CustomResourceDefinitions: field types,
defaults, enums, bounds, patterns and the CEL rules (``x-kubernetes-validations``) declared here end up in
the generated OpenAPI schemas (``sluice_operator.crd_generation``), and the same models parse the objects
the operator reads. Python attributes are snake_case; YAML and JSON use the camelCase aliases.

CEL rules are declared once, as ``ValidationRule``s, with an optional Python check that mirrors the rule, so
an object the API server would reject is also rejected when a model is built in Python. Transition rules
(those that compare with ``oldSelf``) have no Python mirror: they need the previous object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from sluice.core.names import SCHEMA_NAME_PATTERN, STREAM_NAME_PATTERN
from sluice.services.retention import quantities as runtime_quantities

__all__ = [
    "BYTE_QUANTITY_PATTERN",
    "CONDITION_REASON_PATTERN",
    "CONDITION_TYPE_PATTERN",
    "DATABASE_SCHEMA_NAME_PATTERN",
    "DURATION_PATTERN",
    "ENTRYPOINT_FUNCTION_PATTERN",
    "OBJECT_NAME_PATTERN",
    "QUANTITY_PATTERN",
    "STREAM_NAME_SCHEMA_PATTERN",
    "TIME_OF_DAY_PATTERN",
    "ByteQuantity",
    "Duration",
    "FreeFormObject",
    "ObjectName",
    "Quantity",
    "SluiceSchemaModel",
    "StreamName",
    "ValidationRule",
    "kubernetes_validations",
    "parse_byte_quantity",
    "parse_duration",
]

# Patterns are anchored: OpenAPI (and the API server) search for a pattern anywhere in the value.
STREAM_NAME_SCHEMA_PATTERN = f"^{STREAM_NAME_PATTERN.pattern}$"
"""The runtime's stream name rule (``sluice.core.names.STREAM_NAME_PATTERN``), anchored."""
DATABASE_SCHEMA_NAME_PATTERN = f"^{SCHEMA_NAME_PATTERN.pattern}$"
"""The runtime's PostgreSQL schema name rule (``sluice.core.names.SCHEMA_NAME_PATTERN``), anchored."""
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A Kubernetes object name (RFC 1123 subdomain), as used in metadata.name."""
OBJECT_NAME_MAX_LENGTH = 253
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
"""Durations such as ``500ms``, ``30s``, ``12h``, ``7d``, ``2w`` or ``1h30m``."""
TIME_OF_DAY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""A UTC time of day, ``HH:MM`` on a 24-hour clock."""
BYTE_QUANTITY_PATTERN = r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
"""A number of bytes: an integer, optionally with a binary (``Gi``) or decimal (``G``) suffix."""
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""A Kubernetes resource quantity (the pattern of apimachinery's ``resource.Quantity``)."""
PYTHON_DOTTED_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
ENTRYPOINT_FUNCTION_PATTERN = f"^{PYTHON_DOTTED_NAME}:{PYTHON_DOTTED_NAME}$"
"""``package.module:function``, as in Python packaging entry points."""
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
"""metav1.Condition's type rule."""
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
"""metav1.Condition's reason rule: stable CamelCase."""


# Validation rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationRule:
    """One CEL rule for ``x-kubernetes-validations``, with the message the API server returns on failure.

    ``check``, when given, mirrors the rule in Python on a built model (it receives the model instance),
    so Python and the API server reject the same objects. Transition rules (``oldSelf``) have none.
    """

    rule: str
    message: str
    check: Callable[[Any], bool] | None = None
    field_path: str | None = None
    reason: Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"] | None = (
        None
    )

    @property
    def is_transition_rule(self) -> bool:
        """Whether the rule compares with the previous object (only evaluated on updates)."""
        return "oldSelf" in self.rule

    def to_schema(self) -> dict[str, JsonValue]:
        """The rule as one entry of ``x-kubernetes-validations``."""
        entry: dict[str, JsonValue] = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


def kubernetes_validations(*rules: ValidationRule) -> dict[str, JsonValue]:
    """``json_schema_extra`` for a field whose own schema carries CEL rules (``Field(json_schema_extra=...)``)."""
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}


def _add_class_validation_rules(schema: dict[str, JsonValue], model_class: type[BaseModel]) -> None:
    """Put a model class's ``validation_rules`` into its JSON schema (pydantic calls this per class)."""
    rules: tuple[ValidationRule, ...] = getattr(model_class, "validation_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.to_schema() for rule in rules]


class SluiceSchemaModel(BaseModel):
    """Base of every model that becomes part of a CRD schema.

    camelCase aliases in YAML and JSON, attribute docstrings as schema descriptions, unknown fields refused
    (the API server prunes them anyway, so an unknown field here is a typo in a manifest or a test).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        extra="forbid",
        json_schema_extra=_add_class_validation_rules,
    )

    validation_rules: ClassVar[tuple[ValidationRule, ...]] = ()
    """CEL rules on this object's schema; each with a ``check`` is also enforced when the model is built."""

    @model_validator(mode="after")
    def _satisfies_validation_rules(self) -> Self:
        for validation_rule in type(self).validation_rules:
            if validation_rule.check is not None and not validation_rule.check(self):
                raise ValueError(validation_rule.message)
        return self

    def to_manifest(self) -> dict[str, JsonValue]:
        """This object as it appears in a manifest: camelCase keys, JSON values, unset optional fields left out."""
        manifest: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return manifest


# Shared field types -------------------------------------------------------------------------------------

StreamName = Annotated[str, Field(pattern=STREAM_NAME_SCHEMA_PATTERN, min_length=1, max_length=200)]
"""A stream name as the runtime stores it (see ``sluice.core.names``)."""

ObjectName = Annotated[str, Field(pattern=OBJECT_NAME_PATTERN, min_length=1, max_length=OBJECT_NAME_MAX_LENGTH)]
"""The metadata.name of another object in the same namespace."""

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
"""A duration such as ``30s``, ``12h`` or ``7d`` (see ``parse_duration``)."""


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` → ``timedelta(hours=1, minutes=30)``; raises ValueError for text outside DURATION_PATTERN.
    The runtime's parser, so a duration means the same in a manifest and on the command line."""
    if re.fullmatch(DURATION_PATTERN, text) is None:
        raise ValueError(f"invalid duration {text!r}: use numbers with units ms, s, m, h, d or w, such as 30s or 7d")
    return runtime_quantities.parse_duration(text)


def parse_byte_quantity(quantity: int | str) -> int:
    """``"10Gi"`` → ``10737418240``, ``"5G"`` → ``5000000000``, ``1024`` → ``1024`` (the runtime's parser)."""
    if isinstance(quantity, int):
        if quantity < 0:
            raise ValueError(f"invalid byte quantity {quantity}: must not be negative")
        return quantity
    if re.fullmatch(BYTE_QUANTITY_PATTERN, quantity) is None:
        raise ValueError(f"invalid byte quantity {quantity!r}: use an integer with an optional suffix such as Gi or G")
    return runtime_quantities.parse_byte_size(quantity)


def _valid_byte_quantity(quantity: int | str) -> int | str:
    parse_byte_quantity(quantity)
    return quantity


def _valid_quantity(quantity: int | str) -> int | str:
    if isinstance(quantity, str) and re.fullmatch(QUANTITY_PATTERN, quantity) is None:
        raise ValueError(f"invalid quantity {quantity!r}: use a Kubernetes quantity such as 500m, 2 or 1Gi")
    return quantity


def _integer_or_string_schema(pattern: str) -> dict[str, JsonValue]:
    # The one anyOf a structural schema allows: Kubernetes' int-or-string.
    return {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": pattern,
    }


ByteQuantity = Annotated[
    int | str,
    WithJsonSchema(_integer_or_string_schema(BYTE_QUANTITY_PATTERN)),
    AfterValidator(_valid_byte_quantity),
]
"""A number of bytes, as an integer or a string such as ``50Gi`` (see ``parse_byte_quantity``)."""

Quantity = Annotated[
    int | str,
    WithJsonSchema(_integer_or_string_schema(QUANTITY_PATTERN)),
    AfterValidator(_valid_quantity),
]
"""A Kubernetes resource quantity such as ``500m``, ``2`` or ``1Gi``."""

FreeFormObject = Annotated[
    dict[str, JsonValue],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""An object of any shape, kept as written (``x-kubernetes-preserve-unknown-fields``)."""
