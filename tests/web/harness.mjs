// Shared setup of the browser tests: the built site (dist/, from web/build.sh) served on 127.0.0.1, Debian's
// Chromium driven by playwright-core (WebGPU on SwiftShader), every request recorded, screenshots kept.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { serve } from "../../web/serve.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ARTIFACTS = join(ROOT, "tests", "artifacts");
export const photo = (name) => join(ROOT, "tests", "data", "photos", name);

const BASE_FLAGS = [
  "--no-sandbox",
  "--headless=new",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-dev-shm-usage",
];

/**
 * Starts the server and a browser. `webgpu: false` launches Chromium without WebGPU; `camera` (a .mjpeg/.y4m path)
 * gives it a fake camera showing that file, which the page may use unless `allowCamera` is false.
 */
export async function start({ webgpu = true, camera = null, allowCamera = true } = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const { server, url } = await serve(join(ROOT, process.env.FACEPATCH_SITE || "dist"), 0);
  const args = [...BASE_FLAGS];
  if (webgpu) args.push("--enable-unsafe-webgpu");
  else args.push("--disable-gpu"); // and no --enable-unsafe-webgpu: requestAdapter() gives null
  if (camera) {
    args.push("--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${camera}`);
    if (allowCamera) args.push("--use-fake-ui-for-media-stream");
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args,
    env: { ...process.env, NODEVICE_SELECT: "1" }, // silences a harmless Mesa warning
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  if (camera && allowCamera) await context.grantPermissions(["camera"], { origin: url });
  const requests = [];
  context.on("request", (r) => requests.push(r.url()));
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  return {
    url,
    page,
    context,
    browser,
    requests,
    logs,
    /** Requests to anything but the page's own origin (there must be none). */
    foreign: () => requests.filter((r) => !r.startsWith(url) && !r.startsWith("blob:") && !r.startsWith("data:")),
    async close() {
      await browser.close();
      server.close();
    },
  };
}

export const bytesOf = (name) => Array.from(readFileSync(photo(name)));
export const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

const FACEPATCH = process.env.FACEPATCH_BIN || join(ROOT, "target", "debug", "facepatch");

/** `facepatch verify --json` on the CPU path for two test photos: the reference the browser must reproduce. */
export function cliVerify(a, b, model = "rrf56") {
  const out = execFileSync(FACEPATCH, ["verify", photo(a), photo(b), "--model", model, "--device", "cpu", "--json"], {
    env: { ...process.env, NODEVICE_SELECT: "1" },
  });
  return JSON.parse(out);
}

/** How long a page step may take (the WebGPU path on SwiftShader is slow). */
export const LONG = { timeout: 180_000 };

/** Waits until the demo page has nothing loading or analysing. */
export const idle = (page) => page.waitForFunction(() => document.body.dataset.state === "ready", null, LONG);

/** Puts a test photo into slot "a" or "b" of the demo page and waits until it is analysed (and compared). */
export async function put(page, slot, name) {
  await page.setInputFiles(`#file-${slot}`, photo(name));
  await page.waitForFunction(() => document.body.dataset.state !== "ready", null, LONG).catch(() => {});
  await idle(page);
}
