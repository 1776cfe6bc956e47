// Light or dark: the saved choice of the toggle, else the system's preference (prefers-color-scheme).

export const THEME_KEY = "trio_ticker.theme.v1";

/** The theme to show: "light" or "dark". */
export function resolveTheme(savedText, prefersLight) {
  if (savedText === "light" || savedText === "dark") return savedText;
  return prefersLight ? "light" : "dark";
}

export function otherTheme(theme) {
  return theme === "light" ? "dark" : "light";
}
