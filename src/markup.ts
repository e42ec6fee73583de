/**
 * Escaping for what is written as markup (the status page, the outbox page,
 * the Atom feed, TwiML, e-mail HTML). Every text from outside (titles,
 * updates, message texts) goes through these.
 */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/**
 * Text for an XML text node or attribute: escaped, and without the characters
 * XML 1.0 cannot hold at all (controls other than tab, newline and return;
 * lone surrogates; U+FFFE/U+FFFF), which become U+FFFD.
 */
export function escapeXml(text: string): string {
  let clean = '';
  for (const c of text.toWellFormed()) {
    const code = c.charCodeAt(0);
    const allowed =
      (code >= 0x20 && code !== 0xfffe && code !== 0xffff) || c === '\t' || c === '\n' || c === '\r';
    clean += allowed ? c : '\ufffd';
  }
  return clean
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
