// clave-sandbox prelude chunk `crypto`: crypto.getRandomValues, randomUUID, subtle.digest.
// Compiled to bytecode once per process; loaded into a context only when the program
// first touches one of its globals (see the lazy globals in prelude.js). Everything it
// needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const { H, toU8, domError, INTEGER_ARRAYS, PromiseResolve, PromiseReject } = core;

  // ---------------------------------------------------------------- crypto
  const DIGESTS = { 'SHA-256': 'SHA-256', 'SHA-384': 'SHA-384', 'SHA-512': 'SHA-512' };
  const subtle = {
    digest(algorithm, data) {
      try {
        const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
        const alg = DIGESTS[String(name).toUpperCase()];
        if (!alg) return PromiseReject(domError('Unrecognized algorithm name', 'NotSupportedError'));
        const view = toU8(data, 'crypto.subtle.digest');
        return PromiseResolve(H.digest(alg, view));
      } catch (e) {
        return PromiseReject(e);
      }
    },
  };
  const crypto = {
    getRandomValues(array) {
      if (!INTEGER_ARRAYS.some((C) => array instanceof C)) {
        throw domError("The data argument must be an integer-type TypedArray", 'TypeMismatchError');
      }
      if (array.byteLength > 65536) {
        throw domError(`The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, 'QuotaExceededError');
      }
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(new Uint8Array(H.random(array.byteLength)));
      return array;
    },
    randomUUID() {
      const b = new Uint8Array(H.random(16));
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      let h = '';
      for (let i = 0; i < 16; i++) {
        h += (b[i] < 16 ? '0' : '') + b[i].toString(16);
        if (i === 3 || i === 5 || i === 7 || i === 9) h += '-';
      }
      return h;
    },
    subtle,
  };

  return { crypto };
}
