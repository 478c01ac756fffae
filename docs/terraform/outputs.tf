output "mount_path" {
  description = "Path of the thirdparty secrets engine."
  value       = vault_mount.thirdparty.path
}

output "plugin_version" {
  description = "Plugin version the mount is pinned to."
  value       = vault_mount.thirdparty.plugin_version
}

output "root_key_id" {
  description = "Id of the provider's root credential after the rotation on create (not a secret)."
  value       = var.rotate_root_on_create ? vault_generic_endpoint.demo_rotate_root[0].write_data["root_key_id"] : null
}

output "dual_key_id" {
  description = "Id of the dual role's current key (not a secret)."
  value       = nonsensitive(data.vault_generic_secret.dual_creds.data["key_id"])
}

output "dual_api_key" {
  description = "The dual role's current key."
  value       = data.vault_generic_secret.dual_creds.data["api_key"]
  sensitive   = true
}
