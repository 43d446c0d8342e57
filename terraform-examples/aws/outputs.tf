output "role_arn" {
  description = "ARN of the IAM role dssnap runs as."
  value       = aws_iam_role.dssnap.arn
}

output "instance_profile_name" {
  description = "Give this to the DSS instance (aws_instance.iam_instance_profile)."
  value       = aws_iam_instance_profile.dssnap.name
}

output "user_data" {
  description = "cloud-init for the instance (aws_instance.user_data) when backup_schedule is set; null otherwise."
  value       = one(module.schedule[*].cloud_init)
}
