// Canvases at the screen's real pixel ratio. The chart library sizes its canvases from ResizeObserver's
// device-pixel-content-box when the browser offers it; Chromium under device emulation (a 2x phone in DevTools or
// Playwright) reports CSS pixels there, which draws the chart at 1x on a 2x screen. When the report is wrong
// we hide it, and the library falls back to CSS size x devicePixelRatio.

const REPORT_WAIT_MS = 1000; // a tab in the background renders nothing: do not hold the board back for it

/** Resolves to the device pixel width the browser reports for a 100 px element, or null if it reports none. */
function reportedDevicePixels() {
  return new Promise((resolve) => {
    setTimeout(() => resolve(null), REPORT_WAIT_MS);
    const probe = document.createElement("div");
    probe.style.cssText = "position:absolute;visibility:hidden;width:100px;height:1px";
    document.documentElement.append(probe);
    const observer = new ResizeObserver(([entry]) => {
      observer.disconnect();
      probe.remove();
      resolve(entry.devicePixelContentBoxSize?.[0]?.inlineSize ?? null);
    });
    try {
      observer.observe(probe, { box: "device-pixel-content-box" });
    } catch {
      observer.disconnect();
      probe.remove();
      resolve(null); // the box is not supported: the library already uses devicePixelRatio
    }
  });
}

/** Call once before creating charts. */
export async function useTrueDevicePixels() {
  const reported = await reportedDevicePixels();
  const expected = 100 * window.devicePixelRatio;
  if (reported !== null && Math.abs(reported - expected) > 1) {
    delete ResizeObserverEntry.prototype.devicePixelContentBoxSize;
  }
}
