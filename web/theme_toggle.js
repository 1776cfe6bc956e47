// The theme toggle: light or dark on <html data-theme>, following the system until the user picks one (kept).

import { otherTheme, resolveTheme } from "./lib/theme.js";

export class ThemeToggle {
  /**
   * `saved` is the kept choice ("light", "dark" or null), `save(theme)` keeps a new one; `onChange(theme)` runs
   * after the page switched theme (the chart recolours its canvas).
   */
  constructor(button, { saved, save, onChange }) {
    this.button = button;
    this.chosen = saved;
    this.onChange = onChange;
    this.theme = null;
    this.system = window.matchMedia("(prefers-color-scheme: light)");
    this.system.addEventListener("change", () => this.apply());
    button.addEventListener("click", () => {
      this.chosen = otherTheme(this.theme);
      save(this.chosen);
      this.apply();
    });
    this.apply();
  }

  apply() {
    const theme = resolveTheme(this.chosen, this.system.matches);
    const changed = theme !== this.theme;
    this.theme = theme;
    document.documentElement.dataset.theme = theme;
    const next = otherTheme(theme);
    this.button.textContent = next === "light" ? "☀" : "☾";
    this.button.setAttribute("aria-label", `Switch to the ${next} theme`);
    this.button.title = `Switch to the ${next} theme`;
    if (changed) this.onChange(theme);
  }
}
