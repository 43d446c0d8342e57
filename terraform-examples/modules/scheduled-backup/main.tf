# Cloud-init that installs dssnap and schedules its backup with `dssnap schedule` (a systemd timer),
# shared by the aws, gcp and azure examples so the three stay the same.

terraform {
  required_version = ">= 1.5"
}

variable "provider_id" {
  description = "The dssnap provider the instance uses: aws, gcp or azure."
  type        = string
  validation {
    condition     = contains(["aws", "gcp", "azure"], var.provider_id)
    error_message = "provider_id must be aws, gcp or azure."
  }
}

variable "cron" {
  description = "When to back up: a five-field cron expression in the instance's local time, e.g. \"15 2 * * *\"."
  type        = string
  validation {
    condition     = can(regex("^\\S+( \\S+){4}$", var.cron))
    error_message = "cron must have five fields (minute hour day-of-month month day-of-week)."
  }
}

variable "data_dir" {
  description = "Absolute path of the DSS DATA_DIR on the instance."
  type        = string
  validation {
    condition     = can(regex("^/[^\\s]*$", var.data_dir))
    error_message = "data_dir must be an absolute path without spaces."
  }
}

variable "destination" {
  description = "Where backups go: an absolute path, or user@host:/path for a remote (ssh) destination."
  type        = string
  validation {
    condition     = can(regex("^(/|[^\\s/]+:/)[^\\s]*$", var.destination))
    error_message = "destination must be an absolute path or user@host:/path."
  }
}

variable "provider_options" {
  description = "The provider's settings, written to /etc/dssnap/config.json under provider-options."
  type        = map(string)
  default     = {}
}

variable "dssnap_package" {
  description = "What `npm install -g` installs: a version of the dssnap package, or a tarball path or URL."
  type        = string
  default     = "dssnap"
}

variable "install_commands" {
  description = "Shell commands that install Node.js >= 20.19 and the tools dssnap runs (before dssnap itself)."
  type        = list(string)
  default     = ["apt-get update", "apt-get install -y nodejs npm rsync zstd xfsprogs util-linux"]
}

locals {
  quote = { for k, v in {
    cron        = var.cron
    data_dir    = var.data_dir
    destination = var.destination
    package     = var.dssnap_package
  } : k => "'${replace(v, "'", "'\\''")}'" }

  config = "/etc/dssnap/config.json"

  cloud_config = {
    write_files = [{
      path        = local.config
      permissions = "0600"
      content     = jsonencode({ "provider-options" = var.provider_options })
    }]
    runcmd = concat(var.install_commands, [
      "npm install -g ${local.quote.package}",
      "dssnap schedule --cron ${local.quote.cron} -- backup --config ${local.config} --provider ${var.provider_id} --data-dir ${local.quote.data_dir} --to ${local.quote.destination}",
    ])
  }
}

output "cloud_init" {
  description = "The cloud-config document (user data / custom data) for the instance."
  value       = "#cloud-config\n${yamlencode(local.cloud_config)}"
}
