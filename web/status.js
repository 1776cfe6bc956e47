// The connection banner, the upstream source chips, the mode badge and the aria-live announcements.

const SOURCE_WORDS = {
  connecting: "connecting",
  live: "live",
  degraded: "degraded (some prices missing)",
  rate_limited: "rate limited (waiting)",
  reconnecting: "reconnecting",
  unauthorized: "unauthorized (check the API key)",
  stopped: "stopped",
};

export class StatusBar {
  constructor({ banner, bannerText, retryButton, sources, mode, announcer, notice }) {
    Object.assign(this, { banner, bannerText, retryButton, sources, mode, announcer, notice });
    this.countdown = null;
    this.sourceStates = new Map();
    this.lastAnnounced = "";
  }

  /** A state from TickerConnection: the banner text, plus one announcement per change (not per second). */
  showConnection({ state, retryAt, closeCode }) {
    clearInterval(this.countdown);
    this.countdown = null;
    this.banner.dataset.state = state;
    document.body.dataset.connection = state; // dims prices and feed states that are no longer current
    this.retryButton.hidden = state !== "reconnecting";
    if (state === "reconnecting") {
      const render = () => {
        const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
        this.bannerText.textContent = `Reconnecting in ${seconds} s`;
      };
      render();
      this.countdown = setInterval(render, 250);
      const why = closeCode === 1001 ? "Server restarting." : closeCode === 4008 ? "Too slow to keep up." : "Connection lost.";
      const seconds = Math.max(1, Math.round((retryAt - Date.now()) / 1000));
      this.announce(`${why} Reconnecting in ${seconds} seconds.`);
      return;
    }
    const text = {
      connecting: "Connecting…",
      live: "Live",
      offline: "Offline: waiting for the network",
      unauthorized: "Not authorized: this server needs a token. Open the page as /#token=YOUR_TOKEN",
    }[state];
    this.bannerText.textContent = text;
    if (state !== "connecting") this.announce(state === "live" ? "Connected: prices are live." : text);
  }

  /** An upstream source's state, from a status message or /healthz. */
  showSource(source, state) {
    if (this.sourceStates.get(source) === state) return;
    const known = this.sourceStates.has(source);
    this.sourceStates.set(source, state);
    let chip = this.sources.querySelector(`[data-source="${CSS.escape(source)}"]`);
    if (!chip) {
      chip = document.createElement("li");
      chip.dataset.source = source;
      this.sources.append(chip);
    }
    chip.dataset.state = state;
    chip.textContent = `${source} feed: ${SOURCE_WORDS[state] ?? state}`;
    if (known) this.announce(chip.textContent);
  }

  showMode(mode) {
    if (mode !== "demo" && mode !== "live") return;
    this.mode.hidden = false;
    this.mode.dataset.mode = mode;
    this.mode.textContent = mode === "demo" ? "Demo data" : "Live data";
    this.mode.title = mode === "demo" ? "Simulated prices, not market data" : "Prices from the market feed";
  }

  /** One line for the latest problem; replaces the previous one, so it never piles up. */
  showNotice(text) {
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }

  announce(text) {
    if (text === this.lastAnnounced) return;
    this.lastAnnounced = text;
    this.announcer.textContent = text;
  }
}
