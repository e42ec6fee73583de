/**
 * The local development webhook token (`local-dev-webhook-token`) is a laptop's convenience: accepted only when
 * ALERTMANAGER_WEBHOOK_TOKEN is unset and the API listens on loopback, and said so at start-up. An API that
 * listens beyond loopback without a token refuses to start, naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { DEV_WEBHOOK_TOKEN, isLoopbackHost, startApi, webhookToken } from '../../src/starter/api/server.ts';
import { freePort, isPortFree } from '../../scripts/lib/ports.ts';
import { loadDefaultPolicy } from '../support/policy.ts';

const policy = loadDefaultPolicy();

function tokenFor(host: string, env: NodeJS.ProcessEnv = {}) {
  const lines: string[] = [];
  const token = webhookToken(policy, env, host, (line) => lines.push(line));
  return { token, lines };
}

describe('the local development webhook token', () => {
  it.each(['127.0.0.1', '127.0.1.1', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])(
    'is accepted on loopback (%s) when ALERTMANAGER_WEBHOOK_TOKEN is unset, and the start-up says so',
    (host) => {
      const { token, lines } = tokenFor(host);
      expect(token).toBe(DEV_WEBHOOK_TOKEN);
      expect(lines).toEqual([
        `ALERTMANAGER_WEBHOOK_TOKEN is not set: the webhook accepts the local development token "${DEV_WEBHOOK_TOKEN}" ` +
          `(only because the API listens on loopback, ${host}; set ALERTMANAGER_WEBHOOK_TOKEN anywhere else)`,
      ]);
    },
  );

  it.each(['0.0.0.0', '::', '192.168.1.20', '10.0.0.7', 'fe80::1', 'incidents.example.com', ''])(
    'is refused, and the API does not start, on %j: the error names ALERTMANAGER_WEBHOOK_TOKEN',
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
      expect(() => tokenFor(host)).toThrow(
        `ALERTMANAGER_WEBHOOK_TOKEN is not set and the API listens on ${host}, beyond loopback: set ALERTMANAGER_WEBHOOK_TOKEN`,
      );
    },
  );

  it('is never used when ALERTMANAGER_WEBHOOK_TOKEN is set, nor in production', () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const { token, lines } = tokenFor(host, { ALERTMANAGER_WEBHOOK_TOKEN: 'the-real-one' });
      expect(token).toBe('the-real-one');
      expect(lines).toEqual([]);
    }
    expect(() => tokenFor('127.0.0.1', { NODE_ENV: 'production' })).toThrow(
      'environment variable ALERTMANAGER_WEBHOOK_TOKEN is not set',
    );
  });

  it('HOST=0.0.0.0 without ALERTMANAGER_WEBHOOK_TOKEN: startApi refuses before listening', async () => {
    const port = await freePort();
    const env = { HOST: '0.0.0.0', PORT: String(port), TEMPORAL_ADDRESS: '127.0.0.1:1' };
    const outcome = await startApi(loadSettings(env), env).then(
      async (started) => {
        await started.app.close();
        return 'listening';
      },
      (err: unknown) => err,
    );
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(
      /^ALERTMANAGER_WEBHOOK_TOKEN is not set and the API listens on 0\.0\.0\.0/,
    );
    expect(await isPortFree(port)).toBe(true);
  });
});
