/** Inline profiles for unit tests that must not depend on the shipped YAML files. */
import type { Profile } from '../../src/profiles/types.js';

const base: Omit<Profile, 'name'> = {
  description: 'test',
  signer: 'issuing',
  keys: { rsa: { minBits: 2048, maxBits: 4096 }, ecdsa: ['P-256', 'P-384'], ed25519: true },
  validity: { defaultSeconds: 90 * 86400, maxSeconds: 398 * 86400, backdateSeconds: 300 },
  keyUsage: ['digitalSignature'],
  extendedKeyUsage: ['serverAuth'],
  basicConstraints: { ca: false },
  subject: { fixed: {}, allowed: ['CN'], required: [] },
  san: { required: true, maxNames: 3, dns: { patterns: ['\\.example\\.test$'], allowWildcard: false }, ip: { cidrs: ['192.0.2.0/24', '2001:db8::/32'] } },
  policies: [],
  urls: { ocsp: true, caIssuers: true, crl: true },
  ocspNoCheck: false,
  enrollment: ['api', 'acme'],
};

export const serverProfile: Profile = { name: 'server', ...base };

export const deviceProfile: Profile = {
  ...base,
  name: 'device',
  extendedKeyUsage: ['clientAuth'],
  subject: { fixed: { O: 'Devices' }, allowed: ['CN', 'serialNumber'], required: [] },
  san: { required: false, maxNames: 2, uri: { patterns: ['^urn:dev:trellis:'] } },
  deviceId: { from: ['serialNumber', 'CN'], pattern: '^[A-Za-z0-9._:-]{1,64}$', uriTemplate: 'urn:dev:trellis:{id}' },
};
