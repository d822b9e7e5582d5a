# The image that `bin/jobctl export --format k8s` names (casejobs:latest): the jobs and their locked
# dependencies, nothing else. The home (ledger, locks, logs, backups) and the database live on the
# volume mounted at /data.
#   docker build -t casejobs:latest .
FROM python:3.11-slim

WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN python -m venv /app/.venv \
    && /app/.venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY bin/ bin/
COPY jobs/ jobs/
COPY lib/ lib/
COPY crontab.ist ./

# The jobs run as an unprivileged user; the volume must be writable by it (uid 10001).
RUN useradd --uid 10001 --no-create-home --home-dir /data casejobs
USER casejobs
ENV CASEJOBS_HOME=/data
VOLUME ["/data"]
ENTRYPOINT []
CMD ["/app/bin/jobstats"]
