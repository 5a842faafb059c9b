/**
 * The rule for tests that need an outside tool or server: without it they
 * skip with a loud warning, unless TRELLIS_REQUIRE_INTEROP=1 (CI), which
 * turns the skip into a failure.
 */
export function interopAvailable(available: boolean, what: string, howTo: string): boolean {
  if (available) return true;
  if (process.env.TRELLIS_REQUIRE_INTEROP === '1') throw new Error(`TRELLIS_REQUIRE_INTEROP=1 but ${what} is missing (${howTo}): these tests cannot run`);
  console.warn(`\n*** SKIPPING tests that need ${what}: ${howTo} to run them ***\n`);
  return false;
}
