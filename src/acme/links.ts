/**
 * The ACME URL layout. Every URL is absolute and built from the origin the
 * client used (scheme and Host of the request), so the JWS "url" check
 * (RFC 8555 §6.4) compares like with like behind any port or name.
 *
 *   /acme/directory                   directory of the default profile
 *   /acme/{profile}/directory         one directory per profile
 *   /acme/{profile}/new-nonce|new-account|new-order|revoke-cert|key-change
 *   /acme/{profile}/renewal-info/{id} RFC 9773
 *   /acme/acct/{id}[/orders]  /acme/order/{id}[/finalize]  /acme/authz/{id}
 *   /acme/chall/{authzId}/{type}      /acme/cert/{issuer}/{serial}[/{n}]
 */
export type DirectoryResource = 'new-nonce' | 'new-account' | 'new-order' | 'revoke-cert' | 'key-change' | 'renewal-info';

/** Absolute URLs for one request's origin. */
export class Links {
  constructor(readonly origin: string) {}

  directory(profile: string): string {
    return `${this.origin}/acme/${profile}/directory`;
  }
  resource(profile: string, name: DirectoryResource): string {
    return `${this.origin}/acme/${profile}/${name}`;
  }
  account(id: string): string {
    return `${this.origin}/acme/acct/${id}`;
  }
  orders(accountId: string): string {
    return `${this.origin}/acme/acct/${accountId}/orders`;
  }
  order(id: string): string {
    return `${this.origin}/acme/order/${id}`;
  }
  finalize(orderId: string): string {
    return `${this.origin}/acme/order/${orderId}/finalize`;
  }
  authorization(id: string): string {
    return `${this.origin}/acme/authz/${id}`;
  }
  challenge(authzId: string, type: string): string {
    return `${this.origin}/acme/chall/${authzId}/${type}`;
  }
  certificate(issuerId: string, serialHex: string, alternate = 0): string {
    return `${this.origin}/acme/cert/${issuerId}/${serialHex}${alternate ? `/${alternate}` : ''}`;
  }

  /** The account id in a `kid` URL of this origin, or undefined. */
  accountIdOf(kid: string): string | undefined {
    const prefix = `${this.origin}/acme/acct/`;
    if (!kid.startsWith(prefix)) return undefined;
    const id = kid.slice(prefix.length);
    return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : undefined;
  }
}
