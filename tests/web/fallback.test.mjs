// The page where the browser lacks something: no WebGPU (the CPU path runs and the page says so), no camera,
// a refused camera, and a working fake camera (Chromium's fake media stream showing a real face).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { start, photo, shot, ARTIFACTS, LONG, idle, put } from "./harness.mjs";

/** A one-frame MJPEG "video" of a real face for the fake camera (an MJPEG stream is concatenated JPEGs). */
function cameraFile(name) {
  const path = join(ARTIFACTS, "camera.mjpeg");
  copyFileSync(photo(name), path);
  return path;
}

test("without WebGPU the page still verifies, on the CPU path, and says so; no camera is reported", async () => {
  const h = await start({ webgpu: false });
  try {
    const page = h.page;
    await page.goto(h.url + "?backend=webgpu"); // even when WebGPU is asked for
    await idle(page);
    const adapter = await page.evaluate(async () => Boolean(navigator.gpu && (await navigator.gpu.requestAdapter())));
    assert.equal(adapter, false, "this browser has no WebGPU adapter");
    const backend = await page.textContent("#backend");
    assert.match(backend, /CPU/);
    assert.match(backend, /WebGPU (is not available|found no usable GPU adapter)/);
    assert.match(await page.textContent("#messages"), /WebGPU/);
    await put(page, "a", "lfw_Serena_Williams_0001.jpg");
    await put(page, "b", "lfw_Serena_Williams_0014.jpg");
    assert.equal(await page.getAttribute("#verdict", "data-match"), "true");
    await page.click("#camera-a");
    await page.waitForFunction(() => /no camera/i.test(document.getElementById("messages").textContent), null, LONG);
    await shot(page, "fallback-no-webgpu");
    assert.deepEqual(h.foreign(), []);
  } finally {
    await h.close();
  }
});

test("the camera path: capture a frame of Chromium's fake camera and verify it against a photo", async () => {
  const h = await start({ camera: cameraFile("lfw_Serena_Williams_0014.jpg") });
  try {
    const page = h.page;
    await page.goto(h.url);
    await idle(page);
    await page.click("#camera-a");
    await page.waitForFunction(() => document.getElementById("video-a").videoWidth > 0, null, LONG);
    await shot(page, "camera-preview");
    await page.click("#capture-a");
    await page.waitForFunction(() => document.body.dataset.state !== "ready", null, LONG).catch(() => {});
    await idle(page);
    assert.equal(await page.isHidden("#video-a"), true, "the camera stops after the capture");
    await put(page, "b", "lfw_Serena_Williams_0001.jpg");
    assert.equal(await page.getAttribute("#verdict", "data-match"), "true", await page.textContent("#messages"));
    await shot(page, "camera-captured");
    assert.deepEqual(h.foreign(), []);
  } finally {
    await h.close();
  }
});

test("a refused camera gets a clear message", async () => {
  const h = await start({ camera: cameraFile("lfw_Serena_Williams_0014.jpg"), allowCamera: false });
  try {
    const page = h.page;
    await page.goto(h.url);
    await idle(page);
    await page.click("#camera-a");
    await page.waitForFunction(() => /refused|could not start/i.test(document.getElementById("messages").textContent), null, LONG);
    assert.match(await page.textContent("#messages"), /camera access was refused/);
  } finally {
    await h.close();
  }
});

test("a second visit works offline: the page from its service worker, the models from the Cache API", async () => {
  const h = await start();
  try {
    const page = h.page;
    await page.goto(h.url);
    await idle(page);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload(); // now controlled by the service worker, which stores what the page loads
    await idle(page);
    await h.context.setOffline(true);
    await page.reload();
    await idle(page);
    assert.match(await page.textContent("#progress-label"), /ready/i);
    await put(page, "a", "lfw_Serena_Williams_0001.jpg");
    await put(page, "b", "lfw_Serena_Williams_0014.jpg");
    assert.equal(await page.getAttribute("#verdict", "data-match"), "true");
    await shot(page, "offline-second-visit");
  } finally {
    await h.close();
  }
});
