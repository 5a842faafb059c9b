/**
 * The deployment files checked without Docker: docker/compose.yaml parsed
 * (services, the nodes' commands and environment, secrets as files, volumes,
 * networks), docker/nginx.conf against it, and docker/Dockerfile (non-root
 * user, health check, no secret in ENV or ARG), and the entry point by
 * shellcheck (skips loudly without it). The entry point runs in
 * test/integration/deployment.int.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { interopAvailable } from './helpers/interop.js';

const dockerDir = path.join(import.meta.dirname, '../docker');
const read = (name: string) => fs.readFileSync(path.join(dockerDir, name), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  profiles?: string[];
  environment?: Record<string, string>;
  command?: string[];
  secrets?: string[];
  volumes?: string[];
  networks?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
}

interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string }[] } }>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file?: string; environment?: string }>;
}

const compose = parse(read('compose.yaml')) as Compose;
const nginx = read('nginx.conf');
const dockerfile = read('Dockerfile');
const entrypoint = read('entrypoint.sh');

const nodes = ['trellis-1', 'trellis-2'] as const;
const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`compose.yaml has no service ${name}`);
  return s;
};
const env = (name: string): Record<string, string> => service(name).environment ?? {};
/** The volume mounted at `target`: "<volume>:<target>[:ro]" → volume. */
const volumeAt = (s: Service, target: string) => s.volumes?.map((v) => v.split(':')).find((v) => v[1] === target)?.[0];
const frontSubnet = () => compose.networks.front!.ipam!.config[0]!.subnet;

describe('docker/compose.yaml', () => {
  test('runs PostgreSQL, a one-off init, two Trellis nodes and a proxy', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'proxy', 'trellis-1', 'trellis-2', 'trellis-init']);
  });

  test('PostgreSQL keeps its data in a volume, has a health check, and its password comes from a secret', () => {
    const pg = service('postgres');
    expect(compose.volumes).toHaveProperty(volumeAt(pg, '/var/lib/postgresql/data')!);
    expect(pg.healthcheck?.test?.join(' ')).toMatch(/pg_isready -U trellis -d trellis/);
    expect(env('postgres').POSTGRES_PASSWORD_FILE).toBe('/run/secrets/postgres_password');
    expect(pg.secrets).toContain('postgres_password');
    expect(pg.networks).toEqual(['back']);
  });

  test('the two nodes run the same image on the same data volume and database, with distinct names and ports', () => {
    const [a, b] = nodes.map(service);
    expect(a!.image).toBe(b!.image);
    expect(a!.build).toEqual(b!.build);
    expect(a!.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    // One data directory (trellis.json with the database URL, rotations.json, profiles/), made by trellis-init.
    const dataVolume = volumeAt(a!, '/var/lib/trellis');
    expect(dataVolume).toBeDefined();
    expect(compose.volumes).toHaveProperty(dataVolume!);
    expect(volumeAt(b!, '/var/lib/trellis')).toBe(dataVolume);
    expect(volumeAt(service('trellis-init'), '/var/lib/trellis')).toBe(dataVolume);
    // The database comes from that shared trellis.json: no node names another one.
    for (const n of nodes) expect(env(n)).not.toHaveProperty('TRELLIS_DATABASE_URL');
    expect(nodes.map((n) => env(n).TRELLIS_PORT)).toEqual(['8081', '8082']);
    for (const n of nodes) {
      expect(env(n)).not.toHaveProperty('TRELLIS_INIT');
      expect(env(n).TRELLIS_PASSPHRASE_FILE).toBe('/run/secrets/trellis_passphrase');
      expect(service(n).secrets).toEqual(['trellis_passphrase']);
      expect(service(n).depends_on?.postgres).toEqual({ condition: 'service_healthy' });
      expect(service(n).networks?.sort()).toEqual(['back', 'front']);
      // Only the proxy is reachable from outside.
      expect(service(n).ports).toBeUndefined();
    }
  });

  test('each node trusts X-Forwarded-For from the proxy\'s network only', () => {
    expect(service('proxy').networks).toEqual(['front']);
    for (const n of nodes) {
      const cmd = service(n).command!;
      const trusted = cmd.flatMap((arg, i) => (arg === '--trusted-proxy' ? [cmd[i + 1]] : []));
      expect(trusted).toEqual([frontSubnet()]);
    }
  });

  test('only trellis-init gets the root passphrase and the database URL; it initialises and exits, under the init profile', () => {
    const init = service('trellis-init');
    expect(init.image).toBe(service('trellis-1').image);
    expect(init.profiles).toEqual(['init']);
    expect(env('trellis-init')).toMatchObject({
      TRELLIS_INIT: 'only',
      TRELLIS_PASSPHRASE_FILE: '/run/secrets/trellis_passphrase',
      TRELLIS_ROOT_PASSPHRASE_FILE: '/run/secrets/trellis_root_passphrase',
      TRELLIS_DATABASE_URL_FILE: '/run/secrets/trellis_database_url',
    });
    expect(env('trellis-init').TRELLIS_BASE_URL).toMatch(/^https:\/\//);
    expect(init.depends_on?.postgres).toEqual({ condition: 'service_healthy' });
    for (const [name, s] of Object.entries(compose.services)) {
      if (name === 'trellis-init') continue;
      expect(s.secrets ?? []).not.toContain('trellis_root_passphrase');
      expect(s.secrets ?? []).not.toContain('trellis_database_url');
    }
  });

  test('secrets are files, never inlined: every secret-like variable is a *_FILE naming a secret its service mounts', () => {
    for (const [name, s] of Object.entries(compose.secrets)) {
      expect(s, name).toEqual({ file: `./secrets/${path.basename(s.file ?? '')}` });
    }
    for (const [name, s] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (!/PASS|SECRET|KEY|TOKEN|PIN|DATABASE_URL/.test(key)) continue;
        expect(key, `${name}.${key}`).toMatch(/_FILE$/);
        const m = /^\/run\/secrets\/([a-z_]+)$/.exec(value);
        expect(m, `${name}.${key}`).not.toBeNull();
        expect(s.secrets, `${name}.${key}`).toContain(m![1]);
      }
    }
  });

  test('every TRELLIS_* variable a service sets is one the entry point reads', () => {
    const known = new Set(entrypoint.match(/TRELLIS_[A-Z_]+/g));
    for (const n of ['trellis-init', ...nodes]) {
      for (const key of Object.keys(env(n))) expect(known, `${n}.${key}`).toContain(key);
    }
  });

  test('the proxy terminates TLS with its certificate from secrets and forwards to both nodes, replacing X-Forwarded-For', () => {
    const proxy = service('proxy');
    expect(proxy.ports).toEqual(['443:443']);
    expect(proxy.volumes).toContain('./nginx.conf:/etc/nginx/nginx.conf:ro');
    expect(proxy.secrets?.sort()).toEqual(['proxy_tls_cert', 'proxy_tls_key']);
    expect(nginx).toMatch(/ssl_certificate \/run\/secrets\/proxy_tls_cert;/);
    expect(nginx).toMatch(/ssl_certificate_key \/run\/secrets\/proxy_tls_key;/);
    expect(nginx).toMatch(/listen 443 ssl;/);
    const upstreams = [...nginx.matchAll(/^\s*server ([a-z0-9-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
    expect(upstreams).toEqual(nodes.map((n) => `${n}:${env(n).TRELLIS_PORT}`));
    // Replaced, not appended ($proxy_add_x_forwarded_for would keep what the client sent).
    expect(nginx).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    expect(nginx).not.toContain('$proxy_add_x_forwarded_for');
  });

  test('PostgreSQL sits on an internal network', () => {
    expect(compose.networks.back).toEqual({ internal: true });
  });
});

describe('docker/Dockerfile', () => {
  /** The instructions of the last stage (the runtime image), continuation lines joined. */
  const runtime = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .reduce<string[]>((stage, line) => (/^FROM /.test(line) ? [line] : [...stage, line]), []);
  const instruction = (name: string) => runtime.filter((l) => l.startsWith(`${name} `));

  test('builds in a build stage (npm ci, npm run build, then production packages only) and runs on a slim Node 20 without compilers', () => {
    expect(dockerfile).toMatch(/^FROM node:20[\w.-]*-slim AS build$/m);
    expect(dockerfile).toMatch(/^RUN npm ci$/m);
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
    expect(dockerfile).toMatch(/^RUN npm prune --omit=dev$/m);
    expect(runtime[0]).toMatch(/^FROM node:20[\w.-]*-slim$/);
    expect(runtime.join('\n')).not.toMatch(/npm (ci|install)|apt-get install/);
  });

  test('runs as a non-root user, with its data in a volume', () => {
    const users = instruction('USER');
    expect(users).toEqual(['USER trellis']);
    expect(runtime.join('\n')).toMatch(/useradd --system --uid 10001 /);
    expect(instruction('VOLUME')).toEqual(['VOLUME /var/lib/trellis']);
    expect(runtime.join('\n')).toMatch(/install -d -o trellis -g trellis -m 0700 \/var\/lib\/trellis/);
    expect(instruction('ENV').join(' ')).toMatch(/TRELLIS_DATA=\/var\/lib\/trellis/);
  });

  test('checks /healthz, exposes the port and starts through the entry point script', () => {
    const health = instruction('HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(health[0]).toMatch(/\/healthz/);
    expect(health[0]).toMatch(/process\.env\.TRELLIS_PORT/);
    expect(instruction('EXPOSE')).toEqual(['EXPOSE 8080']);
    expect(runtime).toContain('COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/trellis-entrypoint');
    expect(instruction('ENTRYPOINT')).toEqual(['ENTRYPOINT ["/usr/local/bin/trellis-entrypoint"]']);
  });

  test('puts no secret in ENV or ARG', () => {
    const vars = dockerfile
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((l) => /^(ENV|ARG) /.test(l))
      .flatMap((l) => l.replace(/^(ENV|ARG) /, '').trim().split(/\s+/))
      .map((kv) => kv.split('=')[0]!);
    expect(vars.length).toBeGreaterThan(0);
    for (const v of vars) expect(v).not.toMatch(/PASS|SECRET|KEY|TOKEN|PIN|DATABASE_URL/);
  });

  test('keeps the build context to sources (Dockerfile.dockerignore): no secrets, data or build output', () => {
    const ignored = read('Dockerfile.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist', 'trellis-data', 'docker/secrets']));
  });
});

const shellcheck = interopAvailable(spawnSync('shellcheck', ['--version']).status === 0, 'shellcheck', 'apt-get install shellcheck');

describe.skipIf(!shellcheck)('docker/entrypoint.sh', () => {
  test('is POSIX sh that shellcheck passes', () => {
    expect(entrypoint.split('\n')[0]).toBe('#!/bin/sh');
    expect(() => execFileSync('shellcheck', ['-s', 'sh', path.join(dockerDir, 'entrypoint.sh')], { encoding: 'utf8' })).not.toThrow();
  });
});
