# The loyalty engine image: one Python package with the `loyalty` entry point.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY topics ./topics
COPY workers ./workers
COPY consumers ./consumers
COPY store ./store
COPY stack ./stack
COPY cli ./cli
COPY demo ./demo
COPY settings.py bootstrap.py program_file.py program.example.yaml ./
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["loyalty"]
