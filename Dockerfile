# syntax=docker/dockerfile:1.7
# One image for everything Sluice runs in a cluster: the operator (sluice-operator), the gateway
# (sluice serve) and the consumer, projection and replay pods (sluice consume | project | replay).
# Build: docker build -t sluice:dev .    Lint: .venv/bin/hadolint Dockerfile (a test does both checks
# that can run without Docker: hadolint, and the wheel installed as below with every entrypoint run).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_VERSION=0.13.9 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY runtime ./runtime
COPY operator ./operator
# The wheel, and the locked runtime dependencies (no dev group) installed beside it into /opt/sluice.
RUN uv build --wheel --out-dir /dist \
 && uv export --frozen --no-dev --extra operator --no-emit-project --no-hashes --output-file /dist/requirements.txt \
 && uv venv /opt/sluice \
 && uv pip install --python /opt/sluice/bin/python --compile-bytecode --no-cache \
      --requirement /dist/requirements.txt /dist/sluice-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Kubernetes-native event streaming on PostgreSQL" \
      org.opencontainers.image.source="https://github.com/sluice-dev/sluice" \
      org.opencontainers.image.licenses="Apache-2.0" \
      dev.sluice.entrypoints="sluice,sluice-operator"
# Non-root, and nothing written at run time: bytecode is compiled at build time, so the root file
# system can be mounted read-only (the chart mounts an emptyDir at /tmp).
RUN groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid sluice --home-dir /tmp --shell /usr/sbin/nologin sluice
COPY --from=build /opt/sluice /opt/sluice
ENV PATH=/opt/sluice/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
EXPOSE 8080 50051
ENTRYPOINT ["sluice"]
CMD ["--help"]
