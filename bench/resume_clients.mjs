// Recovering clients for loadgen.mjs's --resume case: K batching clients of the full protocol that stream one
// symbol unmeasured, then all drop at once, stay away for a gap, and reconnect at once with `since` + `epoch`.
// The report says how many were recovered and whether each saw every seq exactly once, in order.
import WebSocket from "ws";

class ResumeClient {
  constructor(url, protocols, symbol, recover, deflate) {
    this.url = url;
    this.deflate = deflate; // offer permessage-deflate, as the case's readers do (or not)
    this.recover = recover; // false: reconnect with a plain subscribe (a snapshot), to cost the handshakes alone
    this.protocols = protocols;
    this.symbol = symbol;
    this.epoch = null;
    this.lastSeq = null;
    this.holes = 0; // seqs never seen (after the first one)
    this.repeats = 0; // seqs seen twice
    this.ticks = 0;
    this.recovered = 0;
    this.notRecovered = 0;
    this.ws = null;
  }

  /** Open and subscribe (with `since` once it has a position); resolves once the ack arrived, false on failure. */
  open() {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url, this.protocols, { perMessageDeflate: this.deflate });
      this.ws = ws;
      let acked = false;
      ws.on("message", (data) => {
        for (const message of [JSON.parse(data)].flat()) {
          if (message.type === "welcome") {
            const command = { action: "subscribe", symbols: [this.symbol] };
            if (this.recover && this.epoch !== null && this.lastSeq !== null) {
              Object.assign(command, { since: { [this.symbol]: this.lastSeq }, epoch: this.epoch });
            }
            this.epoch = message.epoch;
            ws.send(JSON.stringify(command));
          } else if (message.type === "subscribed") {
            if (message.recovered) (message.recovered[this.symbol] ? this.recovered++ : this.notRecovered++);
            acked = true;
            resolve(true);
          } else if (message.type === "tick") {
            this.observe(message);
          }
        }
      });
      ws.on("close", () => acked || resolve(false));
      ws.on("error", () => acked || resolve(false));
    });
  }

  observe(tick) {
    this.ticks++;
    if (this.lastSeq !== null) {
      if (tick.seq <= this.lastSeq) {
        if (tick.recovered === undefined) this.repeats++; // a snapshot (recovered: false) may repeat; a replay never
        return;
      }
      this.holes += tick.seq - this.lastSeq - 1;
    }
    this.lastSeq = tick.seq;
  }

  drop() {
    this.ws?.terminate(); // no close frame: as a dead network link ends
    this.ws = null;
  }
}

export class ResumeClients {
  constructor(count, url, protocols, symbol, recover = true, deflate = false) {
    this.clients = Array.from({ length: count }, () => new ResumeClient(url, protocols, symbol, recover, deflate));
    this.cycles = 0;
    this.reconnectMs = [];
  }

  async openAll(concurrency) {
    let next = 0;
    const worker = async () => {
      while (next < this.clients.length) await this.clients[next++].open();
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, this.clients.length) }, worker));
  }

  /** Every client drops at once, stays away `gapMs`, then all reconnect at once with recovery. */
  async cycle(gapMs) {
    for (const client of this.clients) client.drop();
    await new Promise((resolve) => setTimeout(resolve, gapMs));
    const started = Date.now();
    await Promise.all(this.clients.map((client) => client.open()));
    this.reconnectMs.push(Date.now() - started);
    this.cycles++;
  }

  closeAll() {
    for (const client of this.clients) client.drop();
  }

  report() {
    const sum = (name) => this.clients.reduce((total, client) => total + client[name], 0);
    return {
      clients: this.clients.length,
      cycles: this.cycles,
      all_reconnected_ms: this.reconnectMs,
      recovered: sum("recovered"),
      not_recovered: sum("notRecovered"),
      ticks: sum("ticks"),
      holes: sum("holes"),
      repeats: sum("repeats"),
    };
  }
}
