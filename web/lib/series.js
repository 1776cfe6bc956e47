// A chart series with a hard size cap: one point per second, oldest dropped first.

/**
 * Points `{time, value}` with `time` in whole seconds, strictly increasing. Ticks within the same
 * second replace that second's point (the chart shows the latest price of each second).
 * It holds at most `cap + slack` points: when full it drops back to `cap` at once, so the chart's
 * full redraw (`setData`) happens once per `slack` points instead of on every tick.
 */
export class BoundedSeries {
  constructor(cap, slack = Math.max(1, Math.floor(cap / 10))) {
    if (!(cap >= 1) || !(slack >= 1)) throw new RangeError("cap and slack must be at least 1");
    this.cap = cap;
    this.slack = slack;
    this.items = [];
  }

  /**
   * Add the price at epoch-ms `ts`. Returns what the chart must do:
   * "append" or "replace" (update with the returned point), "trim" (setData with all points),
   * or "ignore" (older than the last point: the chart cannot go back in time).
   */
  add(ts, value) {
    const point = { time: Math.floor(ts / 1000), value };
    const last = this.items[this.items.length - 1];
    if (last !== undefined && point.time < last.time) return { action: "ignore", point: last };
    if (last !== undefined && point.time === last.time) {
      this.items[this.items.length - 1] = point;
      return { action: "replace", point };
    }
    this.items.push(point);
    if (this.items.length > this.cap + this.slack) {
      this.items.splice(0, this.items.length - this.cap);
      return { action: "trim", point };
    }
    return { action: "append", point };
  }

  get length() {
    return this.items.length;
  }

  get oldestTime() {
    return this.items.length ? this.items[0].time : undefined;
  }

  points() {
    return this.items.slice();
  }
}
