// PDQ perceptual hash (and its quality) of RGBA pixels, in plain JavaScript, for hashing on the device.
//
// Written for meldpunt from Meta's PDQ description (ThreatExchange pdq/README.md and the hashing
// document), to give the hashes the server gives (src/meldpunt/signals/pdq.py, the `pdqhash` package):
//   1. luma Y = 0.299 R + 0.587 G + 0.114 B per pixel (transparent pixels over black, as the server);
//   2. two passes of a Jarosz box filter along rows then columns, window ceil(size / 128);
//   3. decimation to 64x64 by taking the pixel at the centre of each of the 64x64 cells;
//   4. quality: the sum of the quantised neighbour gradients of the 64x64 image / 90, at most 100;
//   5. the 16x16 lowest non-DC coefficients of the 2-D DCT-II of the 64x64 image;
//   6. a bit per coefficient: 1 when it is above the median of the 256 (the 128th smallest).
// Hex is written as Meta writes it: 16 words of 16 bits, word 15 first, word i holding row i of the
// DCT with column j in bit j. Float32Array buffers keep the reference's single-precision storage, so
// results differ from it by rounding only (a few bits at most, Meta's rule allows 10 for quality >= 80).

const DIM = 64;
const PASSES = 2;
/** Smallest side PDQ hashes; smaller images get the zero hash and quality 0, as the reference. */
export const MIN_SIDE = 5;

/** Window of the box filter for a side of `size` pixels reduced to 64: ceil(size / 128). */
export function windowSize(size) {
  return Math.floor((size + 2 * DIM - 1) / (2 * DIM));
}

// 16x64 DCT matrix, rows 1..16 of the DCT-II (row 0, the DC term, is left out).
const DCT = (() => {
  const m = new Float32Array(16 * DIM);
  const scale = Math.sqrt(2 / DIM);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < DIM; j++) {
      m[i * DIM + j] = scale * Math.cos((Math.PI / 2 / DIM) * (i + 1) * (2 * j + 1));
    }
  }
  return m;
})();

/** Luma of RGBA bytes (`ImageData.data`), transparent pixels composited on black. */
export function lumaFromRGBA(rgba, width, height) {
  const n = width * height;
  const out = new Float32Array(n);
  for (let p = 0, q = 0; p < n; p++, q += 4) {
    const a = rgba[q + 3];
    let y = 0.299 * rgba[q] + 0.587 * rgba[q + 1] + 0.114 * rgba[q + 2];
    if (a !== 255) y = (y * a) / 255;
    out[p] = y;
  }
  return out;
}

// One box filter pass along a line of `length` values `stride` apart, from `src` into `dst`: the
// mean of a window centred on each value, the window shortened at both ends of the line.
function box1D(src, dst, start, length, stride, window) {
  const half = Math.floor((window + 2) / 2);
  const warm = half - 1;
  const grow = window - half + 1;
  const full = length - window;
  const shrink = half - 1;
  let left = start;
  let right = start;
  let out = start;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < warm; i++) {
    sum += src[right];
    count++;
    right += stride;
  }
  for (let i = 0; i < grow; i++) {
    sum += src[right];
    count++;
    dst[out] = sum / count;
    right += stride;
    out += stride;
  }
  for (let i = 0; i < full; i++) {
    sum += src[right] - src[left];
    dst[out] = sum / count;
    left += stride;
    right += stride;
    out += stride;
  }
  for (let i = 0; i < shrink; i++) {
    sum -= src[left];
    count--;
    dst[out] = sum / count;
    left += stride;
    out += stride;
  }
}

// The same box filter down every column at once: the window's sum per column is kept in `sums`, and
// rows are read whole (the strided walk of one column at a time misses the cache on big pictures).
// Per column, values are added and taken away in the same order as box1D, so results are equal.
function boxColumns(src, dst, rows, cols, window, sums) {
  const half = Math.floor((window + 2) / 2);
  sums.fill(0);
  let count = 0;
  let out = 0;
  const emit = () => {
    const o = out * cols;
    for (let c = 0; c < cols; c++) dst[o + c] = sums[c] / count;
    out++;
  };
  for (let r = 0; r < rows; r++) {
    const a = r * cols;
    for (let c = 0; c < cols; c++) sums[c] += src[a + c];
    if (r >= window) {
      const b = (r - window) * cols;
      for (let c = 0; c < cols; c++) sums[c] -= src[b + c];
    } else {
      count++;
    }
    if (r >= half - 1) emit();
  }
  for (let r = rows - window; out < rows; r++) {
    const b = r * cols;
    for (let c = 0; c < cols; c++) sums[c] -= src[b + c];
    count--;
    emit();
  }
}

/**
 * Blur `luma` (rows x cols, row-major, changed in place) with the Jarosz filter; `onLine(done, total)`
 * is told after each row or column so a caller can report progress.
 */
export function jaroszFilter(luma, rows, cols, onLine) {
  const temp = new Float32Array(rows * cols);
  const sums = new Float64Array(cols);
  const alongRows = windowSize(cols);
  const alongCols = windowSize(rows);
  const total = PASSES * (rows + cols);
  let done = 0;
  for (let pass = 0; pass < PASSES; pass++) {
    for (let r = 0; r < rows; r++) {
      box1D(luma, temp, r * cols, cols, 1, alongRows);
      if (onLine && (++done & 255) === 0) onLine(done, total);
    }
    boxColumns(temp, luma, rows, cols, alongCols, sums);
    done += cols;
    if (onLine) onLine(done, total);
  }
}

/** The 64x64 image: the pixel at the centre of each cell of a 64x64 grid. */
export function decimate(luma, rows, cols) {
  const out = new Float32Array(DIM * DIM);
  for (let i = 0; i < DIM; i++) {
    const r = Math.floor(((i + 0.5) * rows) / DIM);
    for (let j = 0; j < DIM; j++) {
      const c = Math.floor(((j + 0.5) * cols) / DIM);
      out[i * DIM + j] = luma[r * cols + c];
    }
  }
  return out;
}

/** PDQ's quality, 0-100: how much significant detail the 64x64 image has. */
export function quality(small) {
  let sum = 0;
  for (let i = 0; i < DIM - 1; i++) {
    for (let j = 0; j < DIM; j++) {
      sum += Math.abs(Math.trunc(((small[i * DIM + j] - small[(i + 1) * DIM + j]) * 100) / 255));
    }
  }
  for (let i = 0; i < DIM; i++) {
    for (let j = 0; j < DIM - 1; j++) {
      sum += Math.abs(Math.trunc(((small[i * DIM + j] - small[i * DIM + j + 1]) * 100) / 255));
    }
  }
  return Math.min(100, Math.floor(sum / 90));
}

/** The 16x16 low-frequency DCT coefficients of the 64x64 image: D A D^T. */
export function dct16(small) {
  const t = new Float32Array(16 * DIM);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < DIM; j++) {
      let s = 0;
      for (let k = 0; k < DIM; k++) s += DCT[i * DIM + k] * small[k * DIM + j];
      t[i * DIM + j] = s;
    }
  }
  const b = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let k = 0; k < DIM; k++) s += t[i * DIM + k] * DCT[j * DIM + k];
      b[i * 16 + j] = s;
    }
  }
  return b;
}

/** 256 coefficients -> 64 hex digits, Meta's layout (see the top of this file). */
export function bitsToHex(coefficients) {
  const sorted = Float32Array.from(coefficients).sort();
  const median = sorted[127];
  let hex = "";
  for (let word = 15; word >= 0; word--) {
    let v = 0;
    for (let j = 0; j < 16; j++) {
      if (coefficients[word * 16 + j] > median) v |= 1 << j;
    }
    hex += v.toString(16).padStart(4, "0");
  }
  return hex;
}

/** {hash, quality} of a luma buffer (rows x cols; it is blurred in place). */
export function pdqFromLuma(luma, rows, cols, onLine) {
  if (rows < MIN_SIDE || cols < MIN_SIDE) return { hash: "0".repeat(64), quality: 0 };
  let small;
  if (rows === DIM && cols === DIM) {
    small = luma;
  } else {
    jaroszFilter(luma, rows, cols, onLine);
    small = decimate(luma, rows, cols);
  }
  return { hash: bitsToHex(dct16(small)), quality: quality(small) };
}

/** {hash, quality} of RGBA bytes, e.g. `ImageData.data`. */
export function pdqFromRGBA(rgba, width, height, onLine) {
  return pdqFromLuma(lumaFromRGBA(rgba, width, height), height, width, onLine);
}

/** Bits that differ between two PDQ hex hashes. */
export function distance(a, b) {
  let d = 0;
  for (let i = 0; i < 64; i += 8) {
    let x = (parseInt(a.slice(i, i + 8), 16) ^ parseInt(b.slice(i, i + 8), 16)) >>> 0;
    while (x) {
      x &= x - 1;
      d++;
    }
  }
  return d;
}
