/**
 * A test consumer of change data: a durable queue bound to the exchange, every message kept
 * with its properties. It declares the exchange exactly as the service does (the arguments
 * must match, or the broker closes the channel), as docs/change-data.md tells consumers to.
 */
import { type Channel, type ChannelModel, connect, type ConsumeMessage } from 'amqplib';

export interface Received {
  messageId: string;
  routingKey: string;
  body: Record<string, unknown>;
  /** The body as sent. */
  raw: string;
  persistent: boolean;
  contentType: string | undefined;
  type: string | undefined;
  headers: Record<string, unknown>;
}

export interface TestConsumer {
  readonly received: Received[];
  /** Distinct message ids in arrival order: what a consumer that deduplicates keeps. */
  deduplicated(): Received[];
  /** Resolves once `count` distinct messages arrived (or throws after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  /** Connects again (after the broker restarted): the durable queue kept what arrived. */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export async function declareExchange(channel: Channel, exchange: string): Promise<void> {
  const unrouted = `${exchange}.unrouted`;
  await channel.assertExchange(unrouted, 'fanout', { durable: true });
  await channel.assertQueue(unrouted, { durable: true });
  await channel.bindQueue(unrouted, unrouted, '');
  await channel.assertExchange(exchange, 'topic', { durable: true, alternateExchange: unrouted });
}

/** Consumes `queue` (bound to `exchange` with `pattern`, unless `bind` is false). */
export async function consume(url: string, exchange: string, queue: string,
  options: { pattern?: string; bind?: boolean } = {}): Promise<TestConsumer> {
  const received: Received[] = [];
  let connection: ChannelModel | undefined;
  let channel: Channel | undefined;
  const open = async () => {
    connection = await connect(url);
    connection.on('error', () => {});
    channel = await connection.createChannel();
    channel.on('error', () => {});
    await declareExchange(channel, exchange);
    await channel.assertQueue(queue, { durable: true });
    if (options.bind !== false) await channel.bindQueue(queue, exchange, options.pattern ?? '#');
    await channel.consume(queue, (m: ConsumeMessage | null) => {
      if (m === null) return;
      received.push({ messageId: String(m.properties.messageId), routingKey: m.fields.routingKey,
        body: JSON.parse(m.content.toString()) as Record<string, unknown>,
        raw: m.content.toString(),
        persistent: m.properties.deliveryMode === 2,
        contentType: m.properties.contentType as string | undefined,
        type: m.properties.type as string | undefined,
        headers: (m.properties.headers ?? {}) as Record<string, unknown> });
      channel?.ack(m);
    });
  };
  await open();
  const deduplicated = () => {
    const seen = new Set<string>();
    return received.filter((r) => !seen.has(r.messageId) && seen.add(r.messageId));
  };
  return {
    received,
    deduplicated,
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (deduplicated().length < count) {
        if (Date.now() > deadline) {
          throw new Error(`${deduplicated().length} of ${count} messages after ${timeoutMs} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async reopen() {
      await connection?.close().catch(() => {});
      await open();
    },
    async close() {
      await connection?.close().catch(() => {});
    },
  };
}
