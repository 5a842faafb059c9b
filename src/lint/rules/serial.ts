import type { LintRule } from '../types.js';

/** RFC 5280 §4.1.2.2: positive, at most 20 octets; CA/B BR §7.1: at least 64 bits of CSPRNG output. */
export const serialNumber: LintRule = {
  id: 'e_serial_number_invalid',
  source: 'RFC 5280 §4.1.2.2; CA/B BR §7.1',
  check: ({ cert }) => {
    if (cert.serialContent.length > 20) return `serial is ${cert.serialContent.length} octets (max 20)`;
    if (cert.serial.every((b) => b === 0)) return 'serial is zero';
    if (cert.serial.length < 9) return `serial has ${cert.serial.length * 8} bits or fewer (need more than 64)`;
    return null;
  },
};
