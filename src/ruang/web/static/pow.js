// Ruang: the listener's proof-of-work for join (docs/GUARD.md, "Proof-of-work").
//
// When the server is under pressure, POST …/join answers 428 with
// {"pow": {"challenge", "difficulty", "algorithm": "sha256", "expires_in_s"}}: find a decimal
// nonce such that SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits, and join
// again with {"pow": {"challenge", "nonce"}}. window.solvePow(pow) -> Promise<nonce>.
//
// This one file is both the page's script and the Web Worker's: the search runs in one worker
// per core (up to 4), each on its own range of nonces, so the page stays responsive. SHA-256 is
// written out here because Web Crypto's digest() is asynchronous per hash (a promise per try)
// and far too slow for the ~65,000 tries of 16 bits.
"use strict";

(function (scope) {
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const DIGITS = 13;          // every nonce a worker tries has 13 digits: the message length is fixed
  const CHUNK = 50000;        // tries between two looks at the worker's inbox / the main thread's clock

  // The SHA-256 compression of one 64-byte block (16 big-endian words in w[0..15]) into h.
  function compress(h, w) {
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15], y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  }

  // A search over the nonces first, first+1, … (decimal, 13 digits) of one challenge.
  function Search(challenge, difficulty, first) {
    const prefix = challenge + ":";
    const len = prefix.length + DIGITS;
    const blocks = Math.ceil((len + 9) / 64);
    const buf = new Uint8Array(blocks * 64);
    for (let i = 0; i < prefix.length; i++) buf[i] = prefix.charCodeAt(i) & 0xff;
    const digits = String(first).padStart(DIGITS, "0");
    for (let i = 0; i < DIGITS; i++) buf[prefix.length + i] = digits.charCodeAt(i);
    buf[len] = 0x80;
    const bits = len * 8;
    buf[buf.length - 4] = bits >>> 24; buf[buf.length - 3] = bits >>> 16;
    buf[buf.length - 2] = bits >>> 8; buf[buf.length - 1] = bits;
    const words = new Int32Array(blocks * 16);
    const pack = (from, to) => {
      for (let j = from; j <= to; j++) {
        words[j] = (buf[4 * j] << 24) | (buf[4 * j + 1] << 16) | (buf[4 * j + 2] << 8) | buf[4 * j + 3];
      }
    };
    pack(0, words.length - 1);
    const lo = prefix.length, hi = len - 1;            // where the digits are
    const w = new Int32Array(64), h = new Int32Array(8);
    const views = [];
    for (let b = 0; b < blocks; b++) views.push(words.subarray(16 * b, 16 * b + 16));
    const mask = difficulty >= 32 ? 0xffffffff : ~(0xffffffff >>> difficulty);
    let nonce = first;
    // Try `count` nonces; the nonce found (a string), or null.
    this.run = function (count) {
      for (let n = 0; n < count; n++) {
        h.set(H0);
        for (let b = 0; b < blocks; b++) { w.set(views[b]); compress(h, w); }
        if ((h[0] & mask) === 0) return String(nonce).padStart(DIGITS, "0");
        nonce++;
        let i = hi;                                      // the next nonce: +1 in decimal, in place
        while (buf[i] === 57) { buf[i] = 48; i--; }
        if (i < lo) throw new Error("nonce range exhausted");
        buf[i]++;
        pack(i >> 2, hi >> 2);
      }
      return null;
    };
  }

  // ---- In a worker: search the range we are given until told to stop --------------------
  if (typeof WorkerGlobalScope !== "undefined" && scope instanceof WorkerGlobalScope) {
    scope.onmessage = (e) => {
      const { challenge, difficulty, first } = e.data;
      const search = new Search(challenge, difficulty, first);
      const step = () => {
        const nonce = search.run(CHUNK);
        if (nonce !== null) scope.postMessage({ nonce });
        else setTimeout(step, 0);                        // lets a terminate() in between
      };
      step();
    };
    return;
  }

  // ---- On the page -----------------------------------------------------------------------
  const scriptUrl = (document.currentScript && document.currentScript.src) || "/static/pow.js";
  const RANGE = 1e12;                                    // worker i tries (i+1)·10^12, +1, …

  function onMainThread(pow) {
    // No workers (very old browsers, or a CSP without worker-src 'self'): search in slices
    // between which the page can still paint.
    const search = new Search(pow.challenge, pow.difficulty, RANGE);
    return new Promise((resolve) => {
      const step = () => {
        const nonce = search.run(CHUNK / 5);
        if (nonce !== null) resolve(nonce); else setTimeout(step, 0);
      };
      step();
    });
  }

  // Find a nonce for the "pow" object of a 428 answer; resolves to the nonce (a string).
  scope.solvePow = function solvePow(pow) {
    if (!pow || typeof pow.challenge !== "string" || pow.algorithm !== "sha256" ||
        !(pow.difficulty >= 0 && pow.difficulty <= 32)) {
      const t = scope.RuangUI ? scope.RuangUI.t : () => "unknown proof-of-work";
      return Promise.reject(new Error(t("pow.unknown")));
    }
    if (typeof Worker === "undefined") return onMainThread(pow);
    const n = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
    const workers = [];
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (how) => {
        if (settled) return;
        settled = true;
        workers.forEach((w) => w.terminate());
        how();
      };
      for (let i = 0; i < n; i++) {
        let worker;
        try { worker = new Worker(scriptUrl); } catch (err) { break; }
        worker.onmessage = (e) => settle(() => resolve(e.data.nonce));
        worker.onerror = (e) => {
          e.preventDefault();
          settle(() => onMainThread(pow).then(resolve, reject));
        };
        worker.postMessage({ challenge: pow.challenge, difficulty: pow.difficulty, first: (i + 1) * RANGE });
        workers.push(worker);
      }
      if (!workers.length) onMainThread(pow).then(resolve, reject);
    });
  };
})(self);
