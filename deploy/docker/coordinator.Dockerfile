# syntax=docker/dockerfile:1
# The Meridian coordinator as a container image: the release binary on debian:bookworm-slim, run
# as an unprivileged user. Built from the repository root (BuildKit;
# coordinator.Dockerfile.dockerignore keeps the context to the sources):
#   docker build -f deploy/docker/coordinator.Dockerfile -t meridian-coordinator .
# Run with a configuration whose data_dir is /var/lib/meridian-coordinator and whose listen.http
# is 0.0.0.0:8080 (inside the container; publish it only to your TLS-terminating proxy):
#   docker run -d --name meridian-coordinator --restart unless-stopped \
#     -p 4433:4433/udp -p 127.0.0.1:8080:8080 \
#     -v meridian-coordinator:/var/lib/meridian-coordinator \
#     -v /etc/meridian/coordinator.toml:/etc/meridian/coordinator.toml:ro \
#     meridian-coordinator
# Administration commands run in the same container, as its user:
#   docker exec meridian-coordinator coordinator token create \
#     --data-dir /var/lib/meridian-coordinator --region me-south --expires 1h

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The workspace's release profile (fat LTO: a few minutes); the cache mounts keep the registry
# and the target directory between builds, so the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p meridian-coordinator --bin coordinator \
    && install -m 0755 target/release/coordinator /usr/local/bin/coordinator

FROM debian:bookworm-slim
# Only the binary: it links glibc and libgcc_s (both in the base image); SQLite is compiled in
# and the web UI's assets are in the binary. A fixed numeric id, so that orchestrators can check
# it is not root (runAsNonRoot) and volumes can be chowned to it.
RUN groupadd --system --gid 10002 meridian-coordinator \
    && useradd --system --uid 10002 --gid 10002 --home-dir /var/lib/meridian-coordinator \
       --shell /usr/sbin/nologin meridian-coordinator \
    && install -d -o meridian-coordinator -g meridian-coordinator -m 0700 /var/lib/meridian-coordinator \
    && install -d -m 0755 /etc/meridian
COPY --from=build /usr/local/bin/coordinator /usr/bin/coordinator
USER 10002:10002
# The database and the CA (its private key): a volume, backed up like any database.
VOLUME ["/var/lib/meridian-coordinator"]
# QUIC for probes; HTTP for the web UI, the API and /healthz (must match listen.http's port).
EXPOSE 4433/udp 8080/tcp
ENV RUST_LOG=info HEALTHZ_PORT=8080
# GET /healthz answers "ok" while the HTTP side serves. The image has no HTTP client (only the
# binary), so bash's /dev/tcp asks; set HEALTHZ_PORT if listen.http uses another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/$HEALTHZ_PORT && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && grep -qx 'ok' <&3"]
ENTRYPOINT ["/usr/bin/coordinator"]
CMD ["run", "--config", "/etc/meridian/coordinator.toml"]
