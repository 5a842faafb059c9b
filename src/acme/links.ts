/**
 * The ACME URL layout. Every URL is absolute and built from the instance's
 * base URL (`baseUrl` in trellis.json), never from a request's Host or
 * X-Forwarded-* headers: a directory is cacheable, so a URL taken from
 * Host would let anyone point other clients at a host of their choice. The
 * JWS "url" check (RFC 8555 §6.4) compares against the same URLs, so a
 * request signed for another name is refused.
 *
 *   /acme/directory                   directory of the default profile
 *   /acme/{profile}/directory         one directory per profile
 *   /acme/{profile}/new-nonce|new-account|new-order|revoke-cert|key-change
 *   /acme/{profile}/renewal-info/{id} RFC 9773
 *   /acme/acct/{id}[/orders]  /acme/order/{id}[/finalize]  /acme/authz/{id}
 *   /acme/chall/{authzId}/{type}      /acme/cert/{issuer}/{serial}[/{n}]
 */
export type DirectoryResource = 'new-nonce' | 'new-account' | 'new-order' | 'revoke-cert' | 'key-change' | 'renewal-info';

/** Absolute URLs under one base (scheme, host, port and any path prefix, without a trailing slash). */
export class Links {
  constructor(readonly origin: string) {}

  /** The links of a server whose public base URL is `baseUrl` (a trailing slash is dropped). */
  static fromBaseUrl(baseUrl: string): Links {
    return new Links(baseUrl.replace(/\/+$/, ''));
  }

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
