#!/usr/bin/env bash
# Regenerate every generated file, or with --check fail when a checked-in copy has drifted:
#   crds/ and the chart's CRD templates and values.schema.json (from the pydantic models),
#   the gRPC stubs (from proto/), docs/openapi.json (from the REST app), deploy/argocd/argocd-cm.yaml and
#   deploy/argocd/resource_customizations/ (Argo CD's layout: health.lua, health_test.yaml, testdata/).
set -euo pipefail
cd "$(dirname "$0")/.."
check="${1:-}"
python=.venv/bin/python
$python -m sluice_operator.crd_generation $check
$python -m sluice_operator.chart_generation $check
$python scripts/generate_grpc_stubs.py $check
$python -m sluice.rest.openapi_document $check
$python scripts/generate_argocd_config.py $check
$python scripts/generate_argocd_health_tests.py $check
# Grafana dashboards (deploy/grafana/ and the chart's copy) and the chart's copy of deploy/prometheus/sluice-alerts.yaml.
$python scripts/generate_dashboards.py $check
$python scripts/generate_alert_rules.py $check
