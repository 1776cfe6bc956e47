// The theme toggle: light or dark on <html data-theme>, following the system until the user picks one (kept).

import { THEME_KEY, otherTheme, resolveTheme } from "./lib/theme.js";

export class ThemeToggle {
  /** `onChange(theme)` runs after the page switched theme (the chart redraws its canvas colours). */
  constructor(button, { storage, onChange }) {
    this.button = button;
    this.storage = storage;
    this.onChange = onChange;
    this.system = window.matchMedia("(prefers-color-scheme: light)");
    this.system.addEventListener("change", () => this.apply());
    button.addEventListener("click", () => {
      try {
        this.storage.setItem(THEME_KEY, otherTheme(this.theme));
      } catch {
        // Not kept; the switch works for this page all the same.
        this.forced = otherTheme(this.theme);
      }
      this.apply();
    });
    this.forced = null;
    this.theme = null;
    this.apply();
  }

  apply() {
    const theme = this.forced ?? resolveTheme(this.saved(), this.system.matches);
    const changed = theme !== this.theme;
    this.theme = theme;
    document.documentElement.dataset.theme = theme;
    const next = otherTheme(theme);
    this.button.textContent = next === "light" ? "☀" : "☾";
    this.button.setAttribute("aria-label", `Switch to the ${next} theme`);
    this.button.title = `Switch to the ${next} theme`;
    if (changed) this.onChange?.(theme);
  }

  saved() {
    try {
      return this.storage.getItem(THEME_KEY);
    } catch {
      return null;
    }
  }
}
