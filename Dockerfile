# syntax=docker/dockerfile:1
#
# The digester KRM function as a container image (linux/amd64 and linux/arm64 with buildx):
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/digester:TAG --push .
# `make image` builds the same layout of image without docker (cmd/mkimage, FROM scratch).
#
# The base images are named by tag, not digest: this file was written where no registry could
# be reached, and a digest not read from the registry would break every build. Pin them once
# you can read them, e.g. `crane digest gcr.io/distroless/static-debian12:nonroot`, and write
# FROM gcr.io/distroless/static-debian12:nonroot@sha256:<that digest>.

# The Go version go.mod asks for.
ARG GO_VERSION=1.26.8

# Cross-compile on the build machine's own platform: the binary is pure Go, so no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/digester .

# distroless static: CA certificates, tzdata, /etc/passwd with nobody (kpt runs container
# functions as --user nobody) and nonroot (65532); no shell, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/digester /usr/local/bin/digester
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/digester"]
