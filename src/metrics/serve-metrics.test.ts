import { describe, expect, test } from 'vitest';
import type { KeyState } from '../ca/key-state.js';
import { fixedClock } from '../clock/clock.js';
import { routeClassOf } from './routes.js';
import { ServeMetrics } from './serve-metrics.js';

const t0 = new Date('2026-03-01T12:00:00Z');

function setup() {
  const clock = fixedClock(t0);
  const crls = [{ caId: 'issuing-1', scope: 'shard-0', thisUpdate: new Date(t0.getTime() - 90_000) }];
  const states: { ca: string; state: KeyState | undefined }[] = [
    { ca: 'issuing-1', state: 'active' },
    { ca: 'root', state: undefined },
  ];
  const ocsp = { lruHits: 0, dbHits: 0, signed: 0, lruEntries: 0 };
  const metrics = new ServeMetrics({ now: () => clock.now(), ocsp: () => ocsp, crls: () => crls, keyStates: async () => states }, { defaultMetrics: false });
  return { clock, crls, states, ocsp, metrics };
}

const line = (text: string, sample: string) => text.split('\n').find((l) => l.startsWith(`${sample} `));

describe('routeClassOf', () => {
  test.each([
    ['/ocsp', 'ocsp'],
    ['/ocsp/MEQwQjBAMD4wPDAJBgUrDgMCGgUABBQ', 'ocsp'],
    ['/ocspx', 'other'],
    ['/crl/issuing-1/0.crl', 'crl'],
    ['/.well-known/est/simpleenroll', 'est'],
    ['/.well-known/est/device/cacerts?x=1', 'est'],
    ['/acme/directory', 'acme'],
    ['/acme', 'acme'],
    ['/acmex', 'other'],
    ['/api/v1/certificates?a=b', 'api'],
    ['/metrics', 'other'],
    ['/ca/issuing-1.cer', 'other'],
    ['/', 'other'],
  ])('%s is %s', (url, cls) => {
    expect(routeClassOf(url)).toBe(cls);
  });
});

describe('ServeMetrics', () => {
  test('counters move by their labels', async () => {
    const { metrics } = setup();
    metrics.certificateIssued({ issuerId: 'issuing-1', profile: 'server' });
    metrics.certificateIssued({ issuerId: 'issuing-1', profile: 'server' });
    metrics.certificateIssued({ issuerId: 'issuing-2', profile: 'device' });
    metrics.certificateRevoked({ issuerId: 'issuing-1', profile: 'server' });
    metrics.acmeOrderEntered('pending');
    metrics.acmeOrderEntered('valid');
    metrics.estEnrollment('issued');
    metrics.estEnrollment('unauthorized');
    const text = await metrics.text();
    expect(line(text, 'trellis_certificates_issued_total{ca="issuing-1",profile="server"}')).toMatch(/ 2$/);
    expect(line(text, 'trellis_certificates_issued_total{ca="issuing-2",profile="device"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_certificates_revoked_total{ca="issuing-1",profile="server"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_acme_orders_total{state="pending"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_acme_orders_total{state="valid"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_est_enrollments_total{result="issued"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_est_enrollments_total{result="unauthorized"}')).toMatch(/ 1$/);
  });

  test('latency histogram by route class and status class; the URL itself is no label', async () => {
    const { metrics } = setup();
    metrics.requestServed('/ocsp/MEQwQjBAMD4', 200, 0.0008);
    metrics.requestServed('/ocsp', 200, 0.03);
    metrics.requestServed('/api/v1/certificates', 401, 0.002);
    const text = await metrics.text();
    expect(line(text, 'trellis_http_request_duration_seconds_bucket{le="0.001",route="ocsp",status_class="2xx"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_http_request_duration_seconds_bucket{le="0.05",route="ocsp",status_class="2xx"}')).toMatch(/ 2$/);
    expect(line(text, 'trellis_http_request_duration_seconds_count{route="ocsp",status_class="2xx"}')).toMatch(/ 2$/);
    expect(line(text, 'trellis_http_request_duration_seconds_count{route="api",status_class="4xx"}')).toMatch(/ 1$/);
    expect(text).not.toContain('MEQwQjBAMD4');
  });

  test('read at scrape time: CRL age from thisUpdate, key state as 1 for the current state and 0 for the others, OCSP stats', async () => {
    const { clock, crls, states, ocsp, metrics } = setup();
    Object.assign(ocsp, { lruHits: 7, dbHits: 3, signed: 5, lruEntries: 4 });
    let text = await metrics.text();
    expect(line(text, 'trellis_crl_age_seconds{ca="issuing-1",scope="shard-0"}')).toMatch(/ 90$/);
    expect(line(text, 'trellis_ca_key_state{ca="issuing-1",state="active"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_ca_key_state{ca="issuing-1",state="suspended"}')).toMatch(/ 0$/);
    expect(text).not.toContain('ca="root"'); // its state not read yet
    expect(line(text, 'trellis_ocsp_cache_hits_total{cache="memory"}')).toMatch(/ 7$/);
    expect(line(text, 'trellis_ocsp_cache_hits_total{cache="database"}')).toMatch(/ 3$/);
    expect(line(text, 'trellis_ocsp_responses_signed_total')).toMatch(/ 5$/);
    expect(line(text, 'trellis_ocsp_cache_entries')).toMatch(/ 4$/);

    clock.advance(10_000);
    crls[0] = { caId: 'issuing-1', scope: 'full', thisUpdate: new Date(t0.getTime()) };
    states[0] = { ca: 'issuing-1', state: 'suspended' };
    ocsp.lruHits = 9;
    text = await metrics.text();
    // A CRL no longer held is no longer reported.
    expect(text).not.toContain('scope="shard-0"');
    expect(line(text, 'trellis_crl_age_seconds{ca="issuing-1",scope="full"}')).toMatch(/ 10$/);
    expect(line(text, 'trellis_ca_key_state{ca="issuing-1",state="active"}')).toMatch(/ 0$/);
    expect(line(text, 'trellis_ca_key_state{ca="issuing-1",state="suspended"}')).toMatch(/ 1$/);
    expect(line(text, 'trellis_ocsp_cache_hits_total{cache="memory"}')).toMatch(/ 9$/);
  });

  test('process metrics unless left out; none of the gauges promtool flags for a _total suffix', async () => {
    const { metrics } = setup();
    expect(await metrics.text()).not.toContain('process_cpu_seconds_total');
    const withDefaults = new ServeMetrics({ now: () => t0, ocsp: () => ({ lruHits: 0, dbHits: 0, signed: 0, lruEntries: 0 }), crls: () => [], keyStates: async () => [] });
    const text = await withDefaults.text();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_active_handles');
    expect(text).not.toContain('nodejs_active_handles_total');
    expect(withDefaults.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});
