// The demo page (dist/index.html) in headless Chromium, used as a visitor would: file inputs, the grid canvas,
// hovering and clicking cells, face choice, model and backend choice, messages, the Content-Security-Policy.
// Screenshots go to tests/artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { start, photo, shot, cliVerify, ROOT, LONG, idle as waitIdle, put as putPhoto } from "./harness.mjs";

let h;
let page;
before(async () => {
  h = await start();
  page = h.page;
});
after(async () => {
  await h?.close();
});

const idle = () => waitIdle(page);

async function open(query = "") {
  await page.goto(h.url + query);
  await idle();
}

/** Puts a photo into slot "a" or "b" and waits until the page has analysed (and compared) it. */
const put = (slot, name) => putPhoto(page, slot, name);

const verdict = async () => ({
  match: await page.getAttribute("#verdict", "data-match"),
  score: Number(await page.getAttribute("#verdict", "data-score")),
  text: await page.textContent("#verdict"),
  cells: await page.textContent("#cells-used"),
});

/** Moves the pointer over cell (r, c) of a slot's aligned canvas. */
async function hover(slot, r, c) {
  const cv = page.locator(`#aligned-${slot}`);
  await cv.scrollIntoViewIfNeeded();
  const box = await cv.boundingBox();
  const rows = Number(await cv.getAttribute("data-rows"));
  const cols = Number(await cv.getAttribute("data-cols"));
  await page.mouse.move(box.x + ((c + 0.5) * box.width) / cols, box.y + ((r + 0.5) * box.height) / rows);
  return { box, rows, cols };
}

test("two photos of the same person: a match, with the grid drawn and the verdict explained", async () => {
  await open();
  assert.match(await page.textContent("body"), /never leave this device/i);
  await put("a", "lfw_Serena_Williams_0001.jpg");
  await put("b", "lfw_Serena_Williams_0014.jpg");
  const v = await verdict();
  assert.equal(v.match, "true", v.text);
  assert.match(v.text, /same person/i);
  assert.match(v.cells, /196 of 196/);
  assert.match(await page.textContent("#far"), /%/);
  await page.waitForSelector("#aligned-a[data-grid-drawn=true]");
  await shot(page, "page-same-person");
});

test("the grid canvas holds the colour map, not just the face", async () => {
  // Where A's largest contribution is, the overlay is orange (positive): red well above blue.
  const cli = cliVerify("lfw_Serena_Williams_0001.jpg", "lfw_Serena_Williams_0014.jpg");
  const a = cli.grid.a;
  const top = a.indexOf(Math.max(...a));
  const px = await page.evaluate((top) => {
    const cv = document.getElementById("aligned-a");
    const g = cv.getContext("2d");
    const cols = Number(cv.dataset.cols);
    const s = cv.width / cols;
    const [r, c] = [Math.floor(top / cols), top % cols];
    const d = g.getImageData(Math.floor(c * s + s / 4), Math.floor(r * s + s / 4), Math.ceil(s / 2), Math.ceil(s / 2)).data;
    let [R, B, n] = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) [R, B, n] = [R + d[i], B + d[i + 2], n + 1];
    // And the canvas as a whole is not blank.
    const all = g.getImageData(0, 0, cv.width, cv.height).data;
    const colours = new Set();
    for (let i = 0; i < all.length; i += 16) colours.add((all[i] << 16) | (all[i + 1] << 8) | all[i + 2]);
    return { R: R / n, B: B / n, colours: colours.size, w: cv.width };
  }, top);
  assert.ok(px.colours > 500, `only ${px.colours} colours on the canvas`);
  assert.ok(px.R > px.B + 30, `top cell overlay is not orange: R ${px.R.toFixed(0)} B ${px.B.toFixed(0)}`);
});

test("hovering cells shows the contributions of facepatch verify --json (within 1e-3)", async () => {
  const cli = cliVerify("lfw_Serena_Williams_0001.jpg", "lfw_Serena_Williams_0014.jpg");
  const { rows, cols } = cli.grid;
  const cells = [[0, 0], [rows - 1, cols - 1], [7, 7], [3, 10], [11, 2]];
  let worst = 0;
  for (const [r, c] of cells) {
    await hover("a", r, c);
    const text = await page.textContent("#cell-info");
    const m = text.match(/row (\d+), col (\d+): contribution ([+-][\d.]+) \(A\), ([+-][\d.]+) \(B\)/);
    assert.ok(m, `cell info reads "${text}"`);
    assert.deepEqual([Number(m[1]), Number(m[2])], [r, c]);
    const i = r * cols + c;
    worst = Math.max(worst, Math.abs(Number(m[3]) - cli.grid.a[i]), Math.abs(Number(m[4]) - cli.grid.b[i]));
  }
  assert.ok(worst < 1e-3, `page vs CLI worst difference ${worst}`);
  await shot(page, "page-hover-window");
});

test("clicking a cell, or pressing Enter on it, leaves it out and the score changes at once", async () => {
  const before = await verdict();
  await hover("a", 7, 7);
  await page.mouse.down();
  await page.mouse.up();
  await page.waitForFunction((s) => Number(document.getElementById("verdict").dataset.score) !== s, before.score, LONG);
  const one = await verdict();
  assert.match(one.cells, /195 of 196/);
  assert.notEqual(one.score, before.score);
  // Keyboard: focus B's grid, move the cursor, toggle with Enter.
  await page.focus("#aligned-b");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /194 of 196/.test(document.getElementById("cells-used").textContent), null, LONG);
  const two = await verdict();
  assert.notEqual(two.score, one.score);
  await shot(page, "page-masked");
  await page.click("#reset-mask");
  await page.waitForFunction(() => /196 of 196/.test(document.getElementById("cells-used").textContent), null, LONG);
  assert.equal((await verdict()).score, before.score);
});

test("the operating point changes the threshold and its false-accept rate", async () => {
  const t0 = await page.textContent("#threshold");
  await page.selectOption("#operating-point", "far1e-3");
  await page.waitForFunction((t) => document.getElementById("threshold").textContent !== t, t0, LONG);
  assert.match(await page.textContent("#far"), /0\.\d+% \(1 in \d+\)/);
  await page.selectOption("#operating-point", "best");
});

test("two different people: no match", async () => {
  await put("b", "lfw_Jim_Ahern_0001.jpg");
  const v = await verdict();
  assert.equal(v.match, "false", v.text);
  assert.match(v.text, /different/i);
  await shot(page, "page-different-people");
});

test("a photo with several faces lets the visitor pick one", async () => {
  await put("b", "group_3x2.jpg");
  const buttons = page.locator("#faces-b button");
  assert.equal(await buttons.count(), 7);
  assert.match(await page.textContent("#messages"), /7 faces/);
  const s0 = (await verdict()).score;
  const other = buttons.nth(4);
  if ((await other.getAttribute("aria-pressed")) === "true") throw new Error("face 5 was the default");
  await other.click();
  await page.waitForFunction((s) => Number(document.getElementById("verdict").dataset.score) !== s, s0, LONG);
  assert.equal(await other.getAttribute("aria-pressed"), "true");
  await shot(page, "page-several-faces");
});

test("unreadable files and photos without a face get clear messages", async () => {
  await page.setInputFiles("#file-b", join(ROOT, "tests", "data", "inputs", "not_an_image.jpg"));
  await page.waitForFunction(() => /not an image/i.test(document.getElementById("messages").textContent), null, LONG);
  assert.match(await page.textContent("#messages"), /B/);
  await idle();
  await page.setInputFiles("#file-b", join(ROOT, "tests", "data", "inputs", "no_face.png"));
  await page.waitForFunction(() => /no face/i.test(document.getElementById("messages").textContent), null, LONG);
  await idle();
  await shot(page, "page-no-face");
});

test("a photo dropped onto a slot is analysed", async () => {
  // Slot B holds the photo without a face from the test before: no verdict yet.
  assert.equal(await page.getAttribute("#verdict", "data-match"), null);
  const bytes = Array.from(readFileSync(photo("lfw_Serena_Williams_0014.jpg")));
  const dt = await page.evaluateHandle((bytes) => {
    const d = new DataTransfer();
    d.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", { type: "image/jpeg" }));
    return d;
  }, bytes);
  await page.dispatchEvent("#slot-b", "dragover", { dataTransfer: dt });
  await page.dispatchEvent("#slot-b", "drop", { dataTransfer: dt });
  await page.waitForFunction(() => document.getElementById("verdict").dataset.match === "true", null, LONG);
  await idle();
});

test("switching to RRF-28 reloads the model and re-analyses both photos", async () => {
  await put("b", "lfw_Serena_Williams_0014.jpg");
  await page.selectOption("#model", "rrf28");
  await page.waitForFunction(() => /784 of 784/.test(document.getElementById("cells-used").textContent), null, LONG);
  await idle();
  assert.equal(await page.getAttribute("#aligned-a", "data-cols"), "28");
  assert.ok(Number.isFinite((await verdict()).score));
  await shot(page, "page-rrf28");
});

test("the WebGPU backend runs when chosen, and verifies the same way", async () => {
  await open("?backend=webgpu");
  assert.match(await page.textContent("#backend"), /WebGPU/);
  await put("a", "lfw_Serena_Williams_0001.jpg");
  await put("b", "lfw_Serena_Williams_0014.jpg");
  const v = await verdict();
  assert.equal(v.match, "true");
  const cpu = cliVerify("lfw_Serena_Williams_0001.jpg", "lfw_Serena_Williams_0014.jpg");
  assert.ok(Math.abs(v.score - cpu.score) < 1e-3, `WebGPU page score ${v.score} vs CLI ${cpu.score}`);
  await shot(page, "page-webgpu");
});

test("the Content-Security-Policy blocks inline scripts and requests to other origins", async () => {
  const resp = await page.goto(h.url);
  assert.match(resp.headers()["content-security-policy"], /connect-src 'self'/);
  assert.match(await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', "content"), /default-src 'self'/);
  await idle();
  const r = await page.evaluate(async () => {
    const violations = [];
    document.addEventListener("securitypolicyviolation", (e) => violations.push(e.violatedDirective));
    const s = document.createElement("script");
    s.textContent = "window.inlineRan = true";
    document.body.append(s);
    let fetched = true;
    try {
      await fetch("http://example.invalid/upload", { method: "POST", body: "x" });
    } catch {
      fetched = false;
    }
    await new Promise((ok) => setTimeout(ok, 100));
    return { inlineRan: Boolean(window.inlineRan), fetched, violations };
  });
  assert.equal(r.inlineRan, false);
  assert.equal(r.fetched, false);
  assert.ok(r.violations.some((v) => v.startsWith("script-src")), r.violations.join());
  assert.ok(r.violations.some((v) => v.startsWith("connect-src")), r.violations.join());
});

test("no request left the page's origin", () => {
  // The CSP test's blocked fetch never reached the network either.
  assert.deepEqual(h.foreign(), []);
  assert.ok(h.requests.some((u) => u.endsWith("rrf28.safetensors")));
});

test("every control is labelled and reachable by keyboard; the layout fits a phone", async () => {
  await open();
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("button, select, input, [tabindex]")]
      .filter((el) => !el.hidden && el.offsetParent !== null)
      .filter((el) => {
        const name = el.getAttribute("aria-label") || el.labels?.[0]?.textContent || el.textContent ||
          (el.getAttribute("aria-labelledby") && document.getElementById(el.getAttribute("aria-labelledby"))?.textContent);
        return !name || !name.trim();
      })
      .map((el) => el.id || el.outerHTML.slice(0, 60)),
  );
  assert.deepEqual(unlabelled, []);
  // Tab through the page: the main controls all take focus.
  const reached = new Set();
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    reached.add(await page.evaluate(() => document.activeElement?.id));
  }
  for (const id of ["model", "backend-choice", "operating-point", "file-a", "camera-a", "file-b", "camera-b"]) {
    assert.ok(reached.has(id), `Tab never reaches #${id} (reached: ${[...reached].join(", ")})`);
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await put("a", "lfw_Serena_Williams_0001.jpg");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 390px screen`);
  await shot(page, "page-phone");
  await page.setViewportSize({ width: 1280, height: 1000 });
});
