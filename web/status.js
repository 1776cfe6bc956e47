// The connection banner, the upstream source chips, the mode badge, the notice and the aria-live
// announcements; what the banner and the chips say comes from one model (lib/status_view.js).

import { statusView } from "./lib/status_view.js";

const NOTICE_MS = 8000; // a notice reports an event: it goes away by itself

export class StatusBar {
  constructor({ banner, bannerText, retryButton, sources, mode, announcer, notice, noticeText, noticeClose }) {
    Object.assign(this, { banner, bannerText, retryButton, sources, mode, announcer, notice, noticeText });
    this.connection = { state: "connecting", retryAt: null };
    this.sourceStates = new Map(); // source -> state reported on this connection, or null (not yet)
    this.countdown = null;
    this.noticeTimer = null;
    this.lastAnnounced = "";
    noticeClose.addEventListener("click", () => this.showNotice(""));
  }

  /** A state from TickerConnection; announced once per change (not per countdown second or attempt). */
  showConnection({ state, retryAt = null, closeCode }) {
    const previous = this.connection.state;
    this.connection = { state, retryAt };
    if (state !== "live") for (const source of this.sourceStates.keys()) this.sourceStates.set(source, null);
    clearInterval(this.countdown);
    this.countdown = retryAt === null ? null : setInterval(() => this.render(), 250);
    this.render();
    if (state === previous) return;
    this.banner.dataset.since = String(Date.now()); // when the page entered this state (epoch ms)
    if (state === "live") this.announce("Connected: prices are live.");
    else if (state === "reconnecting") {
      const why = closeCode === 1001 ? "Server restarting." : closeCode === 4008 ? "Too slow to keep up." : "Connection lost.";
      this.announce(`${why} Reconnecting.`);
    } else if (state !== "connecting") this.announce(this.bannerText.textContent);
  }

  /** An upstream source's state, from a status message or /healthz on this connection. */
  showSource(source, state) {
    const known = this.sourceStates.get(source);
    if (known === state) return;
    this.sourceStates.set(source, state);
    const view = this.render();
    if (known) this.announce(view.chips.find((chip) => chip.source === source).text);
  }

  render() {
    const view = statusView(this.connection, this.sourceStates);
    this.banner.dataset.state = view.dot;
    document.body.dataset.connection = this.connection.state; // dims prices that are no longer current
    this.bannerText.textContent = view.text;
    this.retryButton.hidden = this.connection.state !== "reconnecting";
    for (const { source, state, text } of view.chips) {
      let chip = this.sources.querySelector(`[data-source="${CSS.escape(source)}"]`);
      if (!chip) {
        chip = document.createElement("li");
        chip.dataset.source = source;
        this.sources.append(chip);
      }
      chip.dataset.state = state;
      chip.textContent = text;
    }
    return view;
  }

  showMode(mode) {
    if (mode !== "demo" && mode !== "live") return;
    this.mode.hidden = false;
    this.mode.dataset.mode = mode;
    this.mode.textContent = mode === "demo" ? "Demo data" : "Live data";
    this.mode.title = mode === "demo" ? "Simulated prices, not market data" : "Prices from the market feed";
  }

  /** One line for the latest event, over the page (it never moves the layout); it hides after a few seconds. */
  showNotice(text) {
    clearTimeout(this.noticeTimer);
    this.noticeText.textContent = text;
    this.notice.hidden = !text;
    if (text) this.noticeTimer = setTimeout(() => this.showNotice(""), NOTICE_MS);
  }

  announce(text) {
    if (text === this.lastAnnounced) return;
    this.lastAnnounced = text;
    this.announcer.textContent = text;
  }
}
