module github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/tools/dashboard

go 1.26.7

require (
	github.com/grafana/grafana-foundation-sdk/go v0.0.22 // indirect
	github.com/prometheus/prometheus v0.316.0 // indirect
)
