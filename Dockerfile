# syntax=docker/dockerfile:1
# One image for every process: `blossom api` by default, `blossom worker` from the same image.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/blossom
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/blossom/bin/pip install .

FROM python:3.11-slim AS runtime
RUN useradd --system --create-home --uid 10001 blossom
COPY --from=build /opt/blossom /opt/blossom
ENV PATH=/opt/blossom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BLOSSOM_ENV=production \
    BLOSSOM_DATA_DIR=/home/blossom/data \
    HOST=0.0.0.0 \
    PORT=8000
USER blossom
WORKDIR /home/blossom
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=4)"
ENTRYPOINT ["blossom"]
CMD ["api"]
