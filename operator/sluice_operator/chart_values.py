"""The Helm chart's values as pydantic models: the single source of ``charts/sluice/values.schema.json``.

Helm validates ``values.yaml`` and every ``--set`` against that schema on install, upgrade, lint and template,
so a misspelt key or a wrong type fails before anything reaches the cluster.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Port = Annotated[int, Field(ge=1, le=65535)]
KubernetesName = Annotated[str, Field(pattern=r"^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]


class StrictValues(BaseModel):
    """Unknown keys are errors: a typo in values must not be silently ignored. Keys are camelCase, as in Helm."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ImageValues(StrictValues):
    repository: str = "ghcr.io/sluice-dev/sluice"
    tag: str = Field(default="", description="Defaults to the chart's appVersion.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class DatabaseValues(StrictValues):
    secret_name: KubernetesName = Field(default="", description="Secret with the default database's PostgreSQL URL.")
    secret_key: str = "uri"  # noqa: S105  (the name of a key in the Secret, not a secret)
    schema_: Annotated[str, Field(alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "sluice"


class CrdValues(StrictValues):
    install: bool = True
    keep: bool = Field(default=True, description="Keep the CRDs (and all Sluice resources) on uninstall.")


class OperatorValues(StrictValues):
    watch_namespaces: list[KubernetesName] = Field(default_factory=list)
    log_level: Literal["debug", "info"] = "info"
    health_port: Port = 8081
    metrics_port: Port = 8080
    watch_inactivity_timeout_seconds: Annotated[int, Field(ge=10)] = 300
    resync_seconds: Annotated[int, Field(ge=1)] = 15
    resources: dict[str, Any] = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    )
    pod_annotations: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)


class ServiceAccountValues(StrictValues):
    create: bool = True
    name: KubernetesName = ""
    annotations: dict[str, str] = Field(default_factory=dict)


class RbacValues(StrictValues):
    create: bool = True


class ServiceValues(StrictValues):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"


class DisruptionBudgetValues(StrictValues):
    enabled: bool = True
    min_available: Annotated[int, Field(ge=0)] | str = 1


class GatewayValues(StrictValues):
    enabled: bool = False
    replicas: Annotated[int, Field(ge=0)] = 2
    grpc_port: Port = 50051
    http_port: Port = 8080
    health_port: Port = Field(
        default=8081, description="Plain HTTP serving only /health/* (the probes use it, also when TLS is on)."
    )
    api_tokens_secret_name: KubernetesName = ""
    access_policy_config_map_name: KubernetesName = ""
    tls_secret_name: KubernetesName = Field(
        default="", description="A kubernetes.io/tls Secret: serve gRPC and REST over TLS."
    )
    tls_client_auth: bool = Field(
        default=False, description="Require client certificates signed by the ca.crt of tlsSecretName (mTLS)."
    )
    grace_seconds: Annotated[float, Field(ge=0)] = Field(
        default=10, description="How long in-flight calls may finish on SIGTERM."
    )
    close_seconds: Annotated[float, Field(ge=0)] = Field(
        default=5, description="After the grace period: the time limit of closing the store."
    )
    max_request_body_bytes: Annotated[int, Field(ge=0)] = Field(
        default=0, description="REST bodies over this are refused with 413; 0: the payload limit plus 1 MiB."
    )
    termination_grace_period_seconds: Annotated[int, Field(ge=0)] = 30
    service: ServiceValues = Field(default_factory=ServiceValues)
    pod_disruption_budget: DisruptionBudgetValues = Field(default_factory=DisruptionBudgetValues)
    resources: dict[str, Any] = Field(
        default_factory=lambda: {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    )


class ServiceMonitorValues(StrictValues):
    enabled: bool = False
    interval: Annotated[str, Field(pattern=r"^[0-9]+(ms|s|m|h)$")] = "30s"
    labels: dict[str, str] = Field(default_factory=dict)


class PodMonitorValues(StrictValues):
    """A Prometheus Operator PodMonitor for the pods the operator runs (ConsumerGroup workers and projections),
    which serve /metrics on their http port; needs its CRD."""

    enabled: bool = False
    interval: Annotated[str, Field(pattern=r"^[0-9]+(ms|s|m|h)$")] = "30s"
    labels: dict[str, str] = Field(default_factory=dict)


class PrometheusRuleValues(StrictValues):
    """A PrometheusRule with Sluice's alert rules (deploy/prometheus/sluice-alerts.yaml); needs its CRD."""

    enabled: bool = False
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra labels, e.g. the one your Prometheus's ruleSelector matches."
    )


class GrafanaDashboardsValues(StrictValues):
    """ConfigMaps with Sluice's Grafana dashboards (deploy/grafana/), found by Grafana's dashboard sidecar."""

    enabled: bool = False
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="The label the sidecar looks for (its `label` and `labelValue` settings).",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="E.g. grafana_folder: Sluice, when the sidecar's folderAnnotation is set."
    )
    namespace: KubernetesName = Field(default="", description="Where the ConfigMaps go; empty: the release's.")


class KedaScaledObjectValues(StrictValues):
    """One KEDA ScaledObject (and its TriggerAuthentication) scaling a ConsumerGroup on its lag in events, with
    the postgresql trigger and Sluice's lag query (runtime/sluice/storage/postgres/sql/keda_lag.sql)."""

    consumer_group: Annotated[KubernetesName, Field(min_length=1)] = Field(
        description="The ConsumerGroup's metadata.name: the scale target and the group in the lag query."
    )
    stream: Annotated[KubernetesName, Field(min_length=1)] = Field(
        description="The stream the group reads (the EventStream's stream name, by default its metadata.name)."
    )
    namespace: KubernetesName = Field(default="", description="The ConsumerGroup's namespace; empty: the release's.")
    schema_: Annotated[str, Field(alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "sluice"
    max_replica_count: Annotated[int, Field(ge=1)] = Field(
        description="The stream's partitions: replicas beyond them own no partition and sit idle."
    )
    min_replica_count: Annotated[int, Field(ge=0)] = Field(
        default=1, description="0 scales an idle group to zero (only for a group that already had a member)."
    )
    target_lag: Annotated[int, Field(ge=1)] = Field(default=1000, description="Events of lag per replica.")
    activation_lag: Annotated[int, Field(ge=0)] = Field(
        default=0, description="From zero replicas: activate when the lag is above this."
    )
    polling_interval: Annotated[int, Field(ge=1)] = 15
    cooldown_period: Annotated[int, Field(ge=0)] = 300
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0)] = 300
    connection_secret_name: Annotated[KubernetesName, Field(min_length=1)] = Field(
        default="sluice-database", description="A Secret in the group's namespace with a PostgreSQL URL KEDA reads."
    )
    connection_secret_key: str = "uri"  # noqa: S105  (the name of a key in the Secret, not a secret)


class KedaValues(StrictValues):
    scaled_objects: list[KedaScaledObjectValues] = Field(
        default_factory=list, description="KEDA ScaledObjects for ConsumerGroups (the KEDA CRDs must exist)."
    )


class ChartValues(StrictValues):
    """Everything ``values.yaml`` may set."""

    image: ImageValues = Field(default_factory=ImageValues)
    image_pull_secrets: list[dict[str, str]] = Field(default_factory=list)
    fullname_override: str = ""
    database: DatabaseValues = Field(default_factory=DatabaseValues)
    crds: CrdValues = Field(default_factory=CrdValues)
    operator: OperatorValues = Field(default_factory=OperatorValues)
    service_account: ServiceAccountValues = Field(default_factory=ServiceAccountValues)
    rbac: RbacValues = Field(default_factory=RbacValues)
    gateway: GatewayValues = Field(default_factory=GatewayValues)
    service_monitor: ServiceMonitorValues = Field(default_factory=ServiceMonitorValues)
    keda: KedaValues = Field(default_factory=KedaValues)
    pod_monitor: PodMonitorValues = Field(default_factory=PodMonitorValues)
    prometheus_rule: PrometheusRuleValues = Field(default_factory=PrometheusRuleValues)
    grafana_dashboards: GrafanaDashboardsValues = Field(default_factory=GrafanaDashboardsValues)
