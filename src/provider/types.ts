/**
 * The SnapshotProvider contract. A provider does only platform calls; the core does all generic work
 * (waiting, retries, mounting, copying, journaling, undo). Every method documents when it returns,
 * whether it is idempotent and what "not found" means.
 */

/** How the writers of DATA_DIR are held still for the snapshot instant. */
export type QuiesceMode = 'none' | 'fsfreeze' | 'stop';

/** Tag keys put on every resource dssnap creates, so `cleanup` and `list` find them by tag. */
export const TagKey = {
  runId: 'dssnap:run-id',
  dataDir: 'dssnap:data-dir',
  role: 'dssnap:role',
  retain: 'dssnap:retain',
  createdAt: 'dssnap:created-at',
} as const;

export type ResourceRole = 'snapshot' | 'exposure';
export type Tags = Readonly<Record<string, string>>;

/** A block volume or subvolume that holds (part of) DATA_DIR on this host. */
export interface Volume {
  /** Provider-specific stable id: an EBS volume id, an LV path, a btrfs subvolume path. */
  id: string;
  /** Where the volume's filesystem root is visible on this host. */
  mountPoint: string;
  /** The path of DATA_DIR (or of the part it holds) relative to the volume's root; '' for the root. */
  relativePath: string;
  /** Filesystem type as findmnt reports it (btrfs, xfs, ext4). */
  fsType: string;
  /** Block device, when the provider knows it. */
  device?: string;
  /** Provider facts worth recording in the manifest (VG name, instance id…). Never secrets. */
  attributes?: Readonly<Record<string, string>>;
}

export interface Snapshot {
  /** Provider-specific id; with `provider` it identifies the snapshot forever. */
  id: string;
  provider: string;
  /** The id of the volume it was taken from. */
  volumeId: string;
  /** ISO-8601 time of the snapshot instant. */
  createdAt: string;
  tags: Tags;
  /** Provider facts (path of a btrfs snapshot, VG…), recorded in the manifest and journal. */
  attributes?: Readonly<Record<string, string>>;
}

export type SnapshotProgress =
  | { state: 'pending'; percent?: number }
  | { state: 'ready' }
  | { state: 'failed'; reason: string };

/** A snapshot made readable on this host. Either a directory (btrfs) or a device the core mounts. */
export interface Exposure {
  snapshotId: string;
  /** A directory holding the snapshot's filesystem root, already readable (btrfs). */
  directory?: string;
  /** A block device holding a clone of the snapshot; the core mounts it read-only. */
  device?: string;
  fsType?: string;
  /** Ids of temporary resources created for the exposure (a cloud volume…), for the journal. */
  resources: readonly string[];
  attributes?: Readonly<Record<string, string>>;
}

/** A permission (cloud IAM action, RBAC action…) the provider needs, and why. */
export interface Permission {
  action: string;
  reason: string;
}

/** Which tagged resources to list: all of dssnap's, or those of one DATA_DIR or run. */
export interface TagSelector {
  dataDir?: string;
  runId?: string;
  /** Only retained (true) or only non-retained (false) resources; both when undefined. */
  retained?: boolean;
}

/** One line of `dssnap doctor`: what was checked, whether it passed, and what was seen. */
export interface ProviderCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface OwnedResource {
  kind: 'snapshot' | 'exposure';
  id: string;
  tags: Tags;
  attributes?: Readonly<Record<string, string>>;
}

export interface SnapshotProvider {
  /** Registry name: `btrfs`, `lvm`, `aws`, `gcp`, `azure`, `fake`. */
  readonly id: string;
  /** The quiesce mode used when the user does not choose one. */
  readonly defaultQuiesce: QuiesceMode;
  /** Quiesce modes this provider can be used with; others are refused at preflight with a reason. */
  readonly supportedQuiesce: Readonly<Partial<Record<QuiesceMode, true | string>>>;
  /** Every platform action the provider calls (for `doctor --permissions` and Terraform examples). */
  readonly permissions: readonly Permission[];

  /**
   * The volumes holding `dataDir` on this host. Returns only when every volume is identified.
   * Throws a DssnapError (UNSUPPORTED, with a hint) when the path is not on storage this provider can
   * snapshot. Changes nothing.
   */
  locate(dataDir: string): Promise<Volume[]>;

  /**
   * Start snapshots of all `volumes` as one set, tagged with `tags` at creation. Returns as soon as
   * the point in time is fixed (the platform accepted it), not when the data is copied. Not
   * idempotent: each call creates new snapshots. On a partial failure it MUST delete what it created
   * before throwing.
   */
  createSnapshots(volumes: readonly Volume[], tags: Tags): Promise<Snapshot[]>;

  /** One poll of a snapshot's state. Never waits; the core waits with backoff. */
  progress(snapshot: Snapshot): Promise<SnapshotProgress>;

  /**
   * Make a ready snapshot readable on this host: a directory, or a device that the core mounts
   * read-only. Temporary resources are tagged with `tags` (role exposure). Returns when readable.
   */
  expose(snapshot: Snapshot, tags: Tags): Promise<Exposure>;

  /**
   * Undo `expose` (detach and delete the temporary resources). Idempotent: already released is
   * success. The core unmounts before calling it.
   */
  ensureReleased(exposure: Exposure): Promise<void>;

  /** Delete a snapshot. Idempotent: a snapshot that is already gone is success. */
  ensureDeleted(snapshot: Snapshot): Promise<void>;

  /** Mark a snapshot as retained (kept after the run, subject to retention). Returns the updated one. */
  retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot>;

  /** Snapshots created by dssnap matching the selector, newest first. Changes nothing. */
  list(selector: TagSelector): Promise<Snapshot[]>;

  /**
   * Resources created by dssnap matching the selector that are not retained snapshots: what a crashed
   * run left. `cleanup` releases and deletes them. Changes nothing.
   */
  orphans(selector: TagSelector): Promise<OwnedResource[]>;

  /**
   * Optional provider checks for `dssnap doctor` (platform reachable, credentials valid, each
   * permission allowed — cloud providers use DryRun). Changes nothing. A failed check is reported with
   * `ok: false`, never thrown. With `dataDir`, checks may use the real volume behind it.
   */
  doctor?(context: { dataDir?: string }): Promise<ProviderCheck[]>;

  /**
   * Optional: refuse, before anything changes, a snapshot of `volumes` held still by `quiesce` that this
   * provider cannot make consistent (UNSUPPORTED, with a hint naming a mode that works) — e.g. LVM on a
   * kernel that cannot snapshot frozen filesystems, for a DATA_DIR spread over several LVs. Preflight
   * calls it after `locate`; the provider may remember the mode for `createSnapshots`. Changes nothing.
   */
  checkQuiesce?(volumes: readonly Volume[], quiesce: QuiesceMode): Promise<void>;

  /**
   * Optional: throw (PROVIDER_ERROR, permanent) when the exposed snapshot no longer holds the snapshot
   * instant — an LVM classic snapshot whose copy-on-write space filled up is invalidated by the kernel,
   * and a copy read from it must never be catalogued. Cheap enough to poll every few seconds: the core
   * calls it after the copy (before unmounting) and may call it during a long copy to stop it early.
   * NOT_FOUND when the snapshot is gone. Changes nothing.
   */
  checkExposure?(exposure: Exposure): Promise<void>;

  /**
   * Optional: the cloud API calls made so far by this provider instance, by action (HTTP attempts,
   * retries included). Recorded in the manifest so an admin sees what a backup costs in API quota.
   */
  apiCalls?(): Record<string, number>;

  /** True when the error means "that resource does not exist". */
  isNotFound(error: unknown): boolean;
  /** True when retrying cannot help (permission denied, invalid argument, resource failed). */
  isPermanent(error: unknown): boolean;
}

/** A provider module's factory: how the registry builds one from options. */
export interface ProviderFactory {
  readonly id: string;
  /** One-line description for `--help` and errors. */
  readonly description: string;
  create(options: ProviderOptions): Promise<SnapshotProvider>;
}

export interface ProviderOptions {
  /** Where dssnap keeps state (journals, locks, btrfs snapshot tags); never on the frozen filesystem. */
  stateDir: string;
  /** Provider-specific options from the config file or flags (snapshot directory, region…). */
  settings?: Readonly<Record<string, unknown>>;
  signal?: AbortSignal;
}
