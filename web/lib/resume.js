// Resuming after a reconnect: which stream (epoch) the page's seqs belong to, and the subscribe that asks the
// server to replay what was missed (docs/protocol.md, "Recovery").

/**
 * Keeps the epoch of the server's `welcome`. `welcome(epoch)` says what a new connection found:
 * - "first":     the page's first connection;
 * - "same":      the same stream: the seqs seen go on, and the server can replay the ones missed;
 * - "restarted": another stream (a server that started its numbering over): the seqs seen mean nothing now.
 */
export class ResumePoint {
  constructor() {
    this.epoch = null;
  }

  welcome(epoch) {
    const before = this.epoch;
    this.epoch = typeof epoch === "string" ? epoch : null;
    if (before === null) return "first";
    return before === this.epoch ? "same" : "restarted";
  }

  /**
   * The subscribe for `symbols`, with `since` (the last seq seen per symbol, from `lastSeqs`, a Map) and the
   * epoch those seqs belong to, when there is anything to resume; otherwise a plain subscribe.
   */
  subscribe(symbols, lastSeqs) {
    const command = { action: "subscribe", symbols: [...symbols] };
    if (this.epoch === null) return command;
    const since = {};
    for (const symbol of symbols) {
      const seq = lastSeqs.get(symbol);
      if (Number.isSafeInteger(seq) && seq >= 0) since[symbol] = seq;
    }
    if (Object.keys(since).length === 0) return command;
    return { ...command, since, epoch: this.epoch };
  }
}
