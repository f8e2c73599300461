# One image for every Govflow process; docker-compose.yml's `command` picks the part:
#   python -m services.identity.server | services.certificates.server |
#   services.matters.server | workflows.worker
# (and `python -m govflow.healthcheck HOST:PORT` for container health checks).
# Same Python as the development venv (3.11.7).
FROM python:3.11.7-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, from the lock file, so a code change does not reinstall them.
# requirements.lock is the full resolved set (it also holds the test tools, which the
# constraint install below leaves out: only what pyproject.toml's dependencies need).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -c requirements.lock -r /tmp/requirements.txt

# The code the entry points import: the shared kit with its generated stubs, the services
# with their Alembic migrations and the matter catalogue, the workflows, and the CLI
# (govflow_cli: the demo profile's seed command).
COPY govflow ./govflow
COPY govflow_cli ./govflow_cli
COPY services ./services
COPY workflows ./workflows
# Bytecode ahead of time: PYTHONDONTWRITEBYTECODE stops Python writing it at run time, and
# the worker's sandbox imports workflows/application.py for every workflow it starts.
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q govflow govflow_cli services workflows \
    && python -c "import services.identity.server, services.certificates.server, services.matters.server, workflows.worker, govflow.healthcheck, govflow_cli.cli"

ENV GOVFLOW_HOST=0.0.0.0 GOVFLOW_LOG_JSON=true
# No state in the container: databases are PostgreSQL by URL; nobody needs to write here.
USER 65534:65534
EXPOSE 50051 50052 50053
