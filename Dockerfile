# syntax=docker/dockerfile:1
# budo: the Slack bot image. Build from the repository root:
#   docker build -t budo:0.1.0 .
# Two stages: the builder turns budo and every dependency into wheels; the final image installs
# those wheels and nothing else, so no compiler, pip cache or source tree ships in it.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Metadata first, then the packages pyproject's [tool.setuptools.packages.find] includes
# (tests/test_manifests.py checks this list against pyproject so a new package is not missed).
# scenarios/library/*.yaml rides along as package data.
COPY pyproject.toml README.md ./
COPY budo ./budo
COPY agent ./agent
COPY bot ./bot
COPY storage ./storage
COPY scenarios ./scenarios

# Every dependency of budo publishes wheels for linux amd64/arm64, so the builder needs no
# compiler either; on a platform without them, add build-essential here, never below.
RUN pip wheel --wheel-dir /wheels .


FROM python:3.11-slim

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and the
# Deployment's runAsUser/fsGroup use the same 10001.
RUN groupadd --system --gid 10001 budo \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/budo --shell /usr/sbin/nologin budo \
    && mkdir -p /var/lib/budo \
    && chown 10001:10001 /var/lib/budo

# Bind-mount the wheels instead of COPYing them, so they never become a layer of the image.
# --no-index: install exactly what the builder resolved, nothing fetched at this point.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl

# BUDO_DB lives on the volume (a PVC in Kubernetes) so the audit trail survives restarts.
# No .pyc writes: the root filesystem is read-only in the Deployment.
ENV BUDO_DB=/var/lib/budo/budo.db \
    HOME=/var/lib/budo \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

VOLUME ["/var/lib/budo"]
WORKDIR /var/lib/budo
USER 10001:10001

# GET /healthz on 3000 in both Socket Mode and HTTP mode (in HTTP mode Slack posts here too).
EXPOSE 3000

# slim has no curl: urlopen raises on a refused connection or a non-2xx status -> exit 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

ENTRYPOINT ["budo"]
CMD ["serve"]
