# syntax=docker/dockerfile:1
# salur: one binary. migrations/ and queues/topology.json are compiled into it
# (sqlx::migrate! and include_str!), so the runtime image needs nothing else.
#
#   docker build -t salur .
#   docker run --rm salur --help

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds (BuildKit); the binary is copied
# out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/salur /out/salur

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 salur \
 && useradd --system --uid 10001 --gid salur --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin salur
COPY --from=build /out/salur /usr/local/bin/salur
USER 10001:10001
# The metrics endpoint (METRICS_ADDR, e.g. 0.0.0.0:9464).
EXPOSE 9464
ENTRYPOINT ["salur"]
CMD ["--help"]
