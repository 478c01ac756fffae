# A complete example: register and mount the plugin, configure a provider of
# type demo (cmd/demo-provider), a dynamic and a dual role, and read creds.
# See ../terraform.md for how it avoids drift and what a second apply does.
#
# The hashicorp/vault provider takes VAULT_ADDR and VAULT_TOKEN from the
# environment. The plugin binary must already be in Vault's plugin_directory.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    vault = {
      source  = "hashicorp/vault"
      version = ">= 4.0.0, < 6.0.0"
    }
  }
}

provider "vault" {}

locals {
  plugin_name   = "vault-plugin-secrets-thirdparty"
  provider_name = "demo"
  provider_path = "${vault_mount.thirdparty.path}/providers/${local.provider_name}"
}

# ---- the plugin and its mount ----

resource "vault_plugin" "thirdparty" {
  type    = "secret"
  name    = local.plugin_name
  command = var.plugin_command
  version = var.plugin_version
  sha256  = var.plugin_sha256
}

resource "vault_mount" "thirdparty" {
  path           = var.mount_path
  type           = vault_plugin.thirdparty.name
  plugin_version = vault_plugin.thirdparty.version
  description    = "Leased third-party API keys"
}

# ---- the provider ----
#
# Two resources share providers/demo because the plugin's updates are
# partial (fields not sent keep their value):
#
# - demo_provider_root seeds the root credential. It is written once, on
#   create: ignore_changes keeps Terraform from ever sending the seed again,
#   which matters because after a root rotation the seed is dead and a write
#   of it would be refused ("root credential check failed"). It never
#   deletes the provider (disable_delete); demo_provider does.
# - demo_provider holds every other (non-sensitive) setting and can be
#   changed freely. Each field it sets is read back unchanged, in the same
#   JSON type (durations as seconds), so a refresh shows no drift.
#
# With ignore_absent_fields = true the provider compares only the keys of
# data_json that a read returns: admin_key is write-only (never returned),
# so its value in state is kept and causes no diff. Fields that Vault itself
# changes (root_key_id, next_root_rotation, ...) are not in data_json, so
# they are ignored too.

resource "vault_generic_endpoint" "demo_provider_root" {
  path                 = local.provider_path
  disable_read         = false
  ignore_absent_fields = true
  disable_delete       = true

  data_json = jsonencode({
    type      = "demo"
    base_url  = var.demo_base_url
    admin_key = var.demo_admin_key
  })

  lifecycle {
    ignore_changes = [data_json]
  }
}

resource "vault_generic_endpoint" "demo_provider" {
  path                 = local.provider_path
  disable_read         = false
  ignore_absent_fields = true

  data_json = jsonencode({
    type                       = "demo"
    base_url                   = var.demo_base_url
    request_timeout            = 30
    max_concurrency            = 8
    rotation_period            = 2592000 # rotate the admin key every 30 days
    disable_automated_rotation = false
  })

  depends_on = [vault_generic_endpoint.demo_provider_root]
}

# Optional: rotate the root once, right after the provider is created, so the
# admin key Terraform was given is revoked at the demo provider. The write
# happens on create only (disable_read: nothing to compare), so later applies
# do not rotate again; `terraform apply -replace=...` rotates on demand.
resource "vault_generic_endpoint" "demo_rotate_root" {
  count = var.rotate_root_on_create ? 1 : 0

  path           = "${vault_mount.thirdparty.path}/rotate-root/${local.provider_name}"
  disable_read   = true
  disable_delete = true
  data_json      = jsonencode({})
  write_fields   = ["root_key_id", "root_rotated_at", "next_root_rotation"]

  depends_on = [vault_generic_endpoint.demo_provider]
}

# ---- roles ----

resource "vault_generic_endpoint" "role_dynamic" {
  path                 = "${vault_mount.thirdparty.path}/roles/demo-dynamic"
  disable_read         = false
  ignore_absent_fields = true

  data_json = jsonencode({
    provider = local.provider_name
    mode     = "dynamic"
    ttl      = 3600  # seconds: a read returns durations as seconds
    max_ttl  = 86400 # "24h" would read back as 86400 and show as drift
    scopes   = ["read"]
  })

  depends_on = [vault_generic_endpoint.demo_provider]
}

resource "vault_generic_endpoint" "role_dual" {
  path                 = "${vault_mount.thirdparty.path}/roles/demo-dual"
  disable_read         = false
  ignore_absent_fields = true

  data_json = jsonencode({
    provider        = local.provider_name
    mode            = "dual"
    ttl             = 3600
    max_ttl         = 86400
    scopes          = ["read", "write"]
    rotation_period = 2592000 # 30 days
    overlap         = 86400   # 24 hours
  })

  depends_on = [vault_generic_endpoint.demo_provider]
}

# ---- creds ----
#
# A data source reads on every plan and apply. Reading a dual role returns
# its current key (nothing is created); reading a dynamic role would create a
# new key each time, leased to Terraform's short-lived token. Either way the
# secret is stored in the Terraform state: protect the state accordingly.
data "vault_generic_secret" "dual_creds" {
  path = "${vault_mount.thirdparty.path}/creds/demo-dual"

  depends_on = [vault_generic_endpoint.role_dual]
}
