/**
 * The YAML form of a profile, checked strictly (unknown keys are errors at
 * every level) and turned into a {@link Profile}.
 */
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { extendedKeyUsageNames, keyUsageNames, subjectAttributes, type Profile } from './types.js';

const duration = z.string().transform((s, ctx) => {
  const v = parseDuration(s);
  if (v === null) ctx.addIssue({ code: 'custom', message: `"${s}" is not a duration (like 90d, 12h, 5m, 10y)` });
  return v ?? 0;
});
const regex = z.string().refine((p) => {
  try {
    new RegExp(p);
    return true;
  } catch {
    return false;
  }
}, 'invalid regular expression');
const cidr = z.string().refine((c) => {
  const [addr, bits, ...rest] = c.split('/');
  const v = isIP(addr ?? '');
  const n = Number(bits);
  if (!v || rest.length || !Number.isInteger(n) || n < 0 || n > (v === 4 ? 32 : 128)) return false;
  new BlockList().addSubnet(addr!, n, v === 4 ? 'ipv4' : 'ipv6');
  return true;
}, 'invalid CIDR (address/prefix)');
const oidString = z.string().regex(/^[0-2](\.(0|[1-9]\d*))+$/, 'not a dotted-decimal OID');
const attribute = z.enum(subjectAttributes);
const ncSet = z.object({ dns: z.array(z.string()).optional(), ip: z.array(cidr).optional(), email: z.array(z.string()).optional(), uri: z.array(z.string()).optional() }).strict();

export const profileYamlSchema = z
  .object({
    description: z.string(),
    signer: z.enum(['self', 'root', 'issuing']),
    keys: z
      .object({
        rsa: z.object({ minBits: z.number().int().min(2048).max(16384), maxBits: z.number().int().min(2048).max(16384) }).strict().optional(),
        ecdsa: z.array(z.enum(['P-256', 'P-384'])).optional(),
        ed25519: z.boolean().optional(),
      })
      .strict(),
    validity: z.object({ default: duration, max: duration, backdate: duration.default(0) }).strict(),
    keyUsage: z.array(z.enum(keyUsageNames)).min(1),
    extendedKeyUsage: z.array(z.enum(extendedKeyUsageNames)).optional(),
    basicConstraints: z.object({ ca: z.boolean(), pathLen: z.number().int().min(0).max(10).optional() }).strict(),
    subject: z
      .object({
        fixed: z.partialRecord(attribute, z.string().min(1)).default({}),
        allowed: z.array(attribute).default([]),
        required: z.array(attribute).default([]),
      })
      .strict(),
    san: z
      .object({
        required: z.boolean(),
        maxNames: z.number().int().min(0).max(1000),
        dns: z.object({ patterns: z.array(regex).min(1), allowWildcard: z.boolean().default(false) }).strict().optional(),
        ip: z.object({ cidrs: z.array(cidr).min(1) }).strict().optional(),
        uri: z.object({ patterns: z.array(regex).min(1) }).strict().optional(),
        email: z.object({ patterns: z.array(regex).min(1) }).strict().optional(),
      })
      .strict(),
    deviceId: z
      .object({ from: z.array(z.enum(['serialNumber', 'CN'])).min(1), pattern: regex, uriTemplate: z.string().includes('{id}', { message: 'must contain {id}' }) })
      .strict()
      .optional(),
    nameConstraints: z.object({ permitted: ncSet.optional(), excluded: ncSet.optional() }).strict().optional(),
    policies: z.array(oidString).default([]),
    urls: z.object({ ocsp: z.boolean(), caIssuers: z.boolean(), crl: z.boolean() }).strict(),
    ocspNoCheck: z.boolean().default(false),
  })
  .strict()
  .superRefine((p, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (p.validity.default > p.validity.max) issue(['validity', 'default'], 'default is longer than max');
    if (p.validity.max <= 0) issue(['validity', 'max'], 'must be positive');
    if (p.keys.rsa && p.keys.rsa.minBits > p.keys.rsa.maxBits) issue(['keys', 'rsa', 'minBits'], 'minBits is above maxBits');
    if (!p.keys.rsa && !p.keys.ecdsa?.length && !p.keys.ed25519) issue(['keys'], 'allows no key type');
    const ca = p.basicConstraints.ca;
    if (!ca && p.basicConstraints.pathLen !== undefined) issue(['basicConstraints', 'pathLen'], 'pathLen needs ca: true');
    if (!ca && p.nameConstraints) issue(['nameConstraints'], 'name constraints belong in CA profiles only');
    if (ca && !p.keyUsage.includes('keyCertSign')) issue(['keyUsage'], 'a CA profile needs keyCertSign');
    if (!ca && p.keyUsage.includes('keyCertSign')) issue(['keyUsage'], 'keyCertSign needs basicConstraints.ca: true');
    if (ca && p.signer === 'issuing') issue(['signer'], 'issuing CAs sign leaf certificates only (pathLen 0)');
    if (!ca && p.signer !== 'issuing') issue(['signer'], 'leaf profiles are signed by an issuing CA');
    for (const [i, a] of p.subject.required.entries()) if (!p.subject.allowed.includes(a) && !(a in p.subject.fixed)) issue(['subject', 'required', i], `${a} is required but neither allowed nor fixed`);
    for (const a of Object.keys(p.subject.fixed)) if (p.subject.allowed.includes(a as never)) issue(['subject', 'fixed', a], `${a} is both fixed and allowed`);
    if (p.san.required && p.san.maxNames === 0) issue(['san', 'maxNames'], 'SANs are required but maxNames is 0');
    if (p.ocspNoCheck && !p.extendedKeyUsage?.includes('OCSPSigning')) issue(['ocspNoCheck'], 'ocsp-nocheck is for OCSP responder certificates (EKU OCSPSigning)');
  });

/** Converts the checked YAML form into a Profile. */
export function toProfile(name: string, y: z.infer<typeof profileYamlSchema>): Profile {
  return {
    name,
    description: y.description,
    signer: y.signer,
    keys: y.keys,
    validity: { defaultSeconds: y.validity.default, maxSeconds: y.validity.max, backdateSeconds: y.validity.backdate },
    keyUsage: y.keyUsage,
    ...(y.extendedKeyUsage ? { extendedKeyUsage: y.extendedKeyUsage } : {}),
    basicConstraints: y.basicConstraints,
    subject: y.subject,
    san: y.san,
    ...(y.deviceId ? { deviceId: y.deviceId } : {}),
    ...(y.nameConstraints ? { nameConstraints: y.nameConstraints } : {}),
    policies: y.policies,
    urls: y.urls,
    ocspNoCheck: y.ocspNoCheck,
  };
}
