/**
 * The extensions of a certificate, from its profile. Everything that does not
 * depend on the subject is encoded once per (issuer, profile) and reused.
 */
import type { GeneralName } from '../pki/general-name.js';
import {
  authorityInfoAccessExtension, authorityKeyIdentifierExtension, basicConstraintsExtension, certificatePoliciesExtension,
  crlDistributionPointsExtension, extKeyUsageExtension, keyUsageExtension, nameConstraintsExtension, ocspNoCheckExtension,
  subjectAltNameExtension, subjectKeyIdentifierExtension,
} from '../pki/extensions.js';
import { OID } from '../pki/oids.js';
import type { Profile } from '../profiles/types.js';
import { keyIdentifierOf, type CaUrls } from './issuer.js';

/** What the template needs to know about the signer. */
export interface SignerInfo {
  id: string;
  keyIdentifier: Buffer;
}

/** Cached extension encodings for one (issuer, profile) pair. */
export class ExtensionTemplate {
  private readonly head: Buffer[];
  private readonly tail: Buffer[];
  private readonly aki: Buffer;
  private readonly crlDp = new Map<number, Buffer>();

  constructor(
    private readonly signer: SignerInfo,
    private readonly profile: Profile,
    private readonly urls: CaUrls,
  ) {
    const { basicConstraints: bc } = profile;
    this.head = [basicConstraintsExtension(bc.ca, bc.pathLen), keyUsageExtension(profile.keyUsage)];
    if (profile.extendedKeyUsage?.length) this.head.push(extKeyUsageExtension(profile.extendedKeyUsage.map((n) => OID[n])));
    this.aki = authorityKeyIdentifierExtension(signer.keyIdentifier);
    this.tail = [];
    if (profile.urls.ocsp || profile.urls.caIssuers) {
      this.tail.push(authorityInfoAccessExtension({
        ...(profile.urls.ocsp ? { ocsp: urls.ocsp() } : {}),
        ...(profile.urls.caIssuers ? { caIssuers: urls.caIssuers(signer.id) } : {}),
      }));
    }
    if (profile.ocspNoCheck) this.tail.push(ocspNoCheckExtension());
    if (profile.nameConstraints) this.tail.push(nameConstraintsExtension(profile.nameConstraints.permitted, profile.nameConstraints.excluded));
  }

  /** Extensions in a fixed order: BC, KU, EKU, SKI, AKI, SAN, policies, CRL DP, AIA, nocheck, name constraints. */
  build(subjectPublicKey: Buffer, sans: readonly GeneralName[], subjectEmpty: boolean, shard: number): Buffer[] {
    const out = [...this.head, subjectKeyIdentifierExtension(keyIdentifierOf(subjectPublicKey)), this.aki];
    if (sans.length) out.push(subjectAltNameExtension([...sans], subjectEmpty));
    if (this.profile.policies.length) out.push(certificatePoliciesExtension(this.profile.policies));
    if (this.profile.urls.crl) out.push(this.crlDistributionPoint(shard));
    out.push(...this.tail);
    return out;
  }

  private crlDistributionPoint(shard: number): Buffer {
    let ext = this.crlDp.get(shard);
    if (!ext) this.crlDp.set(shard, (ext = crlDistributionPointsExtension(this.urls.crl(this.signer.id, shard))));
    return ext;
  }
}
