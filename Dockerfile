# Two images, each one static binary on distroless/static (CA certificates,
# tzdata, /etc/passwd with the nonroot user), running as UID 65532:
#
#   docker build -t injector .
#   docker build --target injector-webhook -t injector-webhook .
#
# `injector version` shows VERSION, COMMIT and the date of SOURCE_DATE_EPOCH
# (never the time of the build, so a rebuild is byte for byte the same).
# The build context has no .git, so pass them from the checkout:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) -t injector .
#
# The default target is the injector image: the init container, the sidecar
# and the wrapper. The injector-webhook image is the Kubernetes admission
# webhook (deploy/helm/injector-webhook), a cluster component kept out of
# the injector binary so the sidecar in every Pod carries no Kubernetes code.
#
# The build stages run scripts/build-static, the same script CI runs without
# a Docker engine, so what is tested is what ships.
#
# Entry point. The injector image's ENTRYPOINT is the bare binary, so
# Kubernetes init containers and sidecars pass a command (`render ...`). To
# wrap an application, copy the binary into its image and make injector the
# entry point, with the app as CMD:
#
#   COPY --from=injector /usr/local/bin/injector /usr/local/bin/injector
#
# (injector being the image built above: no image is published to a
# registry yet.)
#   ENTRYPOINT ["injector", "run", "--"]
#   CMD ["/app/server", "--port", "8080"]
#
# `injector run` renders the templates, then exec(2)s the CMD with the
# secrets in its environment (or supervises it when it is PID 1).

# It builds with BuildKit (docker buildx, multi-platform: the build stages run
# on the builder's platform and cross-compile for each target) and with the
# legacy builder of distribution-packaged engines, which sets no platform
# arguments: $BUILDPLATFORM then falls back to linux/amd64 and an empty
# TARGETOS/TARGETARCH means the build stages' own platform. No `# syntax=`
# line and no RUN --mount, which the legacy builder lacks: the modules layer
# below is cached until go.mod or go.sum change.

ARG GO_VERSION=1.26

FROM --platform=${BUILDPLATFORM:-linux/amd64} golang:${GO_VERSION} AS source
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .

# Each image builds only its own binary.
FROM source AS build-webhook
ARG VERSION=dev
ARG COMMIT
ARG SOURCE_DATE_EPOCH
ARG TARGETOS
ARG TARGETARCH
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION COMMIT=$COMMIT SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH \
    OUT=/out/injector-webhook scripts/build-static ./cmd/injector-webhook

FROM source AS build
ARG VERSION=dev
ARG COMMIT
ARG SOURCE_DATE_EPOCH
ARG TARGETOS
ARG TARGETARCH
# Execute-only (0111): the kernel makes a process whose binary it cannot
# read non-dumpable from exec on, so no other process of the same user (an
# app sharing a Pod's process namespace with the sidecar) ever reaches
# injector's /proc entries, not even before main runs (docs/kubernetes.md).
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION COMMIT=$COMMIT SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH \
    OUT=/out/injector scripts/build-static ./cmd/injector && chmod 0111 /out/injector

FROM gcr.io/distroless/static-debian12:nonroot AS injector-webhook
COPY --from=build-webhook /out/injector-webhook /usr/local/bin/injector-webhook
# Numeric, so Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/injector-webhook"]

# The last stage is the default target.
FROM gcr.io/distroless/static-debian12:nonroot AS injector
COPY --from=build /out/injector /usr/local/bin/injector
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/injector"]
CMD ["--help"]
