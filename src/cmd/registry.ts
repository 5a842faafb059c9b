/**
 * The command table of `trellis` and its help text. Only the table's
 * loaders import a command's module, so `trellis --help` (and a usage error)
 * never loads @peculiar/x509, pkijs, Prisma or express; registry.test.ts
 * checks both, and that the help names every command.
 */

/** The text of `trellis --help`. */
export const usage = `trellis: open-source private PKI

Usage: trellis <command> [options]

Set-up and service
  quickstart                 init a CA in ./trellis-data when there is none, then serve it
  init --yes                 create data dir, database, root CA (P-384), issuing CA (P-256), OCSP responder
       [--data DIR] [--base-url URL] [--db URL] [--passphrase-file FILE] [--root-passphrase-file FILE]
  serve [--host H] [--port P] [--tls] [--workers N] [--trusted-proxy CIDR ...]
                             serve the API (default 127.0.0.1:8080); GET /healthz when ready;
                             X-Forwarded-For is believed only from the --trusted-proxy addresses
  db migrate                 apply database migrations (idempotent)

Certificates
  issue --profile P --csr FILE [--out FILE] [--format pem|der] [--ca ID] [--validity 30d]
                             issue from a CSR; prints the PEM chain, leaf first
  issue --profile P --generate-key --subject 'serialNumber=ID' --p12 FILE --p12-passphrase-file F
                             Trellis makes a P-256 key; key and chain go only into FILE (PKCS#12,
                             AES-256/PBKDF2, mode 0600, never overwritten)
  ca cert [--root | --ca ID] PEM of the issuing CA (or the root)
  ca list                    all CAs with state, validity and fingerprints
  ca rotate --ca ID [--at ISO] [--new-id ID2] [--validity 5y]
                             a successor (new key, same subject, same parent) takes over issuance now or at
                             --at; the old key is deactivated but keeps signing CRLs and OCSP (parent's secret)
  ca renew --ca ID [--parent ROOT] [--validity 5y]
                             a new certificate for the same key, from its parent or a new root
  key list                   CA keys: algorithm, where they live, NIST SP 800-57 state and since when
  key activate|suspend|deactivate|compromise|destroy --ca ID [--reason TEXT]
                             move a CA key to another state (audited; compromise revokes an issuing CA)
  token create --role administrator|officer|auditor|enrollment [--name NAME] [--profile P ...] [--expires 90d]
                             create an API token (shown once), limited to profiles, expiring
  token list                 tokens: role, profiles, created, expires, last used, revoked (never the secret)
  token revoke --id ID       refuse a token from the next request on, on every server
  revoke --serial HEX [--reason REASON] [--invalidity-date ISO] [--ca ID]
                             revoke (reasons: RFC 5280; certificateHold suspends, removeFromCRL lifts it)
  crl publish [--out DIR] [--root]
                             regenerate every CRL (shards, full, delta) and write DER + PEM files

ACME (served by \`serve\` at /acme/directory and /acme/{profile}/directory)
  serve [--acme-http01-port N] [--acme-tlsalpn01-port N] [--acme-resolver HOST:PORT]
        [--acme-allow-address CIDR ...]
                             where challenges are validated; loopback and private ranges are denied unless allowed
  acme eab create [--directory PROFILE]
                             external account binding key id + HMAC key (shown once, one account)
  acme eab list              EAB keys and the accounts they created
  acme renew-early (--serial HEX ... | --ca ID | --profile P | --issued-before ISO | --all) [--within 1h]
                             pull the ARI renewal window of those certificates forward to now

Devices (registry; enrollment secrets are shown once and stored only as a hash)
  device register --id ID [--profile device] [--attr k=v ...] [--reprovision never|reset|migrate]
                             register one device; prints its one-time enrollment secret
  device import --csv FILE [--secrets-out FILE]
                             a factory list (header id[,profile][,reprovision][,attribute...]), all or nothing;
                             secrets only with --secrets-out (a new file, mode 0600)
  device list [--status S]   devices in id order (registered, active, disabled, retired)
  device show --id ID        one device (never its secret)
  device disable|enable|retire --id ID
                             retire is final and revokes its certificates (cessationOfOperation)
  device trust-manufacturer --ca FILE --name NAME
                             trust a manufacturer CA whose certificates are factory identities (IDevIDs)

Ceremonies
  ceremony root --id ID --cn NAME [--o ORG] [--algorithm ecdsa-p384] [--validity 20y] [--path-len N]
  ceremony issuing --id ID --cn NAME [--parent root] [--algorithm ecdsa-p256] [--validity 5y] [--path-len N]
       [--profile P] [--subject-attr NAME=VALUE ...]
                             (both) a CA profile other than root-ca / issuing-ca, and attributes it
                             declares in subject.attributes (e.g. --subject-attr matterVID=FFF1)
  ceremony issuing --id ID --cn NAME --csr-out FILE          (offline root, step 1)
  ceremony issuing --id ID --import-cert FILE --root-cert FILE (offline root, step 2)
  ceremony root-rollover --id ID --cn NAME --out-dir DIR [--old root] [--algorithm ecdsa-p384]
                             a new root and cross certificates both ways (old root's secret, and the new
                             one from TRELLIS_NEW_ROOT_PASSPHRASE or --new-root-passphrase-file)
  ceremony protect-root [--id root]
                             move a root made before roots had their own passphrase under one
  audit verify [--checkpoint FILE ...] [--root-cert FILE]
                             check the audit chain and signed checkpoints; name the first event tampered with
  audit checkpoint [--out FILE]
                             sign a checkpoint over the audit log now; print or write it as a file
  audit signer create [--rotate] [--ca ROOT]
                             new audit signing key, certified by the root (root passphrase)
  ceremony split-root-secret --shares N --threshold M --out-dir DIR
                             split the root passphrase into N share files, any M of which rebuild it;
                             root operations then take --share FILE (repeatable) instead of the passphrase
  backup create --out FILE   encrypted backup (root passphrase) of config, profiles and every table
  backup restore --in FILE --data DIR [--database-url URL]
                             restore into an empty directory (and empty database); see docs/backup.md

Separation of duties (M of N custodians; M is quorum.threshold in trellis.json; docs/ceremonies/quorum.md)
  custodian add --name N [--key-file PUB.pem]
                             a custodian with a passphrase (TRELLIS_CUSTODIAN_PASSPHRASE, --passphrase-file,
                             prompt) or an Ed25519/P-256 public key
  custodian list | custodian remove --name N
  quorum request --op OP [--param k=v ...] [--ttl 1h]
                             ask for approvals of one operation with exactly these parameters; prints its id
  quorum approve --request ID --custodian NAME [--key FILE [--out approval.json]]
                             approve on this instance (passphrase or key), or write a signed approval file
  quorum approve --request-file FILE --custodian NAME --key FILE --out approval.json
                             sign away from the instance (FILE: quorum show --json)
  quorum submit --in approval.json | quorum show --request ID

Every data command takes --data DIR (env TRELLIS_DATA, default ./trellis-data) and --json.
The online passphrase (issuing CA keys) comes from TRELLIS_PASSPHRASE, --passphrase-file FILE, or a prompt.
The root passphrase (root key, ceremonies only; never serve) comes from TRELLIS_ROOT_PASSPHRASE,
--root-passphrase-file FILE, or a prompt; init and quickstart generate one when none is given.
`;

/** What a command module exports. */
export interface CommandModule {
  run(argv: string[]): Promise<number | void>;
}

/** Every command: its name and how to load its module (imported only when that command runs). */
export const commands: Record<string, () => Promise<CommandModule>> = {
  init: () => import('./commands/init.js'),
  quickstart: () => import('./commands/serve.js').then((m) => ({ run: m.runQuickstart })),
  serve: () => import('./commands/serve.js'),
  issue: () => import('./commands/issue.js'),
  ca: () => import('./commands/ca.js'),
  token: () => import('./commands/token.js'),
  key: () => import('./commands/key.js'),
  revoke: () => import('./commands/revoke.js'),
  crl: () => import('./commands/crl.js'),
  ceremony: () => import('./commands/ceremony.js'),
  db: () => import('./commands/db.js'),
  audit: () => import('./commands/audit.js'),
  acme: () => import('./commands/acme.js'),
  device: () => import('./commands/device.js'),
  custodian: () => import('./commands/custodian.js'),
  quorum: () => import('./commands/quorum.js'),
  backup: () => import('./commands/backup.js'),
};
