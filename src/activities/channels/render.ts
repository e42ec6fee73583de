import { escapeHtml } from '../../markup.ts';
import { escapeSlack } from './slack.ts';
import type { SlackBlock } from './slack.ts';

/**
 * The domain words every message once, as the procedures' templates do: plain
 * text with Markdown's `**bold**`. Each medium renders that text its own way,
 * and because alert labels and engineers' words inside it are untrusted, the
 * whole text is escaped for the medium first (so `<!channel>` or a disguised
 * `<http://evil|link>` arrives as literal text), then the template's own
 * emphasis is put back in the medium's syntax.
 */

const BOLD = /\*\*([^*\n]+?)\*\*/g;

/** Slack mrkdwn: `&`, `<`, `>` escaped; `**bold**` becomes `*bold*` (Slack shows Markdown's asterisks). */
export function toSlackMrkdwn(text: string): string {
  return escapeSlack(text).replace(BOLD, '*$1*');
}

/** The action ids and value Slack buttons carry; `POST /slack/interactions` reads exactly these. */
export const SLACK_ACTIONS = [
  { actionId: 'acknowledge', label: 'Acknowledge', style: 'primary' },
  { actionId: 'post_update', label: 'Post update' },
  { actionId: 'resolve', label: 'Resolve', style: 'danger' },
] as const;

/**
 * A Block Kit message: the text in sections (a blank line starts a new one;
 * each within Slack's 3,000 characters), and the incident's buttons when it is
 * still open. `text` is the notification fallback.
 */
export function slackMessage(
  text: string,
  incidentId: string,
  actions: boolean,
): { text: string; blocks: SlackBlock[] } {
  const mrkdwn = toSlackMrkdwn(text);
  const blocks: SlackBlock[] = [];
  for (const paragraph of mrkdwn.split(/\n{2,}/)) {
    for (let i = 0; i < paragraph.length; i += 2_900) {
      const chunk = paragraph.slice(i, i + 2_900).trim();
      if (chunk) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: chunk } });
    }
  }
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
  // Slack allows 50 blocks; a longer text keeps its fallback and loses only trailing sections.
  return {
    text: mrkdwn,
    blocks: blocks.length > 50 ? [...blocks.slice(0, 49), blocks.at(-1) as SlackBlock] : blocks,
  };
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
