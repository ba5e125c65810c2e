export default {
  async fetch() {
    const enc = new TextEncoder();
    const bytes = enc.encode('héllo ✓ 😀');
    const dec = new TextDecoder();
    const into = new Uint8Array(5);
    const r = enc.encodeInto('a😀b', into);
    const errs = [];
    try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff, 0x41])); } catch (e) { errs.push(e.name); }
    try { atob('***'); } catch (e) { errs.push(e.name); }
    try { btoa('✓'); } catch (e) { errs.push(e.name); }
    const streamDec = new TextDecoder();
    const s1 = streamDec.decode(new Uint8Array([0xe2, 0x9c]), { stream: true });
    const s2 = streamDec.decode(new Uint8Array([0x93, 0x21]));
    return Response.json({
      bytes: Array.from(bytes), len: bytes.length, back: dec.decode(bytes),
      lossy: dec.decode(new Uint8Array([0x61, 0xff, 0x62])),
      bom: dec.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])),
      bomKept: new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).length,
      into: [r.read, r.written, Array.from(into)],
      b64: btoa('hello\u00ff\u0000'), unb64: atob(' aGVs bG8= '), nopad: atob('aGk'),
      surrogate: Array.from(enc.encode('\ud800x')),
      stream: [s1, s2], encoding: dec.encoding, errs,
    });
  },
};
