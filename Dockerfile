# hedgebot image: a virtualenv built in one stage, copied into a slim runtime that runs
# as an unprivileged user. Build: docker build -t hedgebot .   Run: see docker-compose.yml.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# The package from this checkout (not from an index), with the Postgres driver; the
# migrations go with it, to /opt/venv/share/hedgebot/migrations (pyproject's data-files).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY migrations ./migrations
RUN /opt/venv/bin/pip install ".[postgres]"

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 hedgebot \
    && useradd --system --uid 10001 --gid hedgebot --home-dir /var/lib/hedgebot \
       --create-home --shell /usr/sbin/nologin hedgebot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEDGEBOT_LOG_FORMAT=json
WORKDIR /var/lib/hedgebot
# Numeric, so the runtime can check it is not root without reading /etc/passwd.
USER 10001:10001
# /healthz, /readyz, /metrics ([http] port).
EXPOSE 8780
# The process is alive and its HTTP server answers; HEDGEBOT_HTTP__PORT moves it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HEDGEBOT_HTTP__PORT', '8780') + '/healthz', timeout=4)"]
ENTRYPOINT ["hedgebot"]
CMD ["run", "--migrate"]
