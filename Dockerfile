# The loyalty engine image: one Python package with the `loyalty` entry point.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY topics ./topics
COPY workers ./workers
COPY consumers ./consumers
COPY mail ./mail
COPY store ./store
COPY stack ./stack
COPY cli ./cli
COPY demo ./demo
COPY admin ./admin
COPY settings.py bootstrap.py program_file.py web_access.py program.example.yaml ./
RUN pip install --no-cache-dir .
# Writable by the service user: the analytics example's tier-change log lives here.
RUN mkdir /data && chown nobody /data
# The worker keeps a small data directory in its working directory (faust) and the demo writes
# its worker log under .stack: run from a directory the unprivileged user owns.
RUN mkdir -p /var/lib/loyalty && chown nobody /var/lib/loyalty
WORKDIR /var/lib/loyalty
USER nobody
ENTRYPOINT ["loyalty"]
