// Text processing inside the TEE: word statistics and a SHA-256 fingerprint of a document
// (crypto.subtle.digest), so a confidential document can be indexed without revealing it.
//
//   clave deploy examples/text-digest.js --name text-digest
//   clave invoke text-digest --data 'The quick brown fox jumps over the lazy dog'
function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export default {
  async fetch(request) {
    const text = await request.text();
    const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
    const counts = new Map();
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
    const top = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 5)
      .map(([word, count]) => ({ word, count }));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Response.json({
      sha256: hex(digest),
      characters: text.length,
      words: words.length,
      unique_words: counts.size,
      top_words: top,
    });
  },
};
