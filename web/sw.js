// The demo page's service worker: keeps the page, its scripts and the wasm core so a second visit works offline.
// Network first (a new build is picked up at once), the cache when the network fails. The model files are kept
// by the library itself (Cache API, checked against manifest.json), so they are not handled here.
const SHELL = "facepatch-page-v1";
const FILES = [
  "./",
  "index.html",
  "app.js",
  "style.css",
  "facepatch/facepatch.js",
  "facepatch/worker.js",
  "facepatch/facepatch_core.js",
  "facepatch/facepatch_core_bg.wasm",
];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin || url.pathname.includes("/models/")) return;
  e.respondWith(
    (async () => {
      const cache = await caches.open(SHELL);
      try {
        const r = await fetch(e.request);
        if (r.ok) await cache.put(e.request, r.clone());
        return r;
      } catch (err) {
        const hit = await cache.match(e.request, { ignoreSearch: true });
        if (hit) return hit;
        throw err;
      }
    })(),
  );
});
