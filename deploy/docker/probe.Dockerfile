# syntax=docker/dockerfile:1
# The Meridian probe as a container image: the release binary on debian:bookworm-slim, run as an
# unprivileged user. Built from the repository root (BuildKit; probe.Dockerfile.dockerignore
# keeps the context to the sources):
#   docker build -f deploy/docker/probe.Dockerfile -t meridian-probe .
# Enrol once into the state volume, then run (deploy/README.md, "Docker"):
#   docker run --rm -v meridian-probe:/var/lib/meridian-probe meridian-probe enroll \
#     --coordinator IP:PORT --server-name NAME --token TOKEN --ca-fingerprint HEX \
#     --state-dir /var/lib/meridian-probe
#   docker run -d --name meridian-probe --restart unless-stopped \
#     -v meridian-probe:/var/lib/meridian-probe -v /etc/meridian/probe.toml:/etc/meridian/probe.toml:ro \
#     meridian-probe

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The workspace's release profile (size-optimised, fat LTO, stripped); the cache mounts keep the
# registry and the target directory between builds, so the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p meridian-probe --bin probe \
    && install -m 0755 target/release/probe /usr/local/bin/probe

FROM debian:bookworm-slim
# Only the binary: it links glibc and libgcc_s (both in the base image) and carries its own
# trust roots (webpki-roots), so no ca-certificates either. A fixed numeric id, so that
# orchestrators can check it is not root (runAsNonRoot) and volumes can be chowned to it.
RUN groupadd --system --gid 10001 meridian-probe \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/meridian-probe \
       --shell /usr/sbin/nologin meridian-probe \
    && install -d -o meridian-probe -g meridian-probe -m 0700 /var/lib/meridian-probe \
    && install -d -m 0755 /etc/meridian
COPY --from=build /usr/local/bin/probe /usr/bin/probe
USER 10001:10001
# Key, certificate, assignments and the spool: keep it across container replacements, or the
# probe must enrol again and loses the results it had not delivered yet.
VOLUME ["/var/lib/meridian-probe"]
ENV RUST_LOG=info
# No HEALTHCHECK: the probe serves nothing to ask. Its liveness is what the coordinator already
# tracks (a probe silent for two heartbeat intervals is flagged), and a crash ends the process,
# which the restart policy handles.
ENTRYPOINT ["/usr/bin/probe"]
CMD ["run", "--config", "/etc/meridian/probe.toml"]
