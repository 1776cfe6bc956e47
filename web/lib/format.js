// Number and time formatting for the board: pure functions, locale and time zone passed in.

/** Decimal places a price is shown with: cents for normal prices, more for sub-dollar coins. */
export function priceDecimals(price) {
  const size = Math.abs(price);
  if (size >= 1 || size === 0) return 2;
  if (size >= 0.01) return 4;
  return 8;
}

/**
 * The decimals to show: the symbol's own `precision` (a whole number 0-12, from the server) when known, else a
 * guess from the size of the price.
 */
export function decimalsFor(price, precision) {
  if (Number.isInteger(precision) && precision >= 0 && precision <= 12) return precision;
  return priceDecimals(Number.isFinite(price) ? price : 0);
}

/** A price with its symbol's precision (or the guess from its size when the precision is unknown). */
export function formatPrice(price, locale = "en-US", precision = null) {
  return formatDecimals(price, decimalsFor(price, precision), locale);
}

/** A traded quantity, short: "18.23K", "1.2M", "950.5"; "—" when unknown. */
export function formatVolume(volume, locale = "en-US") {
  if (!Number.isFinite(volume)) return "—";
  return volume.toLocaleString(locale, { notation: "compact", maximumFractionDigits: volume < 1 ? 4 : 2 });
}

/** A number with exactly `decimals` places and the locale's grouping: the chart's axis uses the table's style. */
export function formatDecimals(value, decimals, locale = "en-US") {
  if (!Number.isFinite(value)) return "—";
  return value.toLocaleString(locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** A signed change ("+1.25", "-0.50", "0.00"), with the price's own precision. */
export function formatChange(change, price, locale = "en-US", precision = null) {
  if (!Number.isFinite(change)) return "—";
  const decimals = decimalsFor(Number.isFinite(price) ? price : change, precision);
  return change.toLocaleString(locale, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
    signDisplay: "exceptZero",
  });
}

export function formatPercent(percent, locale = "en-US") {
  if (!Number.isFinite(percent)) return "—";
  const text = percent.toLocaleString(locale, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
    signDisplay: "exceptZero",
  });
  return `${text}%`;
}

/** Wall-clock time of an epoch-ms timestamp, 24 h, to the second. */
export function formatClock(epochMs, locale = "en-US", timeZone = undefined) {
  if (!Number.isFinite(epochMs)) return "—";
  return new Date(epochMs).toLocaleTimeString(locale, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZone,
  });
}

/** Which way a price moved: "up", "down" or "flat" (also "flat" for the first price). */
export function direction(previous, next) {
  if (!Number.isFinite(previous) || !Number.isFinite(next) || previous === next) return "flat";
  return next > previous ? "up" : "down";
}

/** Sign class of a change: "up", "down" or "flat". */
export function signOf(change) {
  if (!Number.isFinite(change) || change === 0) return "flat";
  return change > 0 ? "up" : "down";
}
