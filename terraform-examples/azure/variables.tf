variable "subscription_id" {
  description = "Subscription of the DSS VM and of the snapshots dssnap creates."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a GUID."
  }
}

variable "resource_group_name" {
  description = "Resource group of the DSS VM (its disks are read and attached there); the identity is created in it."
  type        = string
  validation {
    condition     = can(regex("^[-\\w._()]{1,90}$", var.resource_group_name))
    error_message = "resource_group_name must be 1-90 letters, digits and -._()."
  }
}

variable "snapshot_resource_group_name" {
  description = "Resource group for snapshots and temporary disks (dssnap's snapshotResourceGroup); null: the VM's."
  type        = string
  default     = null
  validation {
    condition     = var.snapshot_resource_group_name == null || can(regex("^[-\\w._()]{1,90}$", coalesce(var.snapshot_resource_group_name, "x")))
    error_message = "snapshot_resource_group_name must be 1-90 letters, digits and -._()."
  }
}

variable "name" {
  description = "Name of the managed identity and of the custom role."
  type        = string
  default     = "dssnap-backup"
  validation {
    condition     = can(regex("^[a-zA-Z0-9][-\\w]{2,127}$", var.name))
    error_message = "name must be 3-128 letters, digits, hyphens and underscores."
  }
}

variable "backup_schedule" {
  description = "Optional scheduled backup: rendered as cloud-init custom data for the VM. null: none."
  type = object({
    cron           = string
    data_dir       = string
    destination    = string
    dssnap_package = optional(string, "dssnap")
  })
  default = null
}
