/**
 * Protocol-buffer text format (the subset Triton's config.pbtxt files use), parsed and checked against message
 * types loaded by protobufjs, which reads .proto files but not the text format: every field must exist in its
 * message, enum values must be names of the field's enum, integers must fit their type, a singular field may be
 * given once, list syntax only for repeated fields, at most one member of a oneof. Gives a plain object (field
 * names as in the .proto, enums by name) that protobufjs' fromObject/verify accept.
 */
import protobuf from 'protobufjs';

type Token = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string; line: number };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s+|#[^\n]*|("(?:[^"\\\n]|\\.)*")|('(?:[^'\\\n]|\\.)*')|(-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)[fF]?)|([A-Za-z_][A-Za-z0-9_]*)|([{}[\]:,;<>])/y;
  let line = 1;
  while (re.lastIndex < text.length) {
    const at = re.lastIndex;
    const m = re.exec(text);
    if (!m) throw new Error(`line ${line}: unexpected character ${JSON.stringify(text[at])}`);
    if (m[1] ?? m[2]) tokens.push({ kind: 'string', text: m[1] ?? m[2]!, line });
    else if (m[3]) tokens.push({ kind: 'number', text: m[3], line });
    else if (m[4]) tokens.push({ kind: 'ident', text: m[4], line });
    else if (m[5]) tokens.push({ kind: 'punct', text: m[5], line });
    line += (m[0].match(/\n/g) ?? []).length;
  }
  return tokens;
}

function unquote(literal: string): string {
  return literal.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', '"': '"', "'": "'", '\\': '\\' } as Record<string, string>)[e] ?? e;
  });
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};

export function parseTextFormat(text: string, type: protobuf.Type): Record<string, unknown> {
  const tokens = tokenize(text);
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const fail = (message: string, t = peek()): never => {
    throw new Error(`${t ? `line ${t.line}` : 'end of input'}: ${message}`);
  };
  const expect = (punct: string): void => {
    const t = peek();
    if (!t || t.kind !== 'punct' || t.text !== punct) fail(`expected '${punct}'${t ? `, got '${t.text}'` : ''}`);
    i++;
  };
  const isPunct = (p: string): boolean => peek()?.kind === 'punct' && peek()!.text === p;

  const scalar = (field: protobuf.Field): unknown => {
    const t = peek() ?? fail('expected a value');
    i++;
    const resolved = field.resolve().resolvedType;
    if (resolved instanceof protobuf.Enum) {
      if (t.kind === 'ident' && t.text in resolved.values) return t.text;
      if (t.kind === 'number' && Object.values(resolved.values).includes(Number(t.text))) return resolved.valuesById[Number(t.text)];
      return fail(`${JSON.stringify(t.text)} is not a value of enum ${resolved.name} (${Object.keys(resolved.values).join(', ')})`, t);
    }
    switch (field.type) {
      case 'string':
      case 'bytes':
        if (t.kind !== 'string') return fail(`field ${field.name} takes a string, got ${t.text}`, t);
        return unquote(t.text);
      case 'bool':
        if (t.kind === 'ident' && ['true', 'false', 'True', 'False', 't', 'f'].includes(t.text)) return t.text[0]!.toLowerCase() === 't';
        if (t.kind === 'number' && (t.text === '0' || t.text === '1')) return t.text === '1';
        return fail(`field ${field.name} takes true or false, got ${t.text}`, t);
      case 'float':
      case 'double':
        if (t.kind === 'number') return Number(t.text.replace(/[fF]$/, ''));
        if (t.kind === 'ident' && /^-?(inf|infinity|nan)$/i.test(t.text)) return Number(t.text.replace(/inf(inity)?/i, 'Infinity').replace(/nan/i, 'NaN'));
        return fail(`field ${field.name} takes a number, got ${t.text}`, t);
      default: {
        const range = INT_RANGES[field.type];
        if (!range) return fail(`field ${field.name} has type ${field.type}, which this parser does not handle`, t);
        if (t.kind !== 'number' || !/^-?\d+$/.test(t.text)) return fail(`field ${field.name} takes an integer (${field.type}), got ${t.text}`, t);
        const v = BigInt(t.text);
        if (v < range[0] || v > range[1]) return fail(`${t.text} does not fit field ${field.name} (${field.type})`, t);
        return Number(v);
      }
    }
  };

  const message = (msgType: protobuf.Type, close: string | undefined): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const oneofSet = new Map<string, string>();
    for (;;) {
      const t = peek();
      if (!t) {
        if (close) fail(`expected '${close}'`);
        break;
      }
      if (close && t.kind === 'punct' && t.text === close) {
        i++;
        break;
      }
      if (t.kind !== 'ident') fail(`expected a field name, got '${t.text}'`);
      i++;
      const field = msgType.fields[t.text] ?? fail(`message ${msgType.fullName.slice(1)} has no field "${t.text}"`, t);
      const resolved = field.resolve().resolvedType;
      const isMessage = resolved instanceof protobuf.Type;
      if (field.partOf) {
        const other = oneofSet.get(field.partOf.name);
        if (other && other !== field.name) fail(`fields ${other} and ${field.name} are both in oneof ${field.partOf.name}`, t);
        oneofSet.set(field.partOf.name, field.name);
      }
      if (isPunct(':')) i++;
      else if (!isMessage) fail(`expected ':' after ${field.name}`);
      const one = (): unknown => {
        if (isMessage) {
          const open = peek();
          if (!open || open.kind !== 'punct' || (open.text !== '{' && open.text !== '<')) return fail(`field ${field.name} takes a message in { }`);
          i++;
          return message(resolved, open.text === '{' ? '}' : '>');
        }
        return scalar(field);
      };
      const values: unknown[] = [];
      if (isPunct('[')) {
        if (!field.repeated) fail(`field ${field.name} is not repeated; list syntax [ ] is not allowed`);
        i++;
        while (!isPunct(']')) {
          values.push(one());
          if (isPunct(',')) i++;
          else if (!isPunct(']')) fail(`expected ',' or ']' in the list of ${field.name}`);
        }
        i++;
      } else {
        values.push(one());
      }
      if (field.repeated) {
        out[field.name] = [...((out[field.name] as unknown[] | undefined) ?? []), ...values];
      } else {
        if (field.name in out) fail(`field ${field.name} is given twice but is not repeated`, t);
        out[field.name] = values[0];
      }
      if (isPunct(',') || isPunct(';')) i++;
    }
    return out;
  };

  const result = message(type, undefined);
  const problem = type.verify(type.fromObject(result));
  if (problem) throw new Error(`the parsed message does not verify: ${problem}`);
  return result;
}

/** Loads a .proto file keeping the field names as written (protobufjs camel-cases them by default). */
export function loadProto(path: string): protobuf.Root {
  return new protobuf.Root().loadSync(path, { keepCase: true });
}
