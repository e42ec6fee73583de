import { RawValue, defaultPayloadConverter, rawValueTypeInfo } from '@temporalio/common';
import type { SignalDefinition, TypeInfo } from '@temporalio/common';
import { decode } from '@temporalio/common/lib/encoding.js';
import { defineSignal } from '@temporalio/workflow';

/*
 * Signals are what anyone with access to Temporal can send (the web UI's signal dialog, `temporal workflow
 * signal --input-meta …`, another SDK), so their payloads are untrusted. The SDK decodes a signal's
 * arguments before any handler runs, and a payload it cannot decode (JSON that does not parse, an unknown
 * encoding) throws there: the workflow task fails, and fails again at every retry, so one bad signal
 * would stop the incident's escalation for good. Handlers registered through {@link rawSignal} receive
 * the payloads undecoded and decode them here, where a bad one is just a refused argument.
 */

/** Every argument position (however many a sender sent) as a raw payload. */
const RAW_ARGUMENTS: readonly TypeInfo[] = new Proxy([] as TypeInfo[], {
  get(target, key, receiver): unknown {
    return typeof key === 'string' && /^\d+$/.test(key)
      ? rawValueTypeInfo
      : (Reflect.get(target, key, receiver) as unknown);
  },
});

/** An argument that could not be decoded; `reason` says why (never the payload's bytes). */
export class UndecodableArgument {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** The handler-side definition of `definition`: same name, its arguments delivered as raw payloads. */
export function rawSignal(definition: { readonly name: string }): SignalDefinition<[RawValue?]> {
  return defineSignal<[RawValue?]>(definition.name, { typeInfo: { inputTypes: RAW_ARGUMENTS } });
}

/**
 * A signal's argument decoded as the SDK would (the default payload converter, which this worker uses), or
 * an {@link UndecodableArgument}. No argument is `undefined`.
 */
export function decodeArgument(raw: unknown): unknown {
  if (!(raw instanceof RawValue)) return raw;
  try {
    return defaultPayloadConverter.fromPayload(raw.payload);
  } catch (err) {
    const encoding = raw.payload.metadata?.['encoding'];
    const named = encoding ? decode(encoding).slice(0, 40) : 'none';
    const why = err instanceof Error ? err.message.slice(0, 120) : 'undecodable';
    return new UndecodableArgument(
      `the argument could not be decoded (encoding ${JSON.stringify(named)}): ${why}`,
    );
  }
}
