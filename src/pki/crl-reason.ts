/**
 * CRLReason (RFC 5280 §5.3.1). Value 7 is unused. `removeFromCRL` appears only
 * in delta CRLs, to lift a `certificateHold`.
 */
export const crlReasons = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type CrlReasonName = keyof typeof crlReasons;
export type CrlReasonCode = (typeof crlReasons)[CrlReasonName];

const byCode = new Map<number, CrlReasonName>(Object.entries(crlReasons).map(([k, v]) => [v, k as CrlReasonName]));

/** The name of a reason code, or undefined for codes RFC 5280 does not define. */
export const crlReasonName = (code: number): CrlReasonName | undefined => byCode.get(code);

export const isCrlReasonName = (s: string): s is CrlReasonName => Object.hasOwn(crlReasons, s);
