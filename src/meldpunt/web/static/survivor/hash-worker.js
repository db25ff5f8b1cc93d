// Web Worker that hashes one file at a time on the device: MD5 and SHA-256 of its bytes, and for
// images PDQ (with quality) as the server computes it. Nothing leaves the device: the worker makes
// no request; it only posts hashes back to the page.
//
// Messages in:  {id, file, options?: {chunkSize, webcryptoMax, maxPixels, maxVideoBytes}}
// Messages out: {id, type: "progress", stage: "read" | "decode" | "pdq", done, total}
//               {id, type: "result", result: {name, size, kind, format, md5, sha256, sha256By,
//                                             pdq, pdqRefused, timings}}
//               {id, type: "error", code, message}
// An error refuses the file: "not-media" (neither picture nor video: nothing is hashed),
// "read-failed" (it could not be read), "video-too-large" (a video over maxVideoBytes: refused
// before a byte is hashed, as it would take too long here). A picture that cannot be PDQ-hashed keeps its MD5 and
// SHA-256 (as on the server) with `pdq: null` and `pdqRefused: {code, message}`: "undecodable" (the
// browser cannot open it) or "too-large" (more pixels than maxPixels, read from the header before
// decoding when it can be). A video gets MD5 and SHA-256 only (`pdq: null`, `pdqRefused: null`):
// video PDQ (vPDQ) is left to the server.
//
// Why it is built this way:
// * Files are read in slices (`chunkSize`), so a large video is never held whole; SHA-256 goes through
//   WebCrypto for files up to `webcryptoMax` bytes (it wants one buffer) and is streamed above.
// * The picture is decoded once, upright (`imageOrientation: "from-image"`, no colour-space
//   conversion, as Pillow decodes without ICC), into an OffscreenCanvas. When its EXIF orientation
//   turns or mirrors it (2-8), the pixels *as stored* are hashed too: the server does the same
//   (src/meldpunt/signals/image.py, `stored_pdq`), since Meta's hashers and HMA hash stored pixels.
//   The stored pixels are made by turning the upright luma back, exactly (a dihedral turn moves
//   pixels without changing them). A second decode with `imageOrientation: "none"` cannot be used:
//   the spec now makes "none" a synonym of "from-image" (the EXIF turn is applied; Chromium 156 does
//   so, see test_stored_pixels_do_not_rely_on_imageorientation_none), and it would cost a decode.
// * The server reduces very large pictures before PDQ; here the full picture is filtered, as the
//   `pdqhash` package does. The two differ by a few bits at most (see tests/test_survivor_pdqjs.py).

import { MD5, SHA256, WEBCRYPTO_MAX, webcryptoSha256 } from "./digests.js";
import { lumaFromRGBA, pdqFromLuma } from "./pdq.js";

const CHUNK = 4 * 1024 * 1024;
const MAX_PIXELS = 50_000_000; // settings.max_image_pixels on the server

class HashError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function startsWith(bytes, at, text) {
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** {kind: "image" | "video" | null, format} from the first bytes (what the file is, not its name). */
export function sniff(b) {
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { kind: "image", format: "jpeg" };
  if (startsWith(b, 0, "\x89PNG")) return { kind: "image", format: "png" };
  if (startsWith(b, 0, "GIF8")) return { kind: "image", format: "gif" };
  if (startsWith(b, 0, "RIFF") && startsWith(b, 8, "WEBP")) return { kind: "image", format: "webp" };
  if (startsWith(b, 0, "RIFF") && startsWith(b, 8, "AVI ")) return { kind: "video", format: "avi" };
  if (startsWith(b, 0, "BM")) return { kind: "image", format: "bmp" };
  if (b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return { kind: "image", format: "ico" };
  if (startsWith(b, 0, "II*\0") || startsWith(b, 0, "MM\0*")) return { kind: "image", format: "tiff" };
  if (startsWith(b, 4, "ftyp")) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (["avif", "avis"].includes(brand)) return { kind: "image", format: "avif" };
    if (["heic", "heix", "mif1", "msf1", "heim", "heis"].includes(brand)) return { kind: "image", format: "heif" };
    return { kind: "video", format: "mp4" };
  }
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return { kind: "video", format: "webm" };
  if (startsWith(b, 0, "FLV")) return { kind: "video", format: "flv" };
  if (b[0] === 0 && b[1] === 0 && b[2] === 1 && (b[3] === 0xba || b[3] === 0xb3)) return { kind: "video", format: "mpeg" };
  if (b[0] === 0x47 && b.length > 188 && b[188] === 0x47) return { kind: "video", format: "mpeg-ts" };
  if (startsWith(b, 0, "\x30\x26\xb2\x75")) return { kind: "video", format: "wmv" };
  return { kind: null, format: null };
}

// EXIF orientation from a TIFF block (the body of an EXIF segment), or null.
function tiffOrientation(view, start) {
  if (start + 8 > view.byteLength) return null;
  const little = view.getUint16(start) === 0x4949;
  const ifd = start + view.getUint32(start + 4, little);
  if (ifd + 2 > view.byteLength) return null;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + 12 * i;
    if (entry + 12 > view.byteLength) return null;
    if (view.getUint16(entry, little) === 0x0112) {
      const value = view.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : null;
    }
  }
  return null;
}

/** EXIF orientation (1-8) of a JPEG, PNG or WebP header, or null when it has none. */
export function exifOrientation(bytes, format) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const exifBody = (at) => (startsWith(bytes, at, "Exif\0\0") ? at + 6 : at);
  try {
    if (format === "jpeg") {
      let at = 2;
      while (at + 4 <= bytes.length && bytes[at] === 0xff) {
        const marker = bytes[at + 1];
        if (marker === 0xda || marker === 0xd9) break; // image data: no EXIF after this
        const length = view.getUint16(at + 2);
        if (marker === 0xe1 && startsWith(bytes, at + 4, "Exif\0\0")) return tiffOrientation(view, at + 10);
        at += 2 + length;
      }
    } else if (format === "png") {
      for (let at = 8; at + 8 <= bytes.length; ) {
        const length = view.getUint32(at);
        if (startsWith(bytes, at + 4, "eXIf")) return tiffOrientation(view, exifBody(at + 8));
        if (startsWith(bytes, at + 4, "IDAT")) break;
        at += 12 + length;
      }
    } else if (format === "webp") {
      for (let at = 12; at + 8 <= bytes.length; ) {
        const length = view.getUint32(at + 4, true);
        if (startsWith(bytes, at, "EXIF")) return tiffOrientation(view, exifBody(at + 8));
        at += 8 + length + (length & 1);
      }
    }
  } catch {
    return null; // a damaged header: shown (and hashed) as stored
  }
  return null;
}

/**
 * [width, height] read from the header of a JPEG, PNG, GIF or WebP, or null: checked before
 * decoding, so that a decompression bomb (a small file of a huge picture) is refused unopened.
 */
export function headerDimensions(bytes, format) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (format === "png" && startsWith(bytes, 12, "IHDR")) return [view.getUint32(16), view.getUint32(20)];
    if (format === "gif") return [view.getUint16(6, true), view.getUint16(8, true)];
    if (format === "webp") {
      if (startsWith(bytes, 12, "VP8X")) {
        const w = 1 + (bytes[24] | (bytes[25] << 8) | (bytes[26] << 16));
        const h = 1 + (bytes[27] | (bytes[28] << 8) | (bytes[29] << 16));
        return [w, h];
      }
      if (startsWith(bytes, 12, "VP8L")) {
        const b = view.getUint32(21, true);
        return [1 + (b & 0x3fff), 1 + ((b >>> 14) & 0x3fff)];
      }
      if (startsWith(bytes, 12, "VP8 ")) return [view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff];
    }
    if (format === "jpeg") {
      let at = 2;
      while (at + 9 <= bytes.length && bytes[at] === 0xff) {
        const marker = bytes[at + 1];
        const sof = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
        if (sof) return [view.getUint16(at + 7), view.getUint16(at + 5)];
        if (marker === 0xda) break;
        at += 2 + view.getUint16(at + 2);
      }
    }
  } catch {
    return null; // a header cut short: the decoder says what it can
  }
  return null;
}

function tooLarge(width, height) {
  return new HashError(
    "too-large",
    `This picture is too large to hash here (${width} x ${height} pixels).`,
  );
}

// How the stored pixels come from the upright ones, per EXIF orientation: for a stored pixel
// (x, y) of a picture w x h (stored size), the upright pixel's (column, row), upright size W x H.
const STORED_FROM_UPRIGHT = {
  2: (x, y, W, H) => [W - 1 - x, y], // mirrored left-right
  3: (x, y, W, H) => [W - 1 - x, H - 1 - y], // turned 180
  4: (x, y, W, H) => [x, H - 1 - y], // mirrored top-bottom
  5: (x, y) => [y, x], // transposed
  6: (x, y, W) => [W - 1 - y, x], // stored turned 90 degrees anticlockwise
  7: (x, y, W, H) => [W - 1 - y, H - 1 - x], // transversed
  8: (x, y, W, H) => [y, H - 1 - x], // stored turned 90 degrees clockwise
};

/** The stored pixels' luma {luma, width, height} from the upright luma, for orientation 2-8. */
export function storedLuma(upright, W, H, orientation) {
  const swap = orientation >= 5;
  const w = swap ? H : W;
  const h = swap ? W : H;
  const from = STORED_FROM_UPRIGHT[orientation];
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [ux, uy] = from(x, y, W, H);
      out[y * w + x] = upright[uy * W + ux];
    }
  }
  return { luma: out, width: w, height: h };
}

async function digests(id, file, options) {
  const chunk = options.chunkSize || CHUNK;
  const whole = file.size <= (options.webcryptoMax ?? WEBCRYPTO_MAX);
  const md5 = new MD5();
  const sha = whole ? null : new SHA256();
  let buffer = null;
  if (whole) buffer = await file.arrayBuffer();
  for (let at = 0; at < file.size || at === 0; at += chunk) {
    const end = Math.min(file.size, at + chunk);
    const bytes = whole
      ? new Uint8Array(buffer, at, end - at)
      : new Uint8Array(await file.slice(at, end).arrayBuffer());
    md5.update(bytes);
    if (sha) sha.update(bytes);
    postMessage({ id, type: "progress", stage: "read", done: end, total: file.size });
    if (file.size === 0) break;
  }
  const sha256 = whole ? await webcryptoSha256(buffer) : sha.hex();
  return { md5: md5.hex(), sha256, sha256By: whole ? "webcrypto" : "stream" };
}

async function pdqOfImage(id, file, format, head, options) {
  const maxPixels = options.maxPixels || MAX_PIXELS;
  const dims = headerDimensions(head, format);
  if (dims && dims[0] * dims[1] > maxPixels) throw tooLarge(dims[0], dims[1]);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {
      imageOrientation: "from-image",
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
  } catch (e) {
    throw new HashError("undecodable", "This picture could not be opened, so it cannot be hashed as a picture.");
  }
  const { width, height } = bitmap;
  if (width * height > maxPixels) {
    bitmap.close();
    throw tooLarge(width, height);
  }
  const decodeDone = performance.now();
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height, { colorSpace: "srgb" }).data;
  canvas.width = canvas.height = 1; // let the canvas memory go
  postMessage({ id, type: "progress", stage: "decode", done: 1, total: 1 });
  const orientation = exifOrientation(head, format);
  const moved = orientation !== null && orientation >= 2;
  const luma = lumaFromRGBA(rgba, width, height);
  const stored = moved ? storedLuma(luma, width, height, orientation) : null;
  const passes = moved ? 2 : 1;
  const progress = (pass) => (done, total) =>
    postMessage({ id, type: "progress", stage: "pdq", done: pass * total + done, total: passes * total });
  const upright = pdqFromLuma(luma, height, width, progress(0));
  const result = { hash: upright.hash, quality: upright.quality, width, height, orientation, stored: null };
  if (stored) {
    const s = pdqFromLuma(stored.luma, stored.height, stored.width, progress(1));
    result.stored = { hash: s.hash, quality: s.quality };
  }
  return { pdq: result, decodeMs: decodeDone };
}

async function hashFile(id, file, options) {
  let head;
  try {
    head = new Uint8Array(await file.slice(0, 256 * 1024).arrayBuffer());
  } catch {
    throw new HashError("read-failed", "This file could not be read.");
  }
  const { kind, format } = sniff(head);
  if (!kind) {
    throw new HashError("not-media", "This file is not a picture or a video, so it is not hashed.");
  }
  if (kind === "video" && options.maxVideoBytes && file.size > options.maxVideoBytes) {
    throw new HashError("video-too-large", "This video is too large to hash in the browser.");
  }
  const t0 = performance.now();
  let sums;
  try {
    sums = await digests(id, file, options);
  } catch (e) {
    throw new HashError("read-failed", "This file could not be read.");
  }
  const t1 = performance.now();
  let pdq = null;
  let decodeMs = null;
  let pdqRefused = null;
  if (kind === "image") {
    try {
      const out = await pdqOfImage(id, file, format, head, options);
      pdq = out.pdq;
      decodeMs = out.decodeMs - t1;
    } catch (e) {
      if (!(e instanceof HashError)) throw e;
      // as on the server, the exact hashes stand when the picture cannot be PDQ-hashed
      pdqRefused = { code: e.code, message: e.message };
    }
  }
  const t2 = performance.now();
  return {
    name: file.name,
    size: file.size,
    kind,
    format,
    ...sums,
    pdq,
    pdqRefused,
    timings: { digestMs: t1 - t0, decodeMs, pdqMs: kind === "image" ? t2 - t1 : null },
  };
}

self.onmessage = async (event) => {
  const { id, file, options } = event.data;
  try {
    const result = await hashFile(id, file, options || {});
    postMessage({ id, type: "result", result });
  } catch (e) {
    const code = e instanceof HashError ? e.code : "failed";
    postMessage({ id, type: "error", code, message: e instanceof HashError ? e.message : String(e) });
  }
};
