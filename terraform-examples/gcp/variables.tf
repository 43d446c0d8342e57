variable "project" {
  description = "Project of the DSS VM, its disks and the snapshots dssnap creates."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id (6-30 lower-case letters, digits and hyphens)."
  }
}

variable "account_id" {
  description = "Account id of the service account the VM runs as (its e-mail starts with it)."
  type        = string
  default     = "dssnap-backup"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.account_id))
    error_message = "account_id must be 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "role_id" {
  description = "Id of the custom role (project-level)."
  type        = string
  default     = "dssnapBackup"
  validation {
    condition     = can(regex("^[a-zA-Z0-9_.]{3,64}$", var.role_id))
    error_message = "role_id must be 3-64 letters, digits, underscores and dots."
  }
}

variable "attach_mode" {
  description = "How dssnap attaches the temporary disk (its attachMode setting): READ_WRITE (default) or READ_ONLY."
  type        = string
  default     = "READ_WRITE"
  validation {
    condition     = contains(["READ_WRITE", "READ_ONLY"], var.attach_mode)
    error_message = "attach_mode must be READ_WRITE or READ_ONLY."
  }
}

variable "backup_schedule" {
  description = "Optional scheduled backup: rendered as cloud-init (metadata user-data) for the VM. null: none."
  type = object({
    cron           = string
    data_dir       = string
    destination    = string
    dssnap_package = optional(string, "dssnap")
  })
  default = null
}
