/**
 * Cron expressions for `dssnap schedule`: validated with cron-parser, their next run times, and their
 * translation into systemd `OnCalendar=` expressions that fire at exactly the same minutes.
 *
 * Only what both a cron.d file and a systemd timer understand is accepted: five fields (minute hour
 * day-of-month month day-of-week) with `*`, lists, ranges, steps and month/day names, or one of the
 * `@hourly`-style shortcuts. The translation works from the expanded value sets cron-parser computes,
 * so any accepted expression translates exactly. Like cron, when both day fields are restricted a run
 * happens when EITHER matches; a systemd timer ANDs its fields, so that case becomes two OnCalendar=
 * lines.
 */
import { CronExpressionParser } from 'cron-parser';
import { DssnapError } from '../errors.js';

export interface CronSchedule {
  /** The expression as written in the cron file (shortcuts expanded). */
  expression: string;
  minute: number[];
  hour: number[];
  dayOfMonth: number[];
  month: number[];
  /** 0 = Sunday … 6 = Saturday (7 folded into 0). */
  dayOfWeek: number[];
  /** Cron's "restricted" day fields: with both restricted, either one matching is enough. */
  dayOfMonthRestricted: boolean;
  dayOfWeekRestricted: boolean;
}

const shortcuts: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const cronHint =
  "Write five fields 'minute hour day-of-month month day-of-week', e.g. '15 6 * * 1-5' (06:15 on weekdays), '*/30 * * * *', '0 2 * * *', or @daily/@hourly/@weekly/@monthly/@yearly.";

/**
 * Parse and validate a cron expression. Pure. Throws USAGE naming the problem for an invalid
 * expression, a seconds field, `@reboot`, or cron-parser extensions cron.d does not have (L, W, #, H).
 */
export function parseCron(input: string): CronSchedule {
  const raw = input.trim().replace(/\s+/g, ' ');
  const invalid = (problem: string, cause?: unknown): DssnapError =>
    new DssnapError('USAGE', `Invalid cron expression '${input}': ${problem}`, {
      hint: cronHint,
      details: { cron: input },
      ...(cause === undefined ? {} : { cause }),
    });
  if (raw === '') throw invalid('it is empty');
  if (raw.startsWith('@')) {
    if (raw === '@reboot') throw invalid('@reboot is not a schedule (use a systemd unit for boot-time jobs)');
    if (!shortcuts[raw]) throw invalid(`unknown shortcut (known: ${Object.keys(shortcuts).join(', ')})`);
  }
  const expression = shortcuts[raw] ?? raw;
  const fields = expression.split(' ');
  if (fields.length !== 5) {
    throw invalid(
      fields.length === 6
        ? 'it has 6 fields; cron.d and systemd schedules have no seconds field'
        : `it has ${fields.length} field(s), expected 5`,
    );
  }
  const names = /\b(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT)\b/g;
  const extension = /[LWH#]/.exec(expression.toUpperCase().replace(names, ''));
  if (extension) throw invalid(`'${extension[0]}' is a cron-parser extension that cron.d does not know`);
  let parsed: ReturnType<typeof CronExpressionParser.parse>;
  try {
    parsed = CronExpressionParser.parse(expression, { tz: 'UTC' });
  } catch (error) {
    throw invalid((error as Error).message, error);
  }
  const f = parsed.fields;
  const dayOfMonthRestricted = !/^[*?]/.test(fields[2]!);
  const dayOfWeekRestricted = !/^[*?]/.test(fields[4]!);
  // Debian's cron (vixie) ORs the day fields only when neither starts with '*'; cron-parser whenever
  // neither is a plain '*'. They disagree on '*/2' next to a restricted field: refuse the ambiguity.
  if (
    (dayOfMonthRestricted && dayOfWeekRestricted) !== (!f.dayOfMonth.isWildcard && !f.dayOfWeek.isWildcard)
  ) {
    throw invalid(
      "a day field starting with '*/' next to a restricted one means different days in different cron implementations",
    );
  }
  const numbers = (values: readonly (number | string)[]): number[] =>
    values.filter((v): v is number => typeof v === 'number');
  return {
    expression,
    minute: numbers(f.minute.values),
    hour: numbers(f.hour.values),
    dayOfMonth: numbers(f.dayOfMonth.values),
    month: numbers(f.month.values),
    dayOfWeek: [...new Set(numbers(f.dayOfWeek.values).map((d) => d % 7))].sort((a, b) => a - b),
    dayOfMonthRestricted,
    dayOfWeekRestricted,
  };
}

/**
 * The next `count` run times of `schedule` after `from`, in `timeZone` (default: this host's zone,
 * which is what cron and systemd timers use). Pure apart from reading the clock when `from` is absent.
 */
export function nextRuns(
  schedule: CronSchedule,
  count: number,
  options: { from?: Date; timeZone?: string } = {},
): Date[] {
  const expression = CronExpressionParser.parse(schedule.expression, {
    currentDate: options.from ?? new Date(),
    ...(options.timeZone ? { tz: options.timeZone } : {}),
  });
  return expression.take(count).map((date) => date.toDate());
}

const weekdayNames = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/**
 * systemd `OnCalendar=` expressions that together fire exactly when `schedule` does (local time).
 * One expression, or two when both day fields are restricted (cron ORs them, systemd ANDs). Pure.
 */
export function toOnCalendar(schedule: CronSchedule): string[] {
  const time = `${field(schedule.hour, 0, 23)}:${field(schedule.minute, 0, 59)}:00`;
  const month = field(schedule.month, 1, 12);
  const dom = field(schedule.dayOfMonth, 1, 31);
  const dow = weekdays(schedule.dayOfWeek);
  const line = (days: string | undefined, dayOfMonth: string): string =>
    `${days ? `${days} ` : ''}*-${month}-${dayOfMonth} ${time}`;
  if (schedule.dayOfMonthRestricted && schedule.dayOfWeekRestricted) {
    return [line(dow, '*'), line(undefined, dom)];
  }
  if (schedule.dayOfWeekRestricted) return [line(dow, dom)];
  return [line(undefined, dom)];
}

/** One calendar component: `*`, `start/step`, or a list of values and `a..b` ranges. */
function field(values: readonly number[], min: number, max: number): string {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  if (sorted.length === max - min + 1) return '*';
  const text = (n: number): string => String(n).padStart(2, '0');
  if (sorted.length >= 3) {
    const step = sorted[1]! - sorted[0]!;
    const arithmetic = sorted.every((v, i) => i === 0 || v - sorted[i - 1]! === step);
    // `start/step` repeats up to the field's maximum: only when the list runs to the end that way.
    if (arithmetic && step > 1 && sorted.at(-1)! + step > max) return `${text(sorted[0]!)}/${step}`;
  }
  return runs(sorted)
    .map(([first, last]) =>
      last - first >= 2
        ? `${text(first)}..${text(last)}`
        : first === last
          ? text(first)
          : `${text(first)},${text(last)}`,
    )
    .join(',');
}

function weekdays(cronDays: readonly number[]): string {
  // Monday first, as systemd orders days (Sun..Sat ranges do not exist there).
  const indexes = [...new Set(cronDays.map((d) => (d + 6) % 7))].sort((a, b) => a - b);
  return runs(indexes)
    .map(([first, last]) =>
      last - first >= 2
        ? `${weekdayNames[first]}..${weekdayNames[last]}`
        : first === last
          ? weekdayNames[first]
          : `${weekdayNames[first]},${weekdayNames[last]}`,
    )
    .join(',');
}

/** Consecutive runs of a sorted list: [1,2,3,5] → [[1,3],[5,5]]. */
function runs(sorted: readonly number[]): [number, number][] {
  const result: [number, number][] = [];
  for (const value of sorted) {
    const current = result.at(-1);
    if (current && value === current[1] + 1) current[1] = value;
    else result.push([value, value]);
  }
  return result;
}
