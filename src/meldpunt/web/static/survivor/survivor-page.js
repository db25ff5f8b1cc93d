// The survivor pages' script: hashes the chosen files on the device with hasher.js (a Web Worker)
// and puts only the hashes, as a JSON list of [type, value] pairs, in the form's hidden `hashes`
// field. The files themselves are never read by this page and never posted: the file input has no
// `name`, so the browser does not send it with the form.
import { createHasher } from "./hasher.js";

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
}

function setUp(box) {
  const form = box.closest("form");
  const input = box.querySelector("#files");
  const bar = box.querySelector("#hash-progress");
  const status = box.querySelector("#hash-status");
  const notes = box.querySelector("#hash-notes");
  const field = box.querySelector("#hashes");
  const send = form.querySelector("[data-needs-hashes]");
  const pairs = new Map();
  let files = 0;
  let hasher = null;

  function note(text) {
    const li = document.createElement("li");
    li.textContent = text;
    notes.appendChild(li);
  }

  const mb = (bytes) => Math.round(bytes / 1e6).toLocaleString(document.documentElement.lang || undefined);

  // hashes the server kept after a refused post (a mistyped passphrase): ready to send again
  try {
    for (const [kind, value] of JSON.parse(field.value || "[]")) pairs.set(kind + ":" + value, [kind, value]);
  } catch {
    field.value = "";
  }
  input.disabled = false;
  send.disabled = pairs.size === 0;
  input.addEventListener("change", async () => {
    const chosen = Array.from(input.files || []);
    if (!chosen.length) return;
    // The largest video hashed here (bytes, from the page): above it the browser would take too
    // long (bench/survivor_video.py), so such a video is refused in plain words, nothing sent for it.
    const maxVideo = Number(box.dataset.maxVideoBytes || 0);
    hasher = hasher || createHasher();
    input.disabled = true;
    send.disabled = true;
    bar.hidden = false;
    for (let i = 0; i < chosen.length; i++) {
      const file = chosen[i];
      const where = { i: i + 1, n: chosen.length };
      status.textContent = fill(status.dataset.working, where);
      bar.value = 0;
      let said = 0; // the last quarter said in words (the live region is not flooded)
      try {
        const result = await hasher.hash(file, {
          onProgress: (p) => {
            if (!p.total) return;
            bar.value = Math.round((100 * p.done) / p.total);
            const quarter = Math.floor((4 * p.done) / p.total);
            if (quarter > said && quarter < 4) {
              said = quarter;
              status.textContent = fill(status.dataset.percent, { ...where, p: 25 * quarter });
            }
          },
          options: maxVideo ? { maxVideoBytes: maxVideo } : {},
        });
        pairs.set("md5:" + result.md5, ["md5", result.md5]);
        pairs.set("sha256:" + result.sha256, ["sha256", result.sha256]);
        if (result.pdq) {
          pairs.set("pdq:" + result.pdq.hash, ["pdq", result.pdq.hash]);
          if (result.pdq.stored) pairs.set("pdq:" + result.pdq.stored.hash, ["pdq", result.pdq.stored.hash]);
        } else if (result.kind === "video") {
          note(fill(status.dataset.video, { name: file.name }));
        } else if (result.pdqRefused && result.pdqRefused.code === "too-large") {
          note(fill(status.dataset.toolarge, { name: file.name }));
        } else {
          note(fill(status.dataset.nopdq, { name: file.name }));
        }
        files += 1;
      } catch (e) {
        const words = e.code === "video-too-large" ? status.dataset.videotoolarge : status.dataset.refused;
        note(fill(words, { name: file.name, size: mb(file.size), limit: mb(maxVideo) }));
      }
    }
    bar.value = 100;
    field.value = JSON.stringify(Array.from(pairs.values()));
    status.textContent = fill(status.dataset.ready, { n: files, h: pairs.size });
    input.value = "";
    input.disabled = false;
    send.disabled = pairs.size === 0;
  });
}

for (const box of document.querySelectorAll("[data-survivor-hashing]")) setUp(box);
