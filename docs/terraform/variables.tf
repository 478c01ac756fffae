variable "plugin_version" {
  description = "Version of the plugin binary in Vault's plugin_directory, as built by `make release VERSION=...` (the version is compiled in and reported by the plugin)."
  type        = string
  default     = "v0.2.0"
}

variable "plugin_command" {
  description = "File name of the plugin binary in Vault's plugin_directory: the plugin's name, or the release file name (e.g. vault-plugin-secrets-thirdparty_0.1.0_linux_amd64), which lets several versions sit side by side."
  type        = string
  default     = "vault-plugin-secrets-thirdparty"
}

variable "plugin_sha256" {
  description = "SHA-256 of the plugin binary in Vault's plugin_directory (the line for your platform in dist/SHA256SUMS, or `sha256sum <plugin_directory>/vault-plugin-secrets-thirdparty`)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.plugin_sha256))
    error_message = "plugin_sha256 must be 64 lower-case hex digits."
  }
}

variable "mount_path" {
  description = "Where the secrets engine is mounted."
  type        = string
  default     = "thirdparty"
}

variable "demo_base_url" {
  description = "URL of the demo provider (cmd/demo-provider), without a trailing slash: Vault stores it trimmed and a read returns it that way."
  type        = string
  default     = "http://127.0.0.1:8300"
}

variable "demo_admin_key" {
  description = "The demo provider's initial admin key. Written once, when the provider is created; after the first root rotation only Vault knows the live one."
  type        = string
  sensitive   = true
}

variable "rotate_root_on_create" {
  description = "Rotate the provider's root credential right after creating it, so the admin key in the Terraform variables and state is dead at once."
  type        = bool
  default     = true
}
