# syntax=docker/dockerfile:1.7
# One image for everything Sluice runs in a cluster: the operator (sluice-operator), the gateway
# (sluice serve) and the consumer, projection and replay pods (sluice consume | project | replay).
# Build: docker build -t sluice:dev .    Lint: .venv/bin/hadolint Dockerfile
# Without Docker: ./dev image (scripts/image/build.sh) builds it with buildah FROM a Debian bookworm base
# made locally with debootstrap (PYTHON_IMAGE=localhost/sluice-base:<hash>); see docs/platform.md.
# PYTHON_IMAGE may be any Debian bookworm image with python3 and its venv module on PATH.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Downloads trust the image's CA store (pip would use its own bundle, uv its built-in roots).
ENV UV_VERSION=0.13.9 \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# uv in a virtualenv of its own: python:*-slim has pip, Debian's python3 has no pip (and refuses
# installs into the system Python), both have the venv module.
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install "uv==${UV_VERSION}"
WORKDIR /src
# The locked runtime dependencies (no dev group) into /opt/sluice first: this layer is reused while
# only the sources change.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv export --frozen --no-dev --extra operator --no-emit-project --no-hashes \
      --output-file /tmp/requirements.txt \
 && /opt/uv/bin/uv venv --python python3 /opt/sluice \
 && /opt/uv/bin/uv pip install --python /opt/sluice/bin/python --compile-bytecode --no-cache \
      --requirement /tmp/requirements.txt
# Then Sluice's wheel beside them.
COPY runtime ./runtime
COPY operator ./operator
RUN /opt/uv/bin/uv build --wheel --out-dir /dist \
 && /opt/uv/bin/uv pip install --python /opt/sluice/bin/python --compile-bytecode --no-cache --no-deps \
      /dist/sluice-*.whl \
 && /opt/uv/bin/uv pip check --python /opt/sluice/bin/python

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
