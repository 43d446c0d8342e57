# The identity a DSS instance runs dssnap as: an IAM role and instance profile granting exactly the EC2
# actions of providers/aws/permissions.ts. What dssnap deletes, detaches or attaches must carry its
# dssnap:* tags, and it may only create snapshots and volumes tagged so.

data "aws_caller_identity" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  volumes   = "arn:aws:ec2:${var.region}:${local.account}:volume/*"
  snapshots = "arn:aws:ec2:${var.region}::snapshot/*"
  instances = length(var.instance_ids) == 0 ? ["arn:aws:ec2:${var.region}:${local.account}:instance/*"] : [
    for id in var.instance_ids : "arn:aws:ec2:${var.region}:${local.account}:instance/${id}"
  ]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "dssnap" {
  # Describe* has no resource-level permissions.
  statement {
    sid       = "Describe"
    actions   = ["ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:DescribeSnapshots"]
    resources = ["*"]
  }

  # Snapshot any volume of the given instances (the one(s) holding DATA_DIR)...
  statement {
    sid       = "SnapshotSource"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots"]
    resources = concat([local.volumes], local.instances)
  }

  # ...into snapshots tagged by dssnap at creation.
  statement {
    sid       = "CreateTaggedSnapshots"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots"]
    resources = [local.snapshots]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/dssnap:role"
      values   = ["snapshot"]
    }
  }

  # A temporary volume, tagged as dssnap's exposure, made from one of dssnap's snapshots.
  statement {
    sid       = "CreateTemporaryVolume"
    actions   = ["ec2:CreateVolume"]
    resources = [local.volumes]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/dssnap:role"
      values   = ["exposure"]
    }
  }
  statement {
    sid       = "FromOwnSnapshots"
    actions   = ["ec2:CreateVolume"]
    resources = [local.snapshots]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/dssnap:run-id"
      values   = ["false"]
    }
  }

  # Tags at creation (TagSpecifications) of those snapshots and volumes.
  statement {
    sid       = "TagOnCreate"
    actions   = ["ec2:CreateTags"]
    resources = [local.snapshots, local.volumes]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSnapshot", "CreateSnapshots", "CreateVolume"]
    }
  }

  # Mark one of dssnap's snapshots retained: only dssnap:* keys.
  statement {
    sid       = "RetainOwnSnapshots"
    actions   = ["ec2:CreateTags"]
    resources = [local.snapshots]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/dssnap:run-id"
      values   = ["false"]
    }
    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = ["dssnap:*"]
    }
  }

  # Attach and detach only dssnap's temporary volumes, on the given instances.
  statement {
    sid       = "AttachOwnVolumes"
    actions   = ["ec2:AttachVolume", "ec2:DetachVolume"]
    resources = [local.volumes]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/dssnap:role"
      values   = ["exposure"]
    }
  }
  statement {
    sid       = "AttachToInstances"
    actions   = ["ec2:AttachVolume", "ec2:DetachVolume"]
    resources = local.instances
  }

  # Delete only what dssnap created.
  statement {
    sid       = "DeleteOwnVolumes"
    actions   = ["ec2:DeleteVolume"]
    resources = [local.volumes]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/dssnap:role"
      values   = ["exposure"]
    }
  }
  statement {
    sid       = "DeleteOwnSnapshots"
    actions   = ["ec2:DeleteSnapshot"]
    resources = [local.snapshots]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/dssnap:role"
      values   = ["snapshot"]
    }
  }
}

resource "aws_iam_role" "dssnap" {
  name               = var.name
  description        = "dssnap: EBS snapshot backups of a Dataiku DSS DATA_DIR"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "dssnap" {
  name   = var.name
  role   = aws_iam_role.dssnap.id
  policy = data.aws_iam_policy_document.dssnap.json
}

resource "aws_iam_instance_profile" "dssnap" {
  name = var.name
  role = aws_iam_role.dssnap.name
}

module "schedule" {
  source = "../modules/scheduled-backup"
  count  = var.backup_schedule == null ? 0 : 1

  provider_id      = "aws"
  cron             = var.backup_schedule.cron
  data_dir         = var.backup_schedule.data_dir
  destination      = var.backup_schedule.destination
  dssnap_package   = var.backup_schedule.dssnap_package
  provider_options = { region = var.region }
}
