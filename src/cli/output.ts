/** Human and JSON output for commands. */
export interface Output {
  json: boolean;
  /** Prints the human line(s) unless --json. */
  say(text: string): void;
  /** Prints the machine-readable result when --json. */
  result(value: unknown): void;
}

export function output(json: boolean, out: NodeJS.WritableStream = process.stdout): Output {
  return {
    json,
    say: (text) => {
      if (!json) out.write(text.endsWith('\n') ? text : text + '\n');
    },
    result: (value) => {
      if (json) out.write(JSON.stringify(value, null, 2) + '\n');
    },
  };
}
