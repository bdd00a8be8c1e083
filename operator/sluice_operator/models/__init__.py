"""Pydantic models of Sluice's custom resources (group ``sluice.dev``, version ``v1alpha1``).

One module per kind, plus ``common`` for shared types (with ``schema``, what every model is made of, and
``resource_definitions``, the API group and what a CRD says about a kind beyond its schema). These models are
the single source of the CRD schemas, printer columns and defaults (``sluice_operator.crd_generation`` turns
them into manifests), and they parse the objects the operator reads.
"""

from sluice_operator.models.common import API_VERSION, CATEGORY, GROUP, VERSION, CustomResource
from sluice_operator.models.consumer_groups import ConsumerGroup
from sluice_operator.models.event_streams import EventStream
from sluice_operator.models.projections import Projection
from sluice_operator.models.replays import Replay
from sluice_operator.models.retention_policies import RetentionPolicy

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "CUSTOM_RESOURCES",
    "GROUP",
    "VERSION",
    "ConsumerGroup",
    "CustomResource",
    "EventStream",
    "Projection",
    "Replay",
    "RetentionPolicy",
]

CUSTOM_RESOURCES: tuple[type[CustomResource], ...] = (
    EventStream,
    ConsumerGroup,
    RetentionPolicy,
    Projection,
    Replay,
)
"""Every kind, in the order they are documented."""
