// clave-sandbox prelude chunk `text`: TextEncoder, TextDecoder, atob, btoa.
// Compiled to bytecode once per process; loaded into a context only when the program
// first touches one of its globals (see the lazy globals in prelude.js). Everything it
// needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const { H, tag, toU8, wellFormed, utf8Encode, domError } = core;

  // ---------------------------------------------------------------- TextEncoder / TextDecoder
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') {
      return utf8Encode(String(input));
    }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) throw new TypeError('TextEncoder.encodeInto: destination must be a Uint8Array');
      const s = wellFormed(String(source));
      let read = 0;
      let written = 0;
      const cap = destination.length;
      for (const ch of s) {
        const cp = ch.codePointAt(0);
        const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (written + n > cap) break;
        if (n === 1) destination[written] = cp;
        else if (n === 2) {
          destination[written] = 0xc0 | (cp >> 6);
          destination[written + 1] = 0x80 | (cp & 63);
        } else if (n === 3) {
          destination[written] = 0xe0 | (cp >> 12);
          destination[written + 1] = 0x80 | ((cp >> 6) & 63);
          destination[written + 2] = 0x80 | (cp & 63);
        } else {
          destination[written] = 0xf0 | (cp >> 18);
          destination[written + 1] = 0x80 | ((cp >> 12) & 63);
          destination[written + 2] = 0x80 | ((cp >> 6) & 63);
          destination[written + 3] = 0x80 | (cp & 63);
        }
        written += n;
        read += ch.length;
      }
      return { read, written };
    }
  }
  tag(TextEncoder, 'TextEncoder');

  const UTF8_LABELS = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];
  class TextDecoder {
    #fatal;
    #ignoreBOM;
    #pending = null;
    #bomSeen = false;
    constructor(label = 'utf-8', options = {}) {
      const l = String(label).trim().toLowerCase();
      if (!UTF8_LABELS.includes(l)) throw new RangeError(`The "${label}" encoding is not supported`);
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() { return 'utf-8'; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options = {}) {
      const stream = Boolean(options && options.stream);
      let bytes = input === undefined ? new Uint8Array(0) : toU8(input, 'TextDecoder.decode');
      if (this.#pending) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = null;
      }
      if (stream) {
        // keep an incomplete trailing sequence for the next call
        let i = bytes.length - 1;
        let back = 0;
        while (i >= 0 && back < 3 && (bytes[i] & 0xc0) === 0x80) { i--; back++; }
        if (i >= 0) {
          const b = bytes[i];
          const need = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
          if (need > 1 && bytes.length - i < need) {
            this.#pending = bytes.slice(i);
            bytes = bytes.subarray(0, i);
          }
        }
      }
      const skipBOM = !this.#ignoreBOM && !this.#bomSeen;
      const out = H.utf8Decode(bytes, this.#fatal, !skipBOM);
      if (bytes.length > 0) this.#bomSeen = stream;
      if (!stream) { this.#bomSeen = false; this.#pending = null; }
      return out;
    }
  }
  tag(TextDecoder, 'TextDecoder');

  // ---------------------------------------------------------------- atob / btoa
  function btoa(data) {
    if (arguments.length < 1) throw new TypeError('btoa requires 1 argument');
    const s = String(data);
    const r = H.btoa(s, s.length);
    if (r === null) throw domError('Invalid character', 'InvalidCharacterError');
    return r;
  }
  function atob(data) {
    if (arguments.length < 1) throw new TypeError('atob requires 1 argument');
    const s = String(data);
    const r = H.atob(s, s.length);
    if (r === null) throw domError('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
    return r;
  }

  return { TextEncoder, TextDecoder, atob, btoa };
}
