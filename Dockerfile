# One image for the driver, the emulator and the scenario runner. Minimal for now:
# the deploy issue adds the node tools (nvme-cli, e2fsprogs, xfsprogs, util-linux).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot
ENTRYPOINT ["/usr/local/bin/rds-emulator"]
