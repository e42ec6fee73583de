import { escapeHtml, escapeSlack } from '../../markup.ts';
import { SLACK_BLOCKS_MAX, SLACK_TEXT_MAX, sectionBlock } from './slack.ts';
import type { SlackBlock } from './slack.ts';
import { TRUNCATION_MARK, safeCut } from './text.ts';

/**
 * The domain words every message once, as the procedures' templates do: plain
 * text with Markdown's `**bold**`. Each medium renders that text its own way,
 * and because alert labels and engineers' words inside it are untrusted, the
 * whole text is escaped for the medium first (so `<!channel>` or a disguised
 * `<http://evil|link>` arrives as literal text), then the template's own
 * emphasis is put back in the medium's syntax.
 */

const BOLD = /\*\*([^*\n]+?)\*\*/g;

/**
 * An http(s) URL in escaped mrkdwn: up to whitespace, `|` (which would start a link's label), `*`, a
 * backquote, or an escaped `<` or `>`. One right after an escaped `<` was written as Slack markup (a link
 * in disguise, `<http://evil|click>`): it stays text, as written.
 */
const ESCAPED_URL = /(?<!&lt;)\bhttps?:\/\/(?:(?!&lt;|&gt;)[^\s|*`])+/g;
/** Punctuation that ends a sentence rather than the URL before it. */
const TRAILING_PUNCTUATION = /[.,;:!?)\]'"]+$/;

/**
 * Slack mrkdwn: `&`, `<`, `>` escaped, so nothing in the text is a mention or a link of its own making;
 * `**bold**` becomes `*bold*` (Slack shows Markdown's asterisks); each http(s) URL becomes an explicit
 * link that shows its own target (`<https://…>`, never a label), since messages are sent `verbatim` (Slack
 * links nothing by itself, so that plain `@channel` in an alert is not a mention either).
 */
export function toSlackMrkdwn(text: string): string {
  return escapeSlack(text)
    .replace(ESCAPED_URL, (url) => {
      const trailing = TRAILING_PUNCTUATION.exec(url)?.[0] ?? '';
      const target = url.slice(0, url.length - trailing.length);
      return /^https?:\/\/./.test(target) ? `<${target}>${trailing}` : url;
    })
    .replace(BOLD, '*$1*');
}

/** What a section block holds: under Slack's 3,000 characters. */
const SECTION_CHUNK = 2_900;

/** A paragraph in pieces of at most `max`, cut at a line or word break when there is one near. */
function pieces(paragraph: string, max: number): string[] {
  const out: string[] = [];
  let rest = paragraph;
  while (rest.length > max) {
    const window = rest.slice(0, max);
    const at = Math.max(window.lastIndexOf('\n'), window.lastIndexOf(' '));
    const cut = safeCut(rest, at > max / 2 ? at : max) || max;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  out.push(rest);
  return out.map((p) => p.trim()).filter((p) => p !== '');
}

/** What ends a message Slack's limits cut short: how much is missing and where to read all of it. */
function cutNotice(omitted: number, incidentId: string): string {
  return `${TRUNCATION_MARK} _${omitted} more characters cut (Slack's limits): the whole record is \`incident show ${incidentId}\`_`;
}

/** The action ids and value Slack buttons carry; `POST /slack/interactions` reads exactly these. */
export const SLACK_ACTIONS = [
  { actionId: 'acknowledge', label: 'Acknowledge', style: 'primary' },
  { actionId: 'post_update', label: 'Post update' },
  { actionId: 'resolve', label: 'Resolve', style: 'danger' },
] as const;

/**
 * A Block Kit message: the text in `verbatim` sections (a blank line starts a new one; each within Slack's
 * 3,000 characters), and the incident's buttons when it is still open. `text` is the notification fallback.
 * Slack refuses a message over its limits (`msg_too_long`, `invalid_blocks`), which would drop the report:
 * what does not fit (40,000 characters, 50 blocks) is cut, and a last section says so and where the whole
 * record is.
 */
export function slackMessage(
  text: string,
  incidentId: string,
  actions: boolean,
): { text: string; blocks: SlackBlock[] } {
  const mrkdwn = toSlackMrkdwn(text);
  const notice = cutNotice(mrkdwn.length, incidentId);
  // Room for the buttons and the notice; the sections' texts together stay within the text limit too.
  const maxSections = SLACK_BLOCKS_MAX - (actions ? 1 : 0) - 1;
  const budget = SLACK_TEXT_MAX - notice.length;
  const sections: string[] = [];
  let used = 0;
  let omitted = 0;
  for (const paragraph of mrkdwn.split(/\n{2,}/)) {
    for (const piece of pieces(paragraph, SECTION_CHUNK)) {
      if (omitted === 0 && sections.length < maxSections && used + piece.length <= budget) {
        sections.push(piece);
        used += piece.length;
      } else {
        omitted += piece.length;
      }
    }
  }
  const blocks: SlackBlock[] = sections.map((section) => sectionBlock(section));
  if (omitted > 0) blocks.push(sectionBlock(cutNotice(omitted, incidentId)));
  if (actions) {
    blocks.push({
      type: 'actions',
      block_id: `incident-actions`,
      elements: SLACK_ACTIONS.map((a) => ({
        type: 'button',
        action_id: a.actionId,
        value: incidentId,
        text: { type: 'plain_text', text: a.label },
        ...('style' in a ? { style: a.style } : {}),
      })),
    });
  }
  let fallback = mrkdwn;
  if (mrkdwn.length > SLACK_TEXT_MAX) {
    // `notice` counts every character as cut: the real notice is never longer.
    const kept = safeCut(mrkdwn, SLACK_TEXT_MAX - notice.length - 1);
    fallback = `${mrkdwn.slice(0, kept)}\n${cutNotice(mrkdwn.length - kept, incidentId)}`;
  }
  return { text: fallback, blocks };
}

/** E-mail HTML: escaped, `**bold**` as `<strong>`, URLs as links, line breaks kept. */
export function toEmailHtml(text: string): string {
  const escaped = escapeHtml(text);
  const body = escaped
    .replace(BOLD, '<strong>$1</strong>')
    .replace(/\bhttps?:\/\/[^\s<]+/g, (url) => `<a href="${url}">${url}</a>`)
    .replace(/\n/g, '<br>\n');
  return `<!doctype html><html><body style="font-family: sans-serif">${body}</body></html>`;
}

/** Plain text for SMS, voice and the pager's summary: Markdown's asterisks dropped. */
export function toPlainText(text: string): string {
  return text.replace(BOLD, '$1');
}

/** The first meaningful line, for a pager summary or a subject. */
export function firstLine(text: string): string {
  return (
    toPlainText(text)
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}
