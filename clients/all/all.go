// Package all registers every provider type; adding a type is one line here.
package all

import (
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/auth0"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/databricks"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/demo"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/dockerhub"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/elasticsearch"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/gitlab"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/grafana"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httptpl"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/linode"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mailgun"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mongodbatlas"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/okta"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openai"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openrouter"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/tailscale"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/vercel"
)
