# The identity a DSS VM runs dssnap as: a user-assigned managed identity with a custom role holding
# exactly the actions of providers/azure/permissions.ts, assignable and assigned only on the VM's
# resource group (and the snapshots' one when it differs).

data "azurerm_resource_group" "vm" {
  name = var.resource_group_name
}

data "azurerm_resource_group" "snapshots" {
  name = coalesce(var.snapshot_resource_group_name, var.resource_group_name)
}

locals {
  scopes = toset([data.azurerm_resource_group.vm.id, data.azurerm_resource_group.snapshots.id])
}

resource "azurerm_user_assigned_identity" "dssnap" {
  name                = var.name
  resource_group_name = data.azurerm_resource_group.vm.name
  location            = data.azurerm_resource_group.vm.location
}

resource "azurerm_role_definition" "dssnap" {
  name              = var.name
  scope             = data.azurerm_resource_group.vm.id
  description       = "dssnap: managed-disk snapshots of a Dataiku DSS DATA_DIR, and temporary disks to read them"
  assignable_scopes = local.scopes

  permissions {
    actions = [
      "Microsoft.Compute/virtualMachines/read",
      "Microsoft.Compute/virtualMachines/attachDetachDataDisks/action",
      "Microsoft.Compute/disks/read",
      "Microsoft.Compute/disks/write",
      "Microsoft.Compute/disks/delete",
      "Microsoft.Compute/snapshots/read",
      "Microsoft.Compute/snapshots/write",
      "Microsoft.Compute/snapshots/delete",
      "Microsoft.Compute/locations/DiskOperations/read",
      "Microsoft.Compute/locations/operations/read",
    ]
    not_actions = []
  }
}

resource "azurerm_role_assignment" "dssnap" {
  for_each           = local.scopes
  scope              = each.value
  role_definition_id = azurerm_role_definition.dssnap.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.dssnap.principal_id
  principal_type     = "ServicePrincipal"
}

module "schedule" {
  source = "../modules/scheduled-backup"
  count  = var.backup_schedule == null ? 0 : 1

  provider_id    = "azure"
  cron           = var.backup_schedule.cron
  data_dir       = var.backup_schedule.data_dir
  destination    = var.backup_schedule.destination
  dssnap_package = var.backup_schedule.dssnap_package
  provider_options = merge(
    { managedIdentityClientId = azurerm_user_assigned_identity.dssnap.client_id },
    var.snapshot_resource_group_name == null ? {} : { snapshotResourceGroup = var.snapshot_resource_group_name },
  )
}
