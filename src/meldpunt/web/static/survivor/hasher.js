// Page side of hashing on the device: hands files to hash-worker.js one at a time and returns its
// results, so the page stays responsive (all the work is in the worker) and no file is uploaded.
//
//   const hasher = createHasher();
//   const result = await hasher.hash(file, { onProgress: (p) => ..., options: {...} });
//   // result: {name, size, kind, format, md5, sha256, pdq: {hash, quality, ..., stored} | null}
//   // a refusal rejects with an Error whose `code` is "not-media", "undecodable", "too-large", ...

export function createHasher(workerUrl = new URL("./hash-worker.js", import.meta.url)) {
  const worker = new Worker(workerUrl, { type: "module" });
  const pending = new Map();
  let next = 1;
  let queue = Promise.resolve();
  worker.onmessage = (event) => {
    const msg = event.data;
    const job = pending.get(msg.id);
    if (!job) return;
    if (msg.type === "progress") {
      if (job.onProgress) job.onProgress(msg);
      return;
    }
    pending.delete(msg.id);
    if (msg.type === "result") job.resolve(msg.result);
    else job.reject(Object.assign(new Error(msg.message), { code: msg.code }));
  };
  worker.onerror = (event) => {
    for (const job of pending.values()) job.reject(Object.assign(new Error(event.message), { code: "failed" }));
    pending.clear();
  };
  function run(file, onProgress, options) {
    return new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject, onProgress });
      worker.postMessage({ id, file, options });
    });
  }
  return {
    /** Hash one file (files are queued: the worker hashes one at a time). */
    hash(file, { onProgress, options } = {}) {
      const done = queue.then(() => run(file, onProgress, options));
      queue = done.catch(() => undefined);
      return done;
    },
    close() {
      worker.terminate();
    },
  };
}
