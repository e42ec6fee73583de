/**
 * Escaping for what is written as markup (the status page, the outbox page,
 * the Atom feed, TwiML, e-mail HTML, Slack mrkdwn). Every text from outside
 * (titles, updates, message texts) goes through these.
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

/**
 * Text for Slack mrkdwn: `&`, `<` and `>` are Slack's control characters (`<!channel>` pings everyone,
 * `<http://x|label>` is a link whose label hides its target, `<@U…>` mentions someone), and its only ones.
 * Anything from outside (alert labels, titles, engineers' words, a refusal that quotes them) goes through
 * this before it is sent as mrkdwn.
 */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
