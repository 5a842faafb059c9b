/**
 * The YAML form of a profile. Every object is `.strict()`, so a misspelt key
 * is an error rather than a silently ignored setting, and the checked file is
 * turned into the {@link Profile} the RA and CA core read. Rules that relate
 * fields to each other live in `rules.ts`.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { checkProfileRules } from './rules.js';
import { cidrProblem, dnsConstraintProblem, emailConstraintProblem, oidProblem, patternProblem, uriConstraintProblem } from './values.js';
import { enrollmentChannels, extendedKeyUsageNames, keyUsageNames, type Profile, type SubjectAttributeDefinition, type SubjectKey } from './types.js';

/** A profile without its name; the name comes from the file name. */
export type ProfileBody = Omit<Profile, 'name'>;

const duration = z.string({ error: (iss) => (iss.input === undefined ? 'is missing' : 'expected a duration such as 90d, 12h or 10y') }).transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === null) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration: write a whole number and one unit of s, m, h, d, y (e.g. 90d, 12h, 10y)` });
    return z.NEVER;
  }
  return seconds;
});

/** A string that `problem` accepts (it returns null) or the reason it does not. */
const checked = (problem: (text: string) => string | null) =>
  z.string().check((ctx) => {
    const why = problem(ctx.value);
    if (why !== null) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  });

const pattern = checked(patternProblem);
const cidr = checked(cidrProblem);
const oid = checked(oidProblem);

/** An array whose items may not repeat; the repeat is reported at its own index. */
const uniqueArray = <T extends z.ZodType>(item: T) =>
  z.array(item).check((ctx) => {
    const seen = new Set<string>();
    ctx.value.forEach((v, i) => {
      const key = JSON.stringify(v);
      if (seen.has(key)) ctx.issues.push({ code: 'custom', message: `${key} is listed more than once`, path: [i], input: v });
      seen.add(key);
    });
  });

// CA/B BR §6.1.5: RSA moduli of at least 2048 bits; 16384 bounds the work a
// single request can cost the RA and CA (parsing and verifying a huge modulus).
const rsaBits = z
  .number()
  .int()
  .min(2048, 'RSA keys under 2048 bits are refused (CA/B BR §6.1.5)')
  .max(16384, 'RSA keys over 16384 bits are refused');

/**
 * A subject attribute in fixed/allowed/required: a standard short name or a
 * name declared in `subject.attributes` (rules.ts checks which, as it needs the list).
 */
const attribute = z.string();

/** `{ name, oid, pattern, encoding }`: an attribute type named by OID (rules.ts checks names and OIDs against the standard ones). */
const subjectAttributeDefinition = z
  .object({
    name: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'must be a letter followed by letters, digits or dashes (at most 64 characters)'),
    oid: z
      .string({ error: (iss) => (iss.input === undefined ? 'is missing' : 'expected a dotted-decimal OID such as 1.3.6.1.4.1.37244.2.1 (quote an OID with a single dot: "2.5")') })
      .check((ctx) => {
        const why = oidProblem(ctx.value);
        if (why !== null) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
      }),
    pattern,
    encoding: z.enum(['utf8']).optional(),
  })
  .strict();
const nonBlank = z.string().refine((s) => s.trim().length > 0, 'must not be empty');

// GeneralSubtrees ::= SEQUENCE SIZE (1..MAX) OF GeneralSubtree: a listed type is never empty.
const nameConstraintSet = z
  .object({
    dns: uniqueArray(checked(dnsConstraintProblem)).min(1).optional(),
    ip: uniqueArray(cidr).min(1).optional(),
    email: uniqueArray(checked(emailConstraintProblem)).min(1).optional(),
    uri: uniqueArray(checked(uriConstraintProblem)).min(1).optional(),
  })
  .strict();

/** The object shape of a profile file, before the cross-field rules. */
export const profileFileShape = z
  .object({
    description: nonBlank,
    signer: z.enum(['self', 'root', 'issuing']),
    keys: z
      .object({
        rsa: z.object({ minBits: rsaBits, maxBits: rsaBits }).strict().optional(),
        ecdsa: uniqueArray(z.enum(['P-256', 'P-384'])).optional(),
        ed25519: z.boolean().optional(),
      })
      .strict(),
    validity: z.object({ default: duration, max: duration, backdate: duration.optional() }).strict(),
    keyUsage: uniqueArray(z.enum(keyUsageNames)).min(1, 'at least one key usage is needed (RFC 5280 §4.2.1.3)'),
    extendedKeyUsage: uniqueArray(z.enum(extendedKeyUsageNames)).optional(),
    // Trellis runs two levels (root, issuing); a pathLen above 8 is a typo, not a design.
    basicConstraints: z.object({ ca: z.boolean(), pathLen: z.number().int().min(0).max(8).optional() }).strict(),
    subject: z
      .object({
        attributes: uniqueArray(subjectAttributeDefinition).optional(),
        fixed: z.record(attribute, z.string()).optional(),
        allowed: uniqueArray(attribute),
        required: uniqueArray(attribute).optional(),
      })
      .strict(),
    san: z
      .object({
        required: z.boolean(),
        maxNames: z.number().int().min(0).max(1000),
        dns: z.object({ patterns: uniqueArray(pattern).min(1), allowWildcard: z.boolean() }).strict().optional(),
        ip: z.object({ cidrs: uniqueArray(cidr).min(1) }).strict().optional(),
        uri: z.object({ patterns: uniqueArray(pattern).min(1) }).strict().optional(),
        email: z.object({ patterns: uniqueArray(pattern).min(1) }).strict().optional(),
      })
      .strict(),
    deviceId: z
      .object({
        from: uniqueArray(z.enum(['serialNumber', 'CN'])).min(1),
        pattern,
        uriTemplate: z.string(),
      })
      .strict()
      .optional(),
    nameConstraints: z.object({ permitted: nameConstraintSet.optional(), excluded: nameConstraintSet.optional() }).strict().optional(),
    // RFC 5280 §4.2.1.4: a policy OID appears at most once.
    policies: uniqueArray(oid).optional(),
    urls: z.object({ ocsp: z.boolean(), caIssuers: z.boolean(), crl: z.boolean() }).strict(),
    ocspNoCheck: z.boolean().optional(),
    // Absent = no channel: least privilege, only the operator's `trellis issue` may use the profile.
    enrollment: uniqueArray(z.enum(enrollmentChannels)).optional(),
  })
  .strict();

/** A profile file after the per-field checks (durations already in seconds). */
export type ProfileFile = z.output<typeof profileFileShape>;

/**
 * Strict schema for one profile file: per-field checks, then the cross-field
 * rules of `rules.ts`, then the conversion into a {@link ProfileBody}.
 * Optional YAML keys get their defaults here: backdate 0s, fixed {},
 * required [], encoding utf8, policies [], ocspNoCheck false, enrollment []; no
 * declared attributes leave `subject.attributes` out.
 */
export const profileFileSchema = profileFileShape
  .superRefine((file, ctx) => checkProfileRules(file, (path, message) => ctx.addIssue({ code: 'custom', path, message })))
  .transform(toProfileBody);

function toProfileBody(f: ProfileFile): ProfileBody {
  return {
    description: f.description,
    signer: f.signer,
    keys: {
      ...(f.keys.rsa ? { rsa: f.keys.rsa } : {}),
      ...(f.keys.ecdsa ? { ecdsa: f.keys.ecdsa } : {}),
      ...(f.keys.ed25519 !== undefined ? { ed25519: f.keys.ed25519 } : {}),
    },
    validity: { defaultSeconds: f.validity.default, maxSeconds: f.validity.max, backdateSeconds: f.validity.backdate ?? 0 },
    keyUsage: f.keyUsage,
    ...(f.extendedKeyUsage ? { extendedKeyUsage: f.extendedKeyUsage } : {}),
    basicConstraints: { ca: f.basicConstraints.ca, ...(f.basicConstraints.pathLen !== undefined ? { pathLen: f.basicConstraints.pathLen } : {}) },
    subject: subjectOf(f.subject),
    san: {
      required: f.san.required,
      maxNames: f.san.maxNames,
      ...(f.san.dns ? { dns: f.san.dns } : {}),
      ...(f.san.ip ? { ip: f.san.ip } : {}),
      ...(f.san.uri ? { uri: f.san.uri } : {}),
      ...(f.san.email ? { email: f.san.email } : {}),
    },
    ...(f.deviceId ? { deviceId: f.deviceId } : {}),
    ...(f.nameConstraints ? { nameConstraints: f.nameConstraints } : {}),
    policies: f.policies ?? [],
    urls: f.urls,
    ocspNoCheck: f.ocspNoCheck ?? false,
    enrollment: f.enrollment ?? [],
  };
}

/** The subject with declared attribute names replaced by their OIDs (the key requests and certificates use). */
function subjectOf(s: ProfileFile['subject']): ProfileBody['subject'] {
  const attributes: SubjectAttributeDefinition[] = (s.attributes ?? []).map((a) => ({ name: a.name, oid: a.oid as SubjectAttributeDefinition['oid'], pattern: a.pattern, encoding: a.encoding ?? 'utf8' }));
  const keyOf = (name: string): SubjectKey => (attributes.find((a) => a.name === name)?.oid ?? name) as SubjectKey;
  return {
    fixed: Object.fromEntries(Object.entries(s.fixed ?? {}).map(([k, v]) => [keyOf(k), v])),
    allowed: s.allowed.map(keyOf),
    required: (s.required ?? []).map(keyOf),
    ...(attributes.length ? { attributes } : {}),
  };
}
