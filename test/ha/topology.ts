/**
 * A Redis Sentinel topology of real processes for the HA tests (issue 14): a primary and two
 * replicas (redis-server with AOF, each in a temporary directory on a free loopback port) and
 * three Sentinels (quorum 2), all on 127.0.0.1. Every node sits behind a LinkProxy and
 * announces the proxy's port (nodes.ts), so replication, Sentinel and the service all cross
 * the proxies, also after a failover: Sentinel reconfigures replicas to the new primary's
 * announced address, which is its proxy. (A proxy on a replica's side only, the replica
 * replicating from it while Sentinel knows the primary's real port, does not last: Sentinel
 * points such a replica at the address it knows, "+fix-slave-config", 18 s later in a run here.)
 *
 * Faults: kill -9, SIGSTOP / SIGCONT and restart of a node (nodes.ts), a cut or a delay of a
 * primary's replication links (its proxy), a failover Sentinel starts by itself or one asked
 * for (`SENTINEL FAILOVER`). Sentinel's view is read with SENTINEL commands and
 * `+switch-master` events. `close()` kills every process and removes the directories; a
 * process exit kills them too.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { freePort } from '../../src/redis/embedded.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { connect, MASTER_NAME, RedisNode, SentinelProcess } from './nodes.js';

/** Liveness bounds for a shared, busy 2-core machine; a healthy run needs a fraction. */
export const HEALTHY_TIMEOUT_MS = 60_000;
export const FAILOVER_LIVENESS_MS = 60_000;
const POLL_MS = 50;
const REPLICAS = 2;
const SENTINELS = 3;

export interface Switch {
  at: number;
  sentinel: string;
  /** `<name> <old ip> <old port> <new ip> <new port>` */
  text: string;
}

/** SENTINEL REPLICAS / SENTINELS / MASTER replies: flat [field, value, …] arrays. */
function fields(reply: unknown): Map<string, string> {
  const list = reply as string[];
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) map.set(list[i] as string, list[i + 1] as string);
  return map;
}

async function replication(redis: Redis): Promise<Map<string, string>> {
  return parseInfo(await redis.info('replication'));
}

/** Polls `problem` until it returns undefined; a timeout names the last problem seen. */
export async function until(what: string, problem: () => Promise<string | undefined>,
  timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not checked yet';
  for (;;) {
    try {
      const p = await problem();
      if (p === undefined) return;
      last = p;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await sleep(POLL_MS);
  }
}

export class Topology {
  readonly switches: Switch[] = [];
  private readonly subscribers: Redis[] = [];

  private constructor(readonly root: string, readonly nodes: RedisNode[],
    readonly sentinels: SentinelProcess[]) {}

  /** Starts it all and waits until the Sentinels agree on n0 and see the replicas. */
  static async start(): Promise<Topology> {
    const root = mkdtempSync(join(tmpdir(), 'ledger-ha-'));
    const dir = (name: string) => {
      mkdirSync(join(root, name));
      return join(root, name);
    };
    const nodes: RedisNode[] = [];
    const sentinels: SentinelProcess[] = [];
    const topology = new Topology(root, nodes, sentinels);
    try {
      nodes.push(await RedisNode.create('n0', dir('n0'), await freePort()));
      for (let i = 1; i <= REPLICAS; i++) {
        nodes.push(await RedisNode.create(`n${i}`, dir(`n${i}`), await freePort(), nodes[0]));
      }
      for (const node of nodes) await node.start();
      // Sentinels learn replicas from the primary's INFO, sent every 10 s: start them once the
      // replicas are online, so the first INFO lists both.
      await until('the replicas to sync', () => topology.primaryProblem(nodes[0] as RedisNode),
        HEALTHY_TIMEOUT_MS);
      for (let i = 0; i < SENTINELS; i++) {
        sentinels.push(await SentinelProcess.start(`s${i}`, dir(`s${i}`), await freePort(),
          nodes[0] as RedisNode));
      }
      await topology.watchSwitches();
      await topology.waitHealthy();
      return topology;
    } catch (error) {
      await topology.close();
      throw error;
    }
  }

  /** REDIS_SENTINELS for the service. */
  get sentinelsEnv(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  nodeAt(address: string): RedisNode | undefined {
    return this.nodes.find((n) => n.address === address);
  }

  private async watchSwitches(): Promise<void> {
    for (const sentinel of this.sentinels) {
      const redis = await connect(sentinel.port);
      this.subscribers.push(redis);
      redis.on('message', (_channel: string, text: string) => {
        this.switches.push({ at: Date.now(), sentinel: sentinel.name, text });
      });
      await redis.subscribe('+switch-master');
    }
  }

  /** The primary each Sentinel names (undefined: it did not answer). */
  async views(): Promise<Array<string | undefined>> {
    return Promise.all(this.sentinels.map(async (s) => {
      const addr = await s.command('GET-MASTER-ADDR-BY-NAME', MASTER_NAME).catch(() => null);
      return Array.isArray(addr) ? `${addr[0]}:${addr[1]}` : undefined;
    }));
  }

  /** The node a majority of Sentinels name, if any. */
  async primary(): Promise<RedisNode | undefined> {
    const views = await this.views();
    const named = views.find((v) => v !== undefined
      && views.filter((w) => w === v).length > SENTINELS / 2);
    return named === undefined ? undefined : this.nodeAt(named);
  }

  /** Problems of `primary` as a primary: its role, and REPLICAS online replicas. */
  private async primaryProblem(primary: RedisNode): Promise<string | undefined> {
    const info = await primary.admin(replication);
    if (info.get('role') !== 'master') return `${primary.name} is ${info.get('role')}`;
    const online = [...info].filter(([k, v]) => /^slave\d+$/.test(k) && v.includes('online'));
    return online.length === REPLICAS ? undefined
      : `${primary.name} has ${online.length} online replicas`;
  }

  /** What is not yet as it should be: all Sentinels agree, all nodes in place, all seen. */
  async healthProblem(): Promise<string | undefined> {
    const views = await this.views();
    if (new Set(views).size !== 1 || views[0] === undefined) {
      return `Sentinels disagree: ${views.join(' ')}`;
    }
    const primary = this.nodeAt(views[0]);
    if (primary === undefined) return `Sentinels name an unknown node ${views[0]}`;
    const problem = await this.primaryProblem(primary);
    if (problem !== undefined) return problem;
    for (const node of this.nodes.filter((n) => n !== primary)) {
      const info = await node.admin(replication);
      if (info.get('role') !== 'slave' || info.get('master_port') !== `${primary.proxy.port}`
        || info.get('master_link_status') !== 'up') {
        return `${node.name}: role ${info.get('role')} of ${info.get('master_port')}, link ` +
          `${info.get('master_link_status')}`;
      }
    }
    for (const sentinel of this.sentinels) {
      const problem = await this.sentinelProblem(sentinel, primary);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }

  private async sentinelProblem(sentinel: SentinelProcess,
    primary: RedisNode): Promise<string | undefined> {
    const master = fields(await sentinel.command('MASTER', MASTER_NAME));
    if (master.get('flags') !== 'master') {
      return `${sentinel.name}: primary flags ${master.get('flags')}`;
    }
    // Up and known as replicas. Not their link as Sentinel last saw it: Sentinel reads a
    // replica's INFO every 10 s (every second in a failover, when it matters); the nodes'
    // own INFO, checked above, is current.
    const replicas = (await sentinel.command('REPLICAS', MASTER_NAME) as unknown[]).map(fields)
      .filter((r) => r.get('flags') === 'slave');
    const peers = (await sentinel.command('SENTINELS', MASTER_NAME) as unknown[]).map(fields)
      .filter((s) => s.get('flags') === 'sentinel');
    if (replicas.length !== REPLICAS || peers.length !== SENTINELS - 1) {
      return `${sentinel.name} sees ${replicas.length} replicas up, ${peers.length} peers`;
    }
    return undefined;
  }

  /** Waits until healthProblem() has none; returns the primary. */
  async waitHealthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<RedisNode> {
    await until('a healthy topology', () => this.healthProblem(), timeoutMs);
    return await this.primary() as RedisNode;
  }

  /**
   * Waits until a majority of Sentinels name another primary than `from` and it acts as one
   * (role master). `at`: the first +switch-master event after `since`, else when seen here.
   */
  async waitForFailover(from: RedisNode, since: number,
    timeoutMs = FAILOVER_LIVENESS_MS): Promise<{ node: RedisNode; at: number }> {
    let node: RedisNode | undefined;
    await until(`a failover away from ${from.name}`, async () => {
      const named = await this.primary();
      if (named === undefined || named === from) return `Sentinels name ${named?.name}`;
      const role = (await named.admin(replication)).get('role');
      if (role !== 'master') return `${named.name} is named but is ${role}`;
      node = named;
      return undefined;
    }, timeoutMs);
    const seen = Date.now();
    const event = this.switches.find((s) => s.at >= since);
    return { node: node as RedisNode, at: Math.min(event?.at ?? seen, seen) };
  }

  /** Asks a Sentinel for a failover (the old primary need not be down). */
  async requestFailover(): Promise<void> {
    await (this.sentinels[0] as SentinelProcess).command('FAILOVER', MASTER_NAME);
  }

  /**
   * Every node has applied the whole replication stream and holds the same data (DEBUG
   * DIGEST): nothing stayed on a former primary that the others do not have. Call it with no
   * writer left (the service stopped): Sentinel's hello messages move the offsets on, so the
   * comparison is retried until a quiet moment.
   */
  async waitIdentical(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<string> {
    let digest = '';
    await until('identical nodes', async () => {
      const offsets = await Promise.all(this.nodes.map((n) => n.admin(async (r) => {
        const info = await replication(r);
        return info.get('role') === 'master' ? info.get('master_repl_offset')
          : info.get('slave_repl_offset');
      })));
      if (new Set(offsets).size !== 1) return `offsets ${offsets.join(' ')}`;
      const digests = await Promise.all(this.nodes.map((n) =>
        n.admin((r) => r.call('DEBUG', 'DIGEST') as Promise<string>)));
      if (new Set(digests).size !== 1) return `digests ${digests.join(' ')}`;
      digest = digests[0] as string;
      return undefined;
    }, timeoutMs);
    return digest;
  }

  /** Roles and links as the nodes and Sentinels see them, for failure messages. */
  async describe(): Promise<string> {
    const lines = await Promise.all(this.nodes.map(async (n) => {
      if (!n.running) return `${n.name} ${n.address}: down`;
      const info = await n.admin(replication).catch((e) => new Map([['error', String(e)]]));
      return `${n.name} ${n.address}: ${info.get('role') ?? info.get('error')} ` +
        `of ${info.get('master_port') ?? '-'} link ${info.get('master_link_status') ?? '-'} ` +
        `replicas ${info.get('connected_slaves') ?? '-'}`;
    }));
    return [...lines, `Sentinels name ${(await this.views()).join(' ')}`,
      `switches: ${this.switches.map((s) => `${s.sentinel} ${s.text}`).join('; ') || 'none'}`]
      .join('\n');
  }

  async close(): Promise<void> {
    for (const redis of this.subscribers) redis.disconnect();
    await Promise.all([...this.sentinels, ...this.nodes].map((p) => p.close()));
    rmSync(this.root, { recursive: true, force: true });
  }
}
