output "service_account_email" {
  description = "Run the DSS VM as this service account (google_compute_instance.service_account, scope cloud-platform)."
  value       = google_service_account.dssnap.email
}

output "role_id" {
  description = "The custom role granted to the service account on the project."
  value       = google_project_iam_custom_role.dssnap.id
}

output "metadata" {
  description = "Instance metadata with the cloud-init user-data when backup_schedule is set; empty otherwise."
  value       = var.backup_schedule == null ? {} : { user-data = module.schedule[0].cloud_init }
}
