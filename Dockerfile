# syntax=docker/dockerfile:1
# One image for every process: `blossom api` by default, `blossom worker` from the same image.

# Dependencies first, from pyproject.toml alone: a change to the sources or the README
# reuses this layer instead of downloading and installing every dependency again. The otlp
# extra too: OTEL_TRACES_EXPORTER=otlp is how a deployment exports its traces.
FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
RUN python -m venv /opt/blossom \
 && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['otlp']))" > requirements.txt \
 && /opt/blossom/bin/pip install -r requirements.txt

# The project itself, as a wheel (about 1 MB).
FROM deps AS app
COPY README.md ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/blossom/bin/pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
RUN useradd --system --create-home --uid 10001 blossom
COPY --from=deps /opt/blossom /opt/blossom
COPY --from=app /wheels /wheels
RUN /opt/blossom/bin/pip install --no-deps --no-index --no-cache-dir /wheels/*.whl \
 && /opt/blossom/bin/pip check \
 && rm -rf /wheels
ENV PATH=/opt/blossom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BLOSSOM_ENV=production \
    BLOSSOM_DATA_DIR=/home/blossom/data \
    HOST=0.0.0.0 \
    PORT=8000
USER blossom
WORKDIR /home/blossom
EXPOSE 8000
# GET /healthz when the container runs the API (`api`, `up`, `demo`); a worker serves no HTTP.
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-m", "interfaces.cli.healthcheck"]
ENTRYPOINT ["blossom"]
CMD ["api"]
