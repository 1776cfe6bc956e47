// Per-symbol sequence tracking: the server numbers ticks 1, 2, 3... per symbol; a jump means skipped ticks.

/**
 * Classify tick `seq` for `symbol` against the last one seen:
 * - "first":  nothing seen yet for the symbol;
 * - "next":   exactly one more;
 * - "gap":    more than one more; `missed` ticks were conflated by the server or lost while offline;
 * - "repeat": the same or an older number again (a snapshot after reconnect with nothing new): ignore it;
 * - "reset":  numbering started over (the server restarted): a new history begins.
 * A restart is told from a late duplicate by the number being 1 (a fresh server's first tick) or by
 * `afterReconnect` (the first tick of a new connection may come from a restarted server).
 */
export class SeqTracker {
  constructor() {
    this.last = new Map();
    this.missed = 0;
  }

  observe(symbol, seq, { afterReconnect = false } = {}) {
    const last = this.last.get(symbol);
    if (last === undefined) {
      this.last.set(symbol, seq);
      return { kind: "first", missed: 0 };
    }
    if (seq === last + 1) {
      this.last.set(symbol, seq);
      return { kind: "next", missed: 0 };
    }
    if (seq > last + 1) {
      const missed = seq - last - 1;
      this.last.set(symbol, seq);
      this.missed += missed;
      return { kind: "gap", missed };
    }
    if (seq < last && (seq === 1 || afterReconnect)) {
      this.last.set(symbol, seq);
      return { kind: "reset", missed: 0 };
    }
    return { kind: "repeat", missed: 0 };
  }

  forget(symbol) {
    this.last.delete(symbol);
  }
}
