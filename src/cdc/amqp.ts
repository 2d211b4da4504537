/**
 * The change-data sink for AMQP 0-9-1 (RabbitMQ), with amqplib: one connection and one confirm
 * channel per instance, shared by every ledger this instance publishes.
 *
 * A page of records counts as handed on only when the broker has confirmed every message of it
 * (publisher confirms: for a persistent message to a durable queue, once it is on disk) and
 * returned none: until then the follower's position stays where it was, so a failure repeats
 * messages and never skips one.
 *
 * Topology, declared on every (re)connection (idempotent; docs/change-data.md):
 *   <exchange>           topic, durable, alternate exchange <exchange>.unrouted
 *   <exchange>.unrouted  fanout, durable, bound to the durable queue <exchange>.unrouted
 * A message that no binding of the consumers routes goes to that queue instead of being dropped.
 * Messages are also published `mandatory`: should the broker return one all the same (the
 * alternate exchange was removed), the page fails and is sent again later, so a record is
 * never lost silently; the lag then grows and the alert fires.
 */
import { once } from 'node:events';
import { type ChannelModel, type ConfirmChannel, connect, type Options } from 'amqplib';
import fastJson from 'fast-json-stringify';
import { limits } from '../config/limits.js';
import { TransferJson } from '../http/schemas.js';
import type { FollowerSink } from '../ledger/follower.js';
import type { Transfer } from '../ledger/types.js';

/** Why a page was not handed on (the `reason` label of ledger_cdc_errors_total). */
export const CDC_ERROR_REASONS = ['connect', 'publish', 'confirm', 'returned'] as const;
export type CdcErrorReason = typeof CDC_ERROR_REASONS[number];

export interface CdcObserver {
  /** Messages the broker confirmed. */
  published?(messages: number): void;
  failed?(reason: CdcErrorReason): void;
  /** The broker connection went up (true) or down (false). */
  connected?(up: boolean): void;
  /**
   * After each pass over the ledgers: records not yet published (summed over the ledgers this
   * instance publishes) and the age of the oldest (s).
   */
  lag?(records: number, seconds: number): void;
}

/** A page the broker did not take; the follower sends it again later. */
export class CdcPublishError extends Error {
  override readonly name = 'CdcPublishError';

  constructor(readonly reason: CdcErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Waiting out the pause after a failed connection: not an attempt, not counted. */
export class CdcBackoffError extends Error {
  override readonly name = 'CdcBackoffError';
}

export interface AmqpSinkOptions {
  /** LEDGER_CDC_AMQP_URL. */
  url: string;
  /** LEDGER_CDC_EXCHANGE. */
  exchange: string;
  observer?: CdcObserver;
}

const RECONNECT_DELAY_MAX_MS = 5_000;

/**
 * A record's JSON exactly as the HTTP answers write it (the same schema, compiled the same
 * way): `GET /journal`, `GET /transfers/{id}` and a message carry the same bytes.
 */
const recordJson = fastJson(TransferJson);

/** The message of a record: its properties, routing key and body (docs/change-data.md). */
export function cdcMessage(ledger: string, record: Transfer): {
  routingKey: string; body: Buffer; options: Options.Publish;
} {
  return {
    routingKey: `${ledger}.${record.kind}`,
    body: Buffer.from(recordJson(record)),
    options: {
      persistent: true,
      mandatory: true,
      messageId: `${ledger}:${record.seq}`,
      contentType: 'application/json',
      type: record.kind,
      appId: 'atomic-ledger',
      // AMQP timestamps are whole seconds; the body's createdAt has the milliseconds.
      timestamp: Math.floor(Date.parse(record.createdAt) / 1000),
      // No headers: the message id says the ledger and the seq, and a header table costs the
      // publisher ~4 µs a message to encode (bench/, profile).
    },
  };
}

export class AmqpSink implements FollowerSink {
  private connection: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  private retryAt = 0;
  private delayMs: number = limits.CDC_RECONNECT_DELAY_MS;
  /** Message ids the broker returned, per channel: a page with one of them fails. */
  private returned = new Set<string>();
  private closed = false;

  constructor(private readonly options: AmqpSinkOptions) {}

  async deliver(ledger: string, records: readonly Transfer[]): Promise<void> {
    const channel = await this.open();
    const ids: string[] = [];
    try {
      for (const record of records) {
        const { routingKey, body, options } = cdcMessage(ledger, record);
        ids.push(options.messageId as string);
        if (!channel.publish(this.options.exchange, routingKey, body, options)) {
          // The socket's buffer is full: wait for it to drain (or the channel to fail); the
          // signal removes the loser's listener.
          const done = new AbortController();
          await Promise.race([once(channel, 'drain', { signal: done.signal }),
            once(channel, 'close', { signal: done.signal })]).finally(() => done.abort());
        }
      }
    } catch (error) {
      this.drop(channel);
      this.options.observer?.failed?.('publish');
      throw new CdcPublishError('publish', 'publishing to the broker failed', { cause: error });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([channel.waitForConfirms(), new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('no confirms within CDC_CONFIRM_TIMEOUT_MS')),
          limits.CDC_CONFIRM_TIMEOUT_MS);
      })]);
    } catch (error) {
      this.drop(channel);
      this.options.observer?.failed?.('confirm');
      throw new CdcPublishError('confirm', 'the broker did not confirm the messages',
        { cause: error });
    } finally {
      clearTimeout(timer);
    }
    // A return arrives before its message's confirm (AMQP 0-9-1), so it is known by now.
    const returned = ids.filter((id) => this.returned.delete(id));
    if (returned.length > 0) {
      this.options.observer?.failed?.('returned');
      throw new CdcPublishError('returned', `the broker returned ${returned.length} ` +
        `unroutable message(s), first ${returned[0]}: declare a binding or the alternate ` +
        `exchange ${this.options.exchange}.unrouted`);
    }
    this.options.observer?.published?.(records.length);
  }

  /**
   * Connects now if not connected (and not waiting out a pause): the exchange exists for
   * consumers to bind to before the first record, and the broker gauge tells the truth while
   * nothing is published. Never throws.
   */
  async ready(): Promise<boolean> {
    try {
      await this.open();
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the connection (the service stops). */
  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    this.channel = undefined;
    await connection?.close().catch(() => {});
  }

  private open(): Promise<ConfirmChannel> {
    if (this.channel !== undefined) return Promise.resolve(this.channel);
    if (this.closed) return Promise.reject(new CdcBackoffError('the publisher is closed'));
    if (Date.now() < this.retryAt) {
      return Promise.reject(new CdcBackoffError('waiting before reconnecting to the broker'));
    }
    this.opening ??= this.connect().finally(() => { this.opening = undefined; });
    return this.opening;
  }

  private async connect(): Promise<ConfirmChannel> {
    let connection: ChannelModel | undefined;
    try {
      connection = await connect(this.options.url,
        { clientProperties: { connection_name: 'atomic-ledger change data' } });
      const channel = await connection.createConfirmChannel();
      const { exchange } = this.options;
      const unrouted = `${exchange}.unrouted`;
      await channel.assertExchange(unrouted, 'fanout', { durable: true });
      await channel.assertQueue(unrouted, { durable: true });
      await channel.bindQueue(unrouted, unrouted, '');
      await channel.assertExchange(exchange, 'topic',
        { durable: true, alternateExchange: unrouted });
      const returned = new Set<string>();
      channel.on('return', (message: { properties: { messageId?: string } }) => {
        const id = message.properties.messageId;
        if (id !== undefined) returned.add(id);
      });
      // Errors end in 'close'; both must have a listener, or an 'error' event would throw.
      connection.on('error', () => {});
      channel.on('error', () => {});
      connection.on('close', () => this.drop(channel));
      channel.on('close', () => this.drop(channel));
      if (this.closed) throw new Error('closed while connecting');
      this.connection = connection;
      this.channel = channel;
      this.returned = returned;
      this.delayMs = limits.CDC_RECONNECT_DELAY_MS;
      this.options.observer?.connected?.(true);
      return channel;
    } catch (error) {
      await connection?.close().catch(() => {});
      this.retryAt = Date.now() + this.delayMs;
      this.delayMs = Math.min(this.delayMs * 2, RECONNECT_DELAY_MAX_MS);
      this.options.observer?.failed?.('connect');
      throw new CdcPublishError('connect', 'cannot reach the broker', { cause: error });
    }
  }

  /** Forgets a failed channel (and its connection); the next page reconnects. */
  private drop(channel: ConfirmChannel): void {
    if (this.channel !== channel) return;
    const connection = this.connection;
    this.channel = undefined;
    this.connection = undefined;
    this.options.observer?.connected?.(false);
    void connection?.close().catch(() => {});
  }
}
