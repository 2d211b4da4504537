/**
 * The deployable stack, checked structurally (no Docker engine runs here): docker-compose.yml,
 * the Dockerfile, Grafana's provisioning and dashboard, and how they refer to each other —
 * service names, ports, mounted paths, the datasource uid, and every metric name a dashboard
 * panel or an alert uses.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { SCRIPT_P99_THRESHOLD_SECONDS } from '../../src/metrics/constants.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { dashboardPanels, dashboardQueries } from './dashboard.js';

const path = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const read = (p: string) => readFileSync(path(p), 'utf8');
const DATASOURCES = 'deploy/grafana/provisioning/datasources/prometheus.yml';

interface Service {
  profiles?: string[];
  image?: string;
  build?: string;
  entrypoint?: string[];
  command?: string[];
  user?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[]; interval: string; timeout: string; retries: number };
  secrets?: Array<{ source: string; target: string }>;
}

const compose = parse(read('docker-compose.yml')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  secrets?: Record<string, { file: string }>;
};
const services = compose.services;
const service = (name: string) => services[name] as Service;
/** container path → host source, for one service's volumes. */
const mounts = (s: Service) => new Map((s.volumes ?? []).map((v) => {
  const [source, target] = v.split(':');
  return [target as string, source as string];
}));

describe('docker-compose.yml', () => {
  /** The services of one profile ('': those without one, which every profile runs). */
  const inProfile = (profile: string) => Object.keys(services)
    .filter((name) => (service(name).profiles?.join() ?? '') === profile).sort();

  test('has exactly redis, ledger, prometheus and grafana; the profile ha its own set', () => {
    expect(inProfile('')).toEqual(['grafana', 'ledger', 'prometheus', 'redis']);
    expect(inProfile('ha')).toEqual(['grafana-ha', 'ledger-ha', 'prometheus-ha', 'redis-1',
      'redis-2', 'redis-3', 'sentinel-1', 'sentinel-2', 'sentinel-3']);
  });

  test('every service has a health check; every dependency waits for it to be healthy', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.healthcheck?.test[0], name).toBe('CMD');
      expect(s.healthcheck?.interval, name).toMatch(/^\d+s$/);
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(condition, `${name} → ${dependency}`).toBe('service_healthy');
        expect(services[dependency]?.healthcheck, dependency).toBeDefined();
      }
    }
    expect(Object.keys(service('ledger').depends_on ?? {})).toEqual(['redis']);
    expect(Object.keys(service('prometheus').depends_on ?? {})).toEqual(['ledger']);
    expect(Object.keys(service('grafana').depends_on ?? {})).toEqual(['prometheus']);
  });

  test('bind mounts exist in the repository; named volumes are declared', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [target, source] of mounts(s)) {
        const where = `${name}: ${source}:${target}`;
        if (source.startsWith('./')) expect(existsSync(path(source.slice(2))), where).toBe(true);
        else expect(Object.keys(compose.volumes), where).toContain(source);
      }
    }
  });

  test('ports are published on the host loopback only', () => {
    const published = (profile: string) =>
      inProfile(profile).flatMap((name) => service(name).ports ?? []).sort();
    expect(published('')).toEqual(['127.0.0.1:3000:3000', '127.0.0.1:3001:3000',
      '127.0.0.1:9090:9090']);
    expect(published('ha')).toEqual(['127.0.0.1:3002:3000', '127.0.0.1:3003:3000',
      '127.0.0.1:9091:9090']);
    for (const name of ['redis', 'redis-1', 'redis-2', 'redis-3', 'sentinel-1']) {
      expect(service(name).ports, name).toBeUndefined();
    }
  });

  test('redis: torn-tail-safe entrypoint, AOF always, noeviction, ACL, data on a volume', () => {
    const redis = service('redis');
    expect(redis.entrypoint).toEqual(['/bin/sh', '/deploy/redis/entrypoint.sh']);
    expect(mounts(redis).get('/deploy/redis/entrypoint.sh')).toBe('./deploy/redis/entrypoint.sh');
    expect(redis.volumes).toContain('./deploy/redis/entrypoint.sh:/deploy/redis/entrypoint.sh:ro');
    expect(mounts(redis).get('/data')).toBe('redis-data');
    const args = (redis.command ?? []).join(' ');
    expect(args).toContain('--appendonly yes');
    expect(args).toContain('--appendfsync always');
    expect(args).toContain('--maxmemory-policy noeviction');
    expect(args).toContain('--aclfile /deploy/redis/users.acl');
    // Rendered from deploy/redis/users.acl with the password's hash by npm run docker:setup.
    expect(redis.secrets).toContainEqual({ source: 'redis-users-acl',
      target: '/deploy/redis/users.acl' });
    expect(compose.secrets?.['redis-users-acl']?.file).toBe('./secrets/users.acl');
    expect(redis.user).toBe('redis');
    // The default user is off (test/security/acl.test.ts): the check logs in as `healthcheck`.
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', '--user', 'healthcheck',
      '--pass', '-', '--no-auth-warning', 'ping']);
    expect(read('deploy/redis/users.acl')).toMatch(/^user healthcheck on nopass .* -@all \+ping$/m);
    // The entrypoint passes our arguments to redis-server, in /data, refusing torn tails.
    const script = read('deploy/redis/entrypoint.sh');
    expect(script).toMatch(/exec redis-server "\$@"/);
    expect(script).toContain('--aof-load-truncated no');
    expect(script).toMatch(/DATA_DIR=\$\{REDIS_DATA_DIR:-\/data\}/);
  });

  test('ledger: built here, on the redis service, ready-checked on its own port', () => {
    const ledger = service('ledger');
    expect(ledger.build).toBe('.');
    // As the ACL's ledger user, its password from the environment (compose stops when unset).
    expect(ledger.environment?.REDIS_URL)
      .toBe('redis://ledger:${LEDGER_REDIS_PASSWORD:?run npm run docker:setup}@redis:6379');
    expect(ledger.environment?.HOST).toBe('0.0.0.0');
    const port = ledger.environment?.PORT;
    expect(ledger.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    expect(ledger.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/readyz`);
  });

  test('prometheus: the shipped config and rules, scraping the ledger service', () => {
    const prometheus = service('prometheus');
    const m = mounts(prometheus);
    expect(m.get('/etc/prometheus/prometheus.yml')).toBe('./deploy/prometheus/prometheus.yml');
    expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const config = parse(read('deploy/prometheus/prometheus.yml'));
    for (const file of config.rule_files as string[]) {
      // Relative rule files resolve beside the config file, in the container too.
      expect(m.get(`/etc/prometheus/${file}`)).toBe(`./deploy/prometheus/${file}`);
    }
    const job = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'ledger');
    expect(job.metrics_path).toBe('/metrics');
    const port = service('ledger').environment?.PORT;
    expect(job.static_configs[0].targets).toEqual([`ledger:${port}`]);
    expect(m.get('/prometheus')).toBe('prometheus-data');
    // It scrapes with a metrics-only API key, mounted as a compose secret (never committed).
    expect(job.authorization).toEqual({ type: 'Bearer',
      credentials_file: '/etc/prometheus/ledger-metrics-key' });
    expect(prometheus.secrets).toContainEqual({ source: 'ledger-metrics-key',
      target: job.authorization.credentials_file });
    expect(compose.secrets?.['ledger-metrics-key']?.file).toBe('./secrets/ledger-metrics-key');
    expect(read('.gitignore')).toMatch(/^secrets\/$/m);
  });

  test('ledger: API keys are required (it refuses to start without them)', () => {
    expect(service('ledger').environment?.LEDGER_API_KEYS).toMatch(/^\$\{LEDGER_API_KEYS:\?/);
  });

  test('grafana: provisioning and dashboards mounted where the provider looks', () => {
    const m = mounts(service('grafana'));
    expect(m.get('/etc/grafana/provisioning')).toBe('./deploy/grafana/provisioning');
    const provider = parse(read('deploy/grafana/provisioning/dashboards/ledger.yml')).providers[0];
    expect(m.get(provider.options.path)).toBe('./deploy/grafana/dashboards');
    const datasource = parse(read(DATASOURCES)).datasources[0];
    expect(datasource).toMatchObject(
      { type: 'prometheus', url: 'http://prometheus:9090', uid: 'prometheus' });
    expect(service('prometheus').ports?.[0]).toMatch(/:9090$/);
    expect(m.get('/var/lib/grafana')).toBe('grafana-data');
  });
});

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Array<{ op: string; args: string }> {
  return text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: (op as string).toUpperCase(), args: rest.join(' ') };
    });
}

describe('Dockerfile', () => {
  const all = instructions(read('Dockerfile'));
  const stages = all.filter((i) => i.op === 'FROM').map((i) => i.args);
  const finalStage = all.slice(all.map((i) => i.op).lastIndexOf('FROM'));

  test('is multi-stage on a pinned Node 20 image; COPY --from names earlier stages', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const names = stages.map((s) => /^node:20[-.\w]* AS (\w+)$/i.exec(s)?.[1]);
    expect(names.every(Boolean), stages.join('; ')).toBe(true);
    for (const copy of all.filter((i) => i.op === 'COPY' && i.args.includes('--from='))) {
      expect(names).toContain(/--from=(\w+)/.exec(copy.args)?.[1]);
    }
  });

  test('runs as a non-root user, exec-form CMD, exec-form HEALTHCHECK', () => {
    const user = finalStage.find((i) => i.op === 'USER')?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const cmd = finalStage.find((i) => i.op === 'CMD')?.args ?? '';
    expect(JSON.parse(cmd)).toEqual(['node', '--enable-source-maps', 'dist/server.js']);
    const health = finalStage.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
    expect(health).toMatch(/--interval=\d+s .*CMD \[/);
    expect(JSON.parse(health.slice(health.indexOf('CMD ') + 4))[0]).toBe('node');
  });

  test('the runtime gets production dependencies, the compiled service and the Lua scripts', () => {
    const runtime = finalStage.map((i) => `${i.op} ${i.args}`);
    expect(runtime).toContain('COPY --from=deps /app/node_modules ./node_modules');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(runtime).toContain('COPY lua ./lua');
    expect(runtime).toContain('COPY package.json ./'); // "type": "module" for dist/*.js
    expect(all.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args))).toBe(true);
    const compile = 'npx tsc -p tsconfig.build.json';
    expect(all.some((i) => i.op === 'RUN' && i.args === compile)).toBe(true);
    // src/server.ts compiles to dist/server.js, and dist/ledger/ finds the scripts at ../../lua.
    const build = JSON.parse(read('tsconfig.build.json'));
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist', noEmit: false });
  });

  test('every file it copies from the context exists and is not excluded by .dockerignore', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const sources = all.filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(path(source)), source).toBe(true);
      expect(ignored, source).not.toContain(source);
    }
  });
});

const registryNames = new Set(createRegistry({ defaultMetrics: true }).registry
  .getMetricsAsArray().map((m) => (m as unknown as { name: string }).name));
const alerts = parse(read('deploy/prometheus/alerts.yml')) as {
  groups: Array<{ rules: Array<{ record?: string; alert?: string; expr: string }> }>;
};
const rules = alerts.groups.flatMap((g) => g.rules);
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));

const METRIC_NAME = /\b(?:ledger|nodejs|process)_[a-z0-9_]+|\bledger:[a-z0-9_:]+/g;

/** Every metric name in a PromQL expression exists (histogram suffixes stripped) or is recorded. */
function expectKnownMetrics(expr: string, where: string): void {
  for (const [name] of expr.matchAll(METRIC_NAME)) {
    const base = name.replace(/_(bucket|count|sum)$/, '');
    expect(registryNames.has(base) || recorded.has(name), `${where}: ${name}`).toBe(true);
  }
}

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/ledger.json'));
  const panels = dashboardPanels(dashboard).filter((p) => p.type !== 'row') as Array<{
    id: number; title: string; datasource: { uid: string }; targets: Array<{ expr: string }>;
    gridPos: { x: number; y: number; w: number; h: number };
  }>;

  test('every panel uses the provisioned datasource and has queries; ids are unique', () => {
    const uid = parse(read(DATASOURCES)).datasources[0].uid;
    expect(dashboard.uid).toBe('atomic-ledger');
    for (const panel of panels) {
      expect(panel.datasource.uid, panel.title).toBe(uid);
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
    }
    const ids = dashboardPanels(dashboard).map((p) => (p as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('panels fit the 24-column grid without overlapping', () => {
    const cells = new Set<string>();
    for (const { title, gridPos: g } of panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  test('shows what the issue asks for', () => {
    const exprs = dashboardQueries(dashboard).map((q) => q.expr).join('\n');
    for (const needed of [/sum by \(outcome\) \(rate\(ledger_transfers_total/,
      /sum by \(reason\) \(rate\(ledger_transfers_total\{outcome="rejected"\}/,
      /histogram_quantile\(0\.5, sum by \(script, le\)/,
      /histogram_quantile\(0\.99, sum by \(script, le\)/,
      /histogram_quantile\(0\.99, sum by \(route, le\) \(rate\(ledger_http_request_duration/,
      /status_class="5xx"/, /ledger_redis_up/, /ledger_redis_aof_last_write_ok/,
      /ledger_redis_aof_delayed_fsync_total/, /ledger_redis_slowlog_length/,
      /ledger_redis_slowlog_slowest_seconds/, /ledger_redis_used_memory_bytes/, /ledger_ready/]) {
      expect(exprs).toMatch(needed);
    }
  });

  test('every metric a panel or a rule names exists', () => {
    for (const q of dashboardQueries(dashboard)) expectKnownMetrics(q.expr, q.panel);
    for (const r of rules) expectKnownMetrics(r.expr, r.alert ?? r.record ?? '?');
  });
});

describe('alert rules', () => {
  test('cover not ready, script p99, AOF write errors, Redis down and unknown outcomes', () => {
    const names = rules.flatMap((r) => (r.alert ? [r.alert] : []));
    for (const alert of ['LedgerNotReady', 'LedgerScriptLatencyHigh', 'LedgerAofWriteError',
      'LedgerRedisDown', 'LedgerUnknownOutcomesRising']) {
      expect(names).toContain(alert);
    }
  });

  test('the named script p99 threshold is SCRIPT_P99_THRESHOLD_SECONDS', () => {
    const name = 'ledger:script_duration_p99_threshold:seconds';
    const threshold = rules.find((r) => r.record === name);
    expect(threshold?.expr).toBe(`vector(${SCRIPT_P99_THRESHOLD_SECONDS})`);
    const alert = rules.find((r) => r.alert === 'LedgerScriptLatencyHigh');
    expect(alert?.expr).toContain(name);
  });
});
