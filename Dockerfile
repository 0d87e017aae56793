# syntax=docker/dockerfile:1
# nanobot: a build stage installs the locked dependencies (uv.lock, hashes checked) into /venv, and
# the runtime stage copies only that environment onto the same pinned base image.
# Pinned to a patch release; to pin the digest too: docker buildx imagetools inspect <image>.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip install --no-cache-dir uv==0.13.9
# The dependencies first (a layer that survives code changes), then the project itself.
COPY pyproject.toml uv.lock README.md LICENSE ./
RUN uv sync --locked --no-dev --extra postgres --no-install-project
COPY bot ./bot
COPY cogs ./cogs
RUN uv sync --locked --no-dev --extra postgres --no-editable

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/venv/bin:$PATH \
    DATA_DIR=/data \
    HEALTH_PORT=8080
# Fonts for the /usage chart's words in every language (Pillow's own font has no accents or Japanese).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core=2.37-6 fonts-noto-cjk=1:20220127+repack1-1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 nanobot \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /venv /venv
WORKDIR /app
USER 10001
VOLUME ["/data"]
EXPOSE 8080
# Liveness: GET /livez answers while the process and its event loop do. Readiness (/readyz: gateway and
# database) is for load balancers and Kubernetes readiness probes; it would mark the container unhealthy
# during exactly the database failover the bot rides out.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot.ops.probe", "/livez"]
# SIGTERM lets running jobs finish for SHUTDOWN_GRACE (10 s): stop with a longer timeout (docker run
# --stop-timeout 30, compose's stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
