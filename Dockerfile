# The digester KRM function as a container image, FROM scratch: nothing is pulled, so it builds
# with any Docker Engine, offline. `make image-docker` builds it for the machine's platform:
#   make build                                  # bin/digester, static (CGO_ENABLED=0)
#   go run ./cmd/mkimage -rootfs out/rootfs     # CA bundle, /etc/passwd and group, /tmp
#   docker build --build-arg VERSION=v1.2.0 --build-arg REVISION=$(git rev-parse HEAD) -t localhost/digester:dev .
# `make image` builds the same image without docker (cmd/mkimage), for linux/amd64 and linux/arm64;
# e2e/container checks that both give the same files, entrypoint, user and labels.

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
# /etc/passwd names nonroot (65532, the image's user) and nobody (kpt runs container functions
# as --user nobody); /tmp is 1777. Modes come from out/rootfs, owners are root.
COPY out/rootfs/ /
COPY bin/digester /usr/local/bin/digester
ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/digester"]
LABEL org.opencontainers.image.title="digester" \
      org.opencontainers.image.description="KRM function pinning container images to their digests" \
      org.opencontainers.image.source="https://github.com/digester/digester" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
