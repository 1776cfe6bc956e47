// The WebSocket to /ws?batch=1 in the full protocol (subprotocol trio-ticker.v1): connect, reconnect with backoff
// and jitter, notice dead links.

import { Backoff } from "./lib/backoff.js";
import { FULL_PROTOCOL, parseFrame, socketUrl } from "./lib/frames.js";

const HEARTBEAT_MS = 15000; // a ping this often; silence for twice as long means the link is dead
const UNAUTHORIZED = 4001; // the server wants a (different) token: retrying cannot help

/**
 * States reported through `onState({state, retryAt, attempt, closeCode})`:
 * "connecting" (the first connection), "live", "reconnecting" (after a connection was lost: `retryAt`, epoch ms, of
 * the next attempt, or null while one is under way), "offline" (the browser has no network) and "unauthorized"
 * (close 4001: no valid token; no reconnect).
 * `onOpen()` runs on every (re)connect, before any message; `onMessages(messages)` gets each frame's messages.
 */
export class TickerConnection {
  constructor(
    { onOpen, onMessages, onState, onFrameError },
    { url = socketUrl(window.location), protocols = [FULL_PROTOCOL], backoff } = {},
  ) {
    this.url = url;
    this.protocols = protocols;
    this.handlers = { onOpen, onMessages, onState, onFrameError };
    this.backoff = backoff ?? new Backoff();
    this.socket = null;
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.lastHeard = 0;
    this.nextRequestId = 1;
    this.lost = false; // a connection was lost and none has opened since
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.socket === null && this.report({ state: "offline" }));
  }

  start() {
    this.open();
  }

  /** Send one command; returns its request id, or null when not connected (onOpen resends state). */
  send(command) {
    if (this.socket?.readyState !== WebSocket.OPEN) return null;
    const id = this.nextRequestId++;
    this.socket.send(JSON.stringify({ ...command, id }));
    return id;
  }

  /**
   * Skip the rest of the wait (the "Retry now" button, or the network came back), and start the backoff over:
   * the user asking again is no reason to wait longer the next time.
   */
  retryNow() {
    if (this.socket !== null) return;
    this.backoff.reset();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  open() {
    this.report({ state: this.lost ? "reconnecting" : "connecting", retryAt: null, attempt: this.backoff.attempt });
    const socket = new WebSocket(this.url, this.protocols);
    this.socket = socket;
    let heard = false;
    socket.onopen = () => {
      this.lastHeard = Date.now();
      this.startHeartbeat(socket);
      this.lost = false;
      this.report({ state: "live" });
      this.handlers.onOpen();
    };
    socket.onmessage = (event) => {
      this.lastHeard = Date.now();
      if (!heard) {
        heard = true;
        this.backoff.reset(); // the server answered: this connection proved itself
      }
      const { messages, error } = parseFrame(event.data);
      if (error) this.handlers.onFrameError(error);
      if (messages.length) this.handlers.onMessages(messages);
    };
    socket.onclose = (event) => this.closed(socket, event.code);
  }

  startHeartbeat(socket) {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > 2 * HEARTBEAT_MS) {
        // A half-open link can take minutes to report close: give up on it now.
        socket.close(4000, "no answer to pings");
        this.closed(socket, 4000);
        return;
      }
      this.send({ action: "ping" });
    }, HEARTBEAT_MS);
  }

  closed(socket, closeCode) {
    if (socket !== this.socket) return; // already handled (heartbeat gave up first)
    socket.onopen = socket.onmessage = socket.onclose = null;
    this.socket = null;
    clearInterval(this.heartbeatTimer);
    this.lost = true;
    if (closeCode === UNAUTHORIZED) {
      this.report({ state: "unauthorized", closeCode });
      return;
    }
    if (navigator.onLine === false) {
      this.report({ state: "offline", closeCode }); // the "online" event reconnects
      return;
    }
    const attempt = this.backoff.attempt;
    const delay = this.backoff.nextDelay();
    this.report({ state: "reconnecting", retryAt: Date.now() + delay, attempt, closeCode });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  report(status) {
    this.handlers.onState(status);
  }
}
