# The loyalty engine image: one Python package with the `loyalty` entry point.
FROM python:3.11-slim

# An unprivileged user of its own: nothing in the container runs as root.
RUN useradd --system --uid 10001 --home-dir /var/lib/loyalty --create-home loyalty \
    && mkdir /data && chown loyalty /data

WORKDIR /app
# Dependencies first, in their own layer: a change to the source reuses it; only a change to
# pyproject.toml installs them again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md LICENSE ./
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
COPY settings.py bootstrap.py program_file.py web_access.py client_options.py program.example.yaml ./
RUN pip install --no-cache-dir --no-deps .

# The worker keeps a small data directory in its working directory (faust), the analytics
# example writes under /data, and the demo writes its worker log under .stack: all owned by
# the service user.
WORKDIR /var/lib/loyalty
USER loyalty
ENTRYPOINT ["loyalty"]
