variable "region" {
  description = "AWS region of the DSS instance and its EBS volumes: the role is only valid there."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-\\d$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Name of the IAM role, its policy and instance profile."
  type        = string
  default     = "dssnap-backup"
  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,56}$", var.name))
    error_message = "name must be 1-56 characters of letters, digits and +=,.@_-."
  }
}

variable "instance_ids" {
  description = "Instances the role may attach temporary volumes to; empty: any instance of the account in the region."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for id in var.instance_ids : can(regex("^i-[0-9a-f]{8,17}$", id))])
    error_message = "instance_ids must be EC2 instance ids (i-0123456789abcdef0)."
  }
}

variable "backup_schedule" {
  description = "Optional scheduled backup: rendered as user data (cloud-init) for the instance. null: none."
  type = object({
    cron           = string
    data_dir       = string
    destination    = string
    dssnap_package = optional(string, "dssnap")
  })
  default = null
}
