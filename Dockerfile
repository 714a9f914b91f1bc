# Agora's image: one static binary, run as a non-root user, on an empty
# base: no shell, no package manager, nothing to patch but Agora.
#
#   docker build -t agora --build-arg VERSION=$(git describe --always) .
#
# deploy/check/dockerfile_test.go asserts these properties (make test).

# ---- build ----
FROM golang:1.26.8 AS build
WORKDIR /src
# Modules first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/agora ./cmd/agora

# ---- run ----
FROM scratch
# Vault, Redis (rediss://) and producers' adapters are reached over TLS.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/agora /agora
COPY catalog.yml /etc/agora/catalog/catalog.yml
# 65532: the conventional "nonroot" user; no /etc/passwd is needed.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/agora"]
CMD ["serve", "-config", "/etc/agora/agora.yml"]
