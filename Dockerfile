# azwatch container image.
#
#   docker build -t azwatch .
#   docker run -d --name azwatch --read-only \
#       -v /var/run/docker.sock:/var/run/docker.sock \
#       -e CONTAINER_NAME=aleph-node azwatch
#
# The process runs as MONITOR_UID:MONITOR_GID (default 1000:996). The Docker socket must be
# reachable by that user: build with --build-arg MONITOR_GID=$(stat -c %g /var/run/docker.sock)
# or run with --group-add $(stat -c %g /var/run/docker.sock).
#
# Offline builds (CI): put wheels of the project's pinned dependencies and of its build
# requirements in .ci/wheels/ and pass --build-arg PIP_FLAGS="--no-index --find-links /wheels"
# (see .ci/build-image). Works with the legacy builder; needs no BuildKit features.

ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: a virtualenv at /opt/azwatch holding azwatch[notify] and its pinned deps -----
# Same base as the final image: azwatch is pure Python, so nothing here needs a compiler. The
# stage keeps the build context, the wheels and pip out of the final image's layers.
FROM ${PYTHON_IMAGE} AS builder

ARG PIP_FLAGS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Normally holds only .keep; CI fills it with wheels for --no-index installs.
COPY .ci/wheels/ /wheels/

# Dependencies first, in a layer that only pyproject.toml and constraints.txt invalidate.
# `python3 -m venv` works on the official images and on Debian's python3 + python3-venv.
COPY pyproject.toml constraints.txt /src/
RUN set -eux; \
    python3 -m venv /opt/azwatch; \
    python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p.get("dependencies", []) + p.get("optional-dependencies", {}).get("notify", [])))' \
        > /tmp/requirements.txt; \
    cat /tmp/requirements.txt; \
    /opt/azwatch/bin/python -m pip install --no-compile ${PIP_FLAGS} \
        -c constraints.txt -r /tmp/requirements.txt

# The project itself (.dockerignore keeps the context to what this needs).
COPY . /src/
RUN set -eux; \
    /opt/azwatch/bin/python -m pip install --no-compile ${PIP_FLAGS} \
        -c constraints.txt '.[notify]'; \
    /opt/azwatch/bin/python -m pip uninstall -y setuptools wheel; \
    /opt/azwatch/bin/python -m pip check; \
    /opt/azwatch/bin/python -m pip uninstall -y pip; \
    find /opt/azwatch -depth -name __pycache__ -type d -exec rm -rf '{}' +; \
    /opt/azwatch/bin/python -m compileall -q -j 0 --invalidation-mode checked-hash /opt/azwatch/lib; \
    /opt/azwatch/bin/azwatch --help > /dev/null

# --- final image: the base plus /opt/azwatch, nothing else -------------------------------
FROM ${PYTHON_IMAGE}

ARG MONITOR_UID=1000
ARG MONITOR_GID=996

LABEL org.opencontainers.image.title="azwatch" \
      org.opencontainers.image.description="Event-driven watchdog that restarts an out-of-sync Aleph Zero node container" \
      org.opencontainers.image.source="https://github.com/OWNER/azwatch" \
      org.opencontainers.image.licenses="MIT"

# MONITOR_UID/MONITOR_GID are also visible to azwatch at run time. HTTP_PORT serves /healthz
# for the HEALTHCHECK below (and /metrics, /status) on the container's loopback only; 9616
# stays clear of aleph-node's own Prometheus port 9615 under --network host.
ENV MONITOR_UID=${MONITOR_UID} \
    MONITOR_GID=${MONITOR_GID} \
    HTTP_PORT=9616 \
    HTTP_HOST=127.0.0.1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/azwatch/bin:${PATH}

# The user and its primary group, written directly (useradd may be missing). The group is
# named "docker" (like the host group owning the socket) unless that GID already has a name.
RUN set -eu; \
    case "${MONITOR_UID}${MONITOR_GID}" in ''|*[!0-9]*) \
        echo "MONITOR_UID and MONITOR_GID must be numeric" >&2; exit 1;; esac; \
    group=$(awk -F: -v gid="${MONITOR_GID}" '$3 == gid { print $1; exit }' /etc/group); \
    if [ -z "$group" ]; then \
        group=docker; \
        if grep -q '^docker:' /etc/group; then group=azwatch-docker; fi; \
        echo "$group:x:${MONITOR_GID}:" >> /etc/group; \
        if [ -f /etc/gshadow ]; then echo "$group:!::" >> /etc/gshadow; fi; \
    fi; \
    if awk -F: -v uid="${MONITOR_UID}" '$3 == uid { found = 1 } END { exit !found }' /etc/passwd; then \
        echo "uid ${MONITOR_UID} already exists; running as it"; \
    else \
        echo "azwatch:x:${MONITOR_UID}:${MONITOR_GID}:azwatch:/nonexistent:/usr/sbin/nologin" >> /etc/passwd; \
        if [ -f /etc/shadow ]; then echo 'azwatch:!:::::::' >> /etc/shadow; fi; \
    fi; \
    echo "user ${MONITOR_UID} ($(awk -F: -v uid="${MONITOR_UID}" '$3 == uid { print $1; exit }' /etc/passwd)), group ${MONITOR_GID} ($group)"

COPY --from=builder /opt/azwatch /opt/azwatch

# The image runs read-only and never writes bytecode, so compile at build time whatever
# standard-library modules azwatch imports and the base left uncompiled (the official
# python images ship without .pyc files; on bases that have them this writes nothing).
RUN PYTHONDONTWRITEBYTECODE= /opt/azwatch/bin/python -c 'import importlib, pkgutil, azwatch; [importlib.import_module(m.name) for m in pkgutil.walk_packages(azwatch.__path__, "azwatch.") if m.name != "azwatch.__main__"]; import aiodocker, aiohttp, anyio, apprise, prometheus_client'

USER ${MONITOR_UID}:${MONITOR_GID}
WORKDIR /

# Stopped mid-restart, azwatch waits for the restart (STOP_TIMEOUT + 30 s at most). An image
# cannot carry a stop timeout, so run it with `--stop-timeout 120` (compose:
# `stop_grace_period: 120s`); Docker's default 10 s would kill it first (docs/safety.md).
STOPSIGNAL SIGTERM

# Is the watcher itself working? `check --watcher` asks its /healthz: 0 yes, 3 no (its log
# stream is stuck, Docker is unreachable, or its tasks stopped). A lagging *node* is not an
# unhealthy watcher; that is what the watcher restarts.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["/opt/azwatch/bin/azwatch", "check", "--watcher"]

# Exec form, no wrapper: azwatch is PID 1 and receives SIGTERM itself.
ENTRYPOINT ["/opt/azwatch/bin/azwatch"]
CMD ["run"]
