/**
 * MurmurHash3 x86 32-bit of a string's UTF-16LE bytes: the same number as murmur3_32 of
 * `Buffer.from(s, 'utf16le')` with that seed, so other languages can reproduce it. Hand-written
 * (it is a few lines) to keep the SDK free of dependencies; not cryptographic.
 */
export function murmur3(s: string, seed = 0): number {
  let h = seed | 0;
  const len = s.length;
  const even = len & ~1;
  let i = 0;
  for (; i < even; i += 2) {
    let k = (s.charCodeAt(i) & 0xffff) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
