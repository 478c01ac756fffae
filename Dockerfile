# syntax=docker/dockerfile:1
#
# Images for docker-compose.yml, built from this repository:
#   target vault (the default, last stage): hashicorp/vault with the plugin in
#     /vault/plugins and scripts/docker-entrypoint.sh as its entry point;
#   target demo-provider: cmd/demo-provider, the stand-in SaaS API.
# The plugin version is compiled in (build arg VERSION) and registered with
# the same value, so Vault reports it as the mount's running version.

FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY backend ./backend
COPY clients ./clients
COPY internal ./internal
ARG VERSION=v0.2.0
ENV CGO_ENABLED=0
RUN go build -trimpath \
      -ldflags "-s -w -X github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/version.Version=${VERSION}" \
      -o /out/plugins/vault-plugin-secrets-thirdparty ./cmd/vault-plugin-secrets-thirdparty \
 && go build -trimpath -ldflags "-s -w" -o /out/demo-provider ./cmd/demo-provider

FROM alpine:3.22 AS demo-provider
RUN adduser -D -H -s /sbin/nologin demo
COPY --from=build /out/demo-provider /usr/local/bin/demo-provider
USER demo
EXPOSE 8300
ENTRYPOINT ["/usr/local/bin/demo-provider"]
CMD ["-listen", "0.0.0.0:8300"]

FROM hashicorp/vault:1.21.0 AS vault
ARG VERSION=v0.2.0
ENV PLUGIN_VERSION=${VERSION} \
    PLUGIN_DIR=/vault/plugins
COPY --from=build /out/plugins/vault-plugin-secrets-thirdparty /vault/plugins/vault-plugin-secrets-thirdparty
COPY --chmod=0755 scripts/docker-entrypoint.sh /usr/local/bin/thirdparty-entrypoint.sh
USER vault
EXPOSE 8200
ENTRYPOINT ["/usr/local/bin/thirdparty-entrypoint.sh"]
