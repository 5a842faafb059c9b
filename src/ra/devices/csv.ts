/**
 * Factory lists for `trellis device import`: CSV text (RFC 4180: comma
 * separated, fields optionally in double quotes, a quote inside written
 * twice, quoted fields may hold commas and line breaks; CRLF or LF) with a
 * header naming `id` and optionally `profile`, `reprovision` and any
 * attribute columns. Line numbers are those of the file (a record that spans
 * lines counts from its first).
 */

/** One record of a CSV file: its fields and the line it starts on (1-based). */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** A line of the file and why it is refused. */
export interface LineProblem {
  line: number;
  reason: string;
}

/**
 * Splits CSV text into records. Empty lines are skipped; a UTF-8 BOM is
 * dropped. Malformed quoting (a quote inside an unquoted field, text after a
 * closing quote, a quote never closed) is a problem of the record's line;
 * the rest of the file is still read so every bad line can be reported.
 */
export function parseCsv(text: string): { records: CsvRecord[]; problems: LineProblem[] } {
  const records: CsvRecord[] = [];
  const problems: LineProblem[] = [];
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let i = 0;
  let line = 1;
  while (i < s.length) {
    const start = line;
    const fields: string[] = [];
    let problem: string | undefined;
    let field = '';
    let quoted = false;
    let afterQuote = false;
    let fieldStart = true;
    let blank = true;
    for (;;) {
      if (i >= s.length) {
        if (quoted) problem ??= 'a quoted field is never closed';
        break;
      }
      const c = s[i]!;
      if (quoted) {
        if (c === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            quoted = false;
            afterQuote = true;
            i += 1;
          }
        } else {
          // A line break inside quotes counts as one outside does: LF, CRLF (once) or a lone CR.
          if (c === '\n' || (c === '\r' && s[i + 1] !== '\n')) line += 1;
          field += c;
          i += 1;
        }
        continue;
      }
      if (c === '\r' && s[i + 1] === '\n') i += 1;
      if (c === '\n' || c === '\r') {
        i += 1;
        line += 1;
        break;
      }
      blank = false;
      i += 1;
      if (c === ',') {
        fields.push(field);
        field = '';
        afterQuote = false;
        fieldStart = true;
        continue;
      }
      if (c === '"' && fieldStart) {
        quoted = true;
        fieldStart = false;
        continue;
      }
      if (c === '"') problem ??= 'a double quote inside an unquoted field (quote the whole field and write the quote twice)';
      else if (afterQuote) problem ??= 'text after the closing quote of a field';
      fieldStart = false;
      field += c;
    }
    fields.push(field);
    if (blank && fields.length === 1 && field === '') continue;
    if (problem) problems.push({ line: start, reason: problem });
    else records.push({ line: start, fields });
  }
  return { records, problems };
}

/** One device line of a factory list. */
export interface DeviceLine {
  line: number;
  id: string;
  /** Absent: the import's default profile. */
  profile?: string;
  /** Absent: the default policy. */
  reprovision?: string;
  attributes: Record<string, string>;
}

/** Columns with a meaning of their own; every other header names an attribute. */
const reserved = new Set(['id', 'profile', 'reprovision']);
/** What an attribute name may be (the same as `--attr k=v` accepts). */
export const attributeNamePattern = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/;

/**
 * Reads a factory list: the header, then one device a record. An empty cell
 * leaves that column unset (an attribute is then absent). Problems here are
 * those of the file's form (header, field counts, quoting); what the values
 * mean (id pattern, profile, policy, duplicates) the registry checks.
 */
export function parseDeviceCsv(text: string): { devices: DeviceLine[]; problems: LineProblem[] } {
  const { records, problems } = parseCsv(text);
  const header = records.shift();
  if (!header) return { devices: [], problems: [...problems, { line: 1, reason: 'no header: the first line must name the columns, e.g. id,profile,model' }] };
  const names = header.fields.map((f) => f.trim());
  const headerProblems: string[] = [];
  if (!names.includes('id')) headerProblems.push('the header has no id column');
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) headerProblems.push(`column "${n}" appears twice`);
    seen.add(n);
    if (!reserved.has(n) && !attributeNamePattern.test(n)) headerProblems.push(`column "${n}" is not an attribute name (letters, digits, . _ - and space, at most 64)`);
  }
  if (headerProblems.length > 0) return { devices: [], problems: [{ line: header.line, reason: headerProblems.join('; ') }, ...problems] };

  const devices: DeviceLine[] = [];
  for (const r of records) {
    if (r.fields.length !== names.length) {
      problems.push({ line: r.line, reason: `${r.fields.length} fields where the header names ${names.length}` });
      continue;
    }
    const d: DeviceLine = { line: r.line, id: '', attributes: {} };
    names.forEach((name, k) => {
      const value = r.fields[k]!;
      if (name === 'id') d.id = value;
      else if (value === '') return;
      else if (name === 'profile') d.profile = value;
      else if (name === 'reprovision') d.reprovision = value;
      else d.attributes[name] = value;
    });
    devices.push(d);
  }
  problems.sort((a, b) => a.line - b.line);
  return { devices, problems };
}
