output "identity_id" {
  description = "Resource id of the managed identity: add it to the VM (identity { type = \"UserAssigned\" })."
  value       = azurerm_user_assigned_identity.dssnap.id
}

output "client_id" {
  description = "Client id of the identity (dssnap's managedIdentityClientId when the VM has several)."
  value       = azurerm_user_assigned_identity.dssnap.client_id
}

output "role_definition_id" {
  description = "The custom role, assignable only on the resource group(s)."
  value       = azurerm_role_definition.dssnap.role_definition_resource_id
}

output "custom_data" {
  description = "Base64 cloud-init for azurerm_linux_virtual_machine.custom_data when backup_schedule is set; null otherwise."
  value       = var.backup_schedule == null ? null : base64encode(module.schedule[0].cloud_init)
}
