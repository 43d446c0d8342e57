/**
 * Retention as a pure function, with restic's semantics (`internal/restic/snapshot_policy.go`): walk the
 * backups newest first; `last` keeps the n newest; each calendar rule (hourly, daily, weekly, monthly,
 * yearly) keeps the newest backup of each of its n most recent periods that hold a backup. A backup is
 * kept when any rule keeps it, and every rule that keeps it is named in its reasons.
 *
 * Periods are calendar periods in an explicit time zone (restic uses the local time of the snapshot):
 * a "day" in Europe/Paris starts at Paris midnight, whatever the UTC offset; on the night clocks go back,
 * the repeated hour is one hourly period. Weeks are ISO weeks (Monday first; the week-year of ISO 8601).
 */
import { DssnapError } from '../errors.js';

/** How many periods each rule keeps; -1 keeps every period (restic's "unlimited"). Absent or 0: rule off. */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export interface RetentionItem {
  id: string;
  /** ISO-8601 instant of the backup (its snapshot instant or start). */
  time: string;
}

export interface KeepReason {
  id: string;
  time: string;
  /** Each rule that keeps it, with the period it stands for: `daily snapshot (2024-03-31)`. */
  matches: string[];
}

export interface PolicyResult<T extends RetentionItem> {
  /** Newest first. */
  keep: T[];
  /** Newest first. */
  remove: T[];
  /** One per kept backup, in `keep` order. */
  reasons: KeepReason[];
}

export interface ApplyPolicyOptions {
  /** IANA time zone in which periods are counted (`Europe/Paris`, `UTC`). Default: this host's zone. */
  timeZone?: string;
}

export const retentionRules = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type RetentionRule = (typeof retentionRules)[number];

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
}

type Bucketer = (time: LocalTime, index: number) => string;

const bucketers: Record<RetentionRule, Bucketer> = {
  last: (_time, index) => `#${index}`,
  hourly: (t) => `${t.year}-${pad(t.month)}-${pad(t.day)} ${pad(t.hour)}h`,
  daily: (t) => `${t.year}-${pad(t.month)}-${pad(t.day)}`,
  weekly: (t) => {
    const { year, week } = isoWeek(t.year, t.month, t.day);
    return `${year}-W${pad(week)}`;
  },
  monthly: (t) => `${t.year}-${pad(t.month)}`,
  yearly: (t) => String(t.year),
};

/** The host's time zone (honours TZ), the default zone of retention periods. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** True when the policy keeps by no rule at all (then everything is kept, as restic does). */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return retentionRules.every((rule) => !policy[rule]);
}

/**
 * Split `items` into those to keep and those to remove under `policy`. Pure and deterministic: the same
 * input always gives the same output (ties in time are broken by id). Never throws for an empty list;
 * throws USAGE for an unknown time zone, a negative count other than -1, or an unparseable time.
 * An empty policy keeps everything.
 */
export function applyPolicy<T extends RetentionItem>(
  items: readonly T[],
  policy: RetentionPolicy,
  options: ApplyPolicyOptions = {},
): PolicyResult<T> {
  validatePolicy(policy);
  const timeZone = options.timeZone ?? localTimeZone();
  const toLocal = localTimeIn(timeZone);
  const sorted = [...items]
    .map((item) => ({ item, ms: instantOf(item) }))
    .sort((a, b) => (a.ms === b.ms ? b.item.id.localeCompare(a.item.id) : b.ms - a.ms))
    .map(({ item, ms }) => ({ item, local: toLocal(ms) }));

  if (isEmptyPolicy(policy)) {
    const all = sorted.map(({ item }) => item);
    return {
      keep: all,
      remove: [],
      reasons: all.map((item) => ({ id: item.id, time: item.time, matches: ['policy is empty'] })),
    };
  }

  const counters = retentionRules.map((rule) => ({
    rule,
    count: policy[rule] ?? 0,
    last: undefined as string | undefined,
  }));
  const result: PolicyResult<T> = { keep: [], remove: [], reasons: [] };
  sorted.forEach(({ item, local }, index) => {
    const matches: string[] = [];
    for (const counter of counters) {
      if (counter.count === 0) continue;
      const bucket = bucketers[counter.rule](local, index);
      if (bucket === counter.last) continue;
      counter.last = bucket;
      if (counter.count > 0) counter.count--;
      matches.push(counter.rule === 'last' ? 'last snapshot' : `${counter.rule} snapshot (${bucket})`);
    }
    if (matches.length > 0) {
      result.keep.push(item);
      result.reasons.push({ id: item.id, time: item.time, matches });
    } else {
      result.remove.push(item);
    }
  });
  return result;
}

/** Throws USAGE unless every count is an integer ≥ -1. */
export function validatePolicy(policy: RetentionPolicy): void {
  for (const rule of retentionRules) {
    const value = policy[rule];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < -1) {
      throw new DssnapError('USAGE', `Invalid --keep-${rule}: ${String(value)}`, {
        hint: 'Give a whole number of periods to keep (0 turns the rule off, -1 keeps every period).',
        details: { rule, value },
      });
    }
  }
}

/**
 * A function from an instant (ms since the epoch) to its wall-clock date and hour in `timeZone`.
 * Throws USAGE for a time zone Intl does not know.
 */
export function localTimeIn(timeZone: string): (ms: number) => LocalTime {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      hourCycle: 'h23',
    });
  } catch (error) {
    throw new DssnapError('USAGE', `Unknown time zone '${timeZone}'`, {
      cause: error,
      hint: "Give an IANA time zone name such as 'UTC', 'Europe/Paris' or 'America/New_York'.",
      details: { timeZone },
    });
  }
  return (ms) => {
    const parts: Record<string, number> = {};
    for (const part of format.formatToParts(ms)) {
      if (part.type !== 'literal') parts[part.type] = Number(part.value);
    }
    return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour! % 24 };
  };
}

/** ISO 8601 week-numbering year and week of a calendar date (weeks start on Monday). */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  // The Thursday of the same week decides the week-year.
  date.setUTCDate(date.getUTCDate() - weekday + 3);
  const weekYear = date.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(weekYear, 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  return { year: weekYear, week: 1 + Math.round((date.getTime() - firstThursday.getTime()) / 604_800_000) };
}

function instantOf(item: RetentionItem): number {
  const ms = Date.parse(item.time);
  if (Number.isNaN(ms)) {
    throw new DssnapError('USAGE', `Backup ${item.id} has an unreadable time '${item.time}'`, {
      hint: 'Times must be ISO-8601 instants such as 2024-05-01T02:00:00Z.',
      details: { id: item.id, time: item.time },
    });
  }
  return ms;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}
