# syntax=docker/dockerfile:1
# One image for the driver (rds-csi), the emulator (rds-emulator) and the
# scenario runner (rds-scenario): every command under cmd/, built static.
#
#   docker build --target node -t ghcr.io/rds-csi/rds-csi:v0.1.0 .
#       Debian slim + nvme-cli, e2fsprogs, xfsprogs, util-linux. The node
#       plugin runs as root (privileged): it formats, mounts and connects.
#   docker build --target distroless -t ghcr.io/rds-csi/rds-csi:v0.1.0-distroless .
#       The same binaries on distroless, as user 65532: the controller and
#       the emulator need no tools and no root.
# The last stage (node) is the default target.

# GO_VERSION is the Go toolchain of the build stage (go.mod's go line).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X github.com/rds-csi/rds-csi/driver.Version=${VERSION}" \
      -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot AS distroless
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rds-csi"]

FROM debian:bookworm-slim AS node
RUN apt-get update \
    && apt-get install -y --no-install-recommends nvme-cli e2fsprogs xfsprogs util-linux \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/rds-csi"]
