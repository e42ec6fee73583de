/**
 * Length caps the providers enforce (Slack's 40,000-character text, a
 * section block's 3,000, PagerDuty's 1,024-character summary, an SMS's 1,600):
 * over them the provider refuses the whole message, so we cut instead, and
 * say so at the end of what was cut.
 */
export const TRUNCATION_MARK = '…';

/** A cut `<url|label>` further back than this is left as it is rather than dropping that much text. */
const MAX_LINK_LENGTH = 1000;

/**
 * `text` cut to at most `max` UTF-16 code units, ending with `…` when cut.
 * Never splits a surrogate pair, an HTML entity (`&amp;`) or a Slack
 * `<link|label>`, so an escaped text stays escaped.
 */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= TRUNCATION_MARK.length) return TRUNCATION_MARK.slice(0, Math.max(0, max));
  return text.slice(0, safeCut(text, max - TRUNCATION_MARK.length)) + TRUNCATION_MARK;
}

/**
 * Where to cut `text` to keep at most `end` code units (`end` itself when it is safe): never inside a
 * surrogate pair, an HTML entity (`&amp;`) or a Slack `<link|label>`.
 */
export function safeCut(text: string, end: number): number {
  if (end >= text.length) return text.length;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  let kept = text.slice(0, end);
  const amp = kept.lastIndexOf('&');
  if (amp !== -1 && amp >= kept.length - 8 && !kept.slice(amp).includes(';')) kept = kept.slice(0, amp);
  const open = kept.lastIndexOf('<');
  if (open !== -1 && open >= kept.length - MAX_LINK_LENGTH && !kept.slice(open).includes('>'))
    kept = kept.slice(0, open);
  return kept.length;
}
