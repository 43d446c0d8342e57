# The identity a DSS VM runs dssnap as: a service account with a custom role holding exactly the
# permissions of providers/gcp/permissions.ts (Compute Engine has no label conditions in IAM: scope by
# project, e.g. keep the DSS VM in a project of its own).

locals {
  permissions = [
    "compute.instances.get",
    "compute.instances.attachDisk",
    "compute.instances.detachDisk",
    "compute.disks.get",
    "compute.disks.list",
    "compute.disks.create",
    "compute.disks.setLabels",
    "compute.disks.delete",
    "compute.disks.createSnapshot",
    "compute.snapshots.create",
    "compute.snapshots.get",
    "compute.snapshots.list",
    "compute.snapshots.setLabels",
    "compute.snapshots.delete",
    "compute.snapshots.useReadOnly",
    "compute.zoneOperations.get",
    "compute.globalOperations.get",
  ]
  # Attaching the temporary disk needs `use` or `useReadOnly` on it, by attach mode.
  attach_permission = {
    READ_WRITE = "compute.disks.use"
    READ_ONLY  = "compute.disks.useReadOnly"
  }
}

resource "google_service_account" "dssnap" {
  project      = var.project
  account_id   = var.account_id
  display_name = "dssnap backups of Dataiku DSS"
}

resource "google_project_iam_custom_role" "dssnap" {
  project     = var.project
  role_id     = var.role_id
  title       = "dssnap backup"
  description = "Persistent Disk snapshots of a Dataiku DSS DATA_DIR, and temporary disks to read them"
  permissions = concat(local.permissions, [local.attach_permission[var.attach_mode]])
}

resource "google_project_iam_member" "dssnap" {
  project = var.project
  role    = google_project_iam_custom_role.dssnap.id
  member  = "serviceAccount:${google_service_account.dssnap.email}"
}

module "schedule" {
  source = "../modules/scheduled-backup"
  count  = var.backup_schedule == null ? 0 : 1

  provider_id      = "gcp"
  cron             = var.backup_schedule.cron
  data_dir         = var.backup_schedule.data_dir
  destination      = var.backup_schedule.destination
  dssnap_package   = var.backup_schedule.dssnap_package
  provider_options = { attachMode = var.attach_mode }
}
