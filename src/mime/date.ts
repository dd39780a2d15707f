const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * An RFC 5322 §3.3 date-time such as `Tue, 01 Jul 2025 09:05:00 +0000`. Always in UTC, so the
 * same instant gives the same bytes whatever the machine's time zone.
 */
export function formatDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("cannot write an invalid Date in a Date header");
  return (
    `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}
