// MD5 and SHA-256 of a file's bytes fed in chunks, so that a large video is never held whole.
//
// MD5 (RFC 1321) is written here because WebCrypto has none; hotline hash lists (ICCAM, VICS,
// NCMEC) still exchange it. SHA-256 goes through WebCrypto (`crypto.subtle.digest`), which takes
// the whole buffer at once, for files up to `WEBCRYPTO_MAX` bytes; above that the streaming
// SHA-256 below (FIPS 180-4) is used instead, so memory stays bounded by the chunk size. Both are
// checked against Python's hashlib in tests/test_survivor_pdqjs.py.

/** Files up to this size get their SHA-256 from WebCrypto (read whole); larger ones are streamed. */
export const WEBCRYPTO_MAX = 64 * 1024 * 1024;

function hex32LE(words) {
  let s = "";
  for (const w of words) {
    for (let b = 0; b < 4; b++) s += ((w >>> (8 * b)) & 0xff).toString(16).padStart(2, "0");
  }
  return s;
}

function hex32BE(words) {
  let s = "";
  for (const w of words) s += (w >>> 0).toString(16).padStart(8, "0");
  return s;
}

// Shared buffering of 64-byte blocks for both digests.
class BlockHasher {
  constructor() {
    this.block = new Uint8Array(64);
    this.filled = 0;
    this.length = 0; // bytes seen
  }

  update(bytes) {
    this.length += bytes.length;
    let i = 0;
    if (this.filled > 0) {
      const take = Math.min(64 - this.filled, bytes.length);
      this.block.set(bytes.subarray(0, take), this.filled);
      this.filled += take;
      i = take;
      if (this.filled < 64) return this;
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; i + 64 <= bytes.length; i += 64) this.compress(bytes, i);
    if (i < bytes.length) {
      this.block.set(bytes.subarray(i), 0);
      this.filled = bytes.length - i;
    }
    return this;
  }

  // The padding: 0x80, zeros, the bit length in 8 bytes (little- or big-endian).
  pad(littleEndian) {
    const bits = this.length * 8;
    const tail = new Uint8Array(this.filled < 56 ? 64 : 128);
    tail.set(this.block.subarray(0, this.filled));
    tail[this.filled] = 0x80;
    const view = new DataView(tail.buffer);
    const lo = bits >>> 0;
    const hi = Math.floor(bits / 0x100000000) >>> 0;
    if (littleEndian) {
      view.setUint32(tail.length - 8, lo, true);
      view.setUint32(tail.length - 4, hi, true);
    } else {
      view.setUint32(tail.length - 8, hi, false);
      view.setUint32(tail.length - 4, lo, false);
    }
    for (let i = 0; i < tail.length; i += 64) this.compress(tail, i);
  }
}

const MD5_S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const MD5_K = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000) | 0);

export class MD5 extends BlockHasher {
  constructor() {
    super();
    this.h = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]); // int32: see SHA256
    this.m = new Int32Array(16);
  }

  compress(bytes, at) {
    const m = this.m;
    for (let i = 0; i < 16; i++) {
      const p = at + 4 * i;
      m[i] = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
    }
    const h = this.h;
    let a = h[0];
    let b = h[1];
    let c = h[2];
    let d = h[3];
    for (let i = 0; i < 64; i++) {
      let f;
      let g;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const s = MD5_S[(i >> 4) * 4 + (i & 3)];
      const x = (a + f + MD5_K[i] + m[g]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((x << s) | (x >>> (32 - s)))) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
  }

  hex() {
    this.pad(true);
    return hex32LE(this.h);
  }
}

const SHA_K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Streaming SHA-256, for files too large to hand WebCrypto whole. */
export class SHA256 extends BlockHasher {
  constructor() {
    super();
    // Int32Array, not Uint32Array: V8 keeps int32 values in registers, while uint32 ones above
    // 2^31 become doubles (bench/survivor_video.py measured the streamed SHA-256 about 4x slower so)
    this.h = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.w = new Int32Array(64);
  }

  compress(bytes, at) {
    const w = this.w;
    for (let i = 0; i < 16; i++) {
      const p = at + 4 * i;
      w[i] = (bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    const H = this.h;
    let a = H[0];
    let b = H[1];
    let c = H[2];
    let d = H[3];
    let e = H[4];
    let f = H[5];
    let g = H[6];
    let h = H[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + SHA_K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    H[0] = (H[0] + a) | 0;
    H[1] = (H[1] + b) | 0;
    H[2] = (H[2] + c) | 0;
    H[3] = (H[3] + d) | 0;
    H[4] = (H[4] + e) | 0;
    H[5] = (H[5] + f) | 0;
    H[6] = (H[6] + g) | 0;
    H[7] = (H[7] + h) | 0;
  }

  hex() {
    this.pad(false);
    return hex32BE(this.h);
  }
}

/** Hex of WebCrypto's SHA-256 of a whole buffer. */
export async function webcryptoSha256(buffer) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
