// A small MessagePack codec: exactly the types the hub's channel uses (maps, arrays,
// ints up to 64 bits, floats, str, bin, nil, bool). Written here rather than vendored
// because ~150 lines is less to audit than a general library, and it keeps `bin`
// payloads (the seat status array) as zero-copy Uint8Array views.

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

export class MsgpackError extends Error {}

/** Decode one MessagePack value from an ArrayBuffer or Uint8Array. */
export function decode(input) {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;

  function need(n) {
    if (pos + n > bytes.length) throw new MsgpackError("truncated msgpack data");
  }
  function str(n) {
    need(n);
    const s = utf8Decoder.decode(bytes.subarray(pos, pos + n));
    pos += n;
    return s;
  }
  function bin(n) {
    need(n);
    const b = bytes.subarray(pos, pos + n);
    pos += n;
    return b;
  }
  function array(n) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = value();
    return out;
  }
  function map(n) {
    // A plain object: keys are strings in this protocol (section names, field names).
    const out = {};
    for (let i = 0; i < n; i++) {
      const k = value();
      out[String(k)] = value();
    }
    return out;
  }
  function u8() { need(1); return view.getUint8(pos++); }
  function u16() { need(2); const v = view.getUint16(pos); pos += 2; return v; }
  function u32() { need(4); const v = view.getUint32(pos); pos += 4; return v; }

  function value() {
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return array(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: return bin(u16());
      case 0xc6: return bin(u32());
      case 0xca: { need(4); const v = view.getFloat32(pos); pos += 4; return v; }
      case 0xcb: { need(8); const v = view.getFloat64(pos); pos += 8; return v; }
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: { need(8); const v = view.getBigUint64(pos); pos += 8; return safeInt(v); }
      case 0xd0: { need(1); const v = view.getInt8(pos); pos += 1; return v; }
      case 0xd1: { need(2); const v = view.getInt16(pos); pos += 2; return v; }
      case 0xd2: { need(4); const v = view.getInt32(pos); pos += 4; return v; }
      case 0xd3: { need(8); const v = view.getBigInt64(pos); pos += 8; return safeInt(v); }
      case 0xd9: return str(u8());
      case 0xda: return str(u16());
      case 0xdb: return str(u32());
      case 0xdc: return array(u16());
      case 0xdd: return array(u32());
      case 0xde: return map(u16());
      case 0xdf: return map(u32());
      default: throw new MsgpackError(`unsupported msgpack type 0x${b.toString(16)}`);
    }
  }

  const result = value();
  if (pos !== bytes.length) throw new MsgpackError("trailing bytes after msgpack value");
  return result;
}

// Sequence numbers may start near the clock in milliseconds (after an inventory reload),
// well inside 2^53, so plain numbers are exact; anything larger stays a BigInt.
function safeInt(big) {
  return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(big)
    : big;
}

/** Encode a value (object, array, string, number, boolean, null, Uint8Array). */
export function encode(value) {
  const parts = [];
  let size = 0;
  const push = (arr) => { parts.push(arr); size += arr.length; };
  const head = (...b) => push(Uint8Array.from(b));

  function int(n) {
    if (n >= 0) {
      if (n <= 0x7f) head(n);
      else if (n <= 0xff) head(0xcc, n);
      else if (n <= 0xffff) head(0xcd, n >> 8, n & 0xff);
      else if (n <= 0xffffffff) { const b = new Uint8Array(5); b[0] = 0xce; new DataView(b.buffer).setUint32(1, n); push(b); }
      else { const b = new Uint8Array(9); b[0] = 0xcf; new DataView(b.buffer).setBigUint64(1, BigInt(n)); push(b); }
    } else if (n >= -32) head(n & 0xff);
    else if (n >= -0x80000000) { const b = new Uint8Array(5); b[0] = 0xd2; new DataView(b.buffer).setInt32(1, n); push(b); }
    else { const b = new Uint8Array(9); b[0] = 0xd3; new DataView(b.buffer).setBigInt64(1, BigInt(n)); push(b); }
  }
  function length(n, fix, fixMax, c8, c16, c32) {
    if (fix !== null && n <= fixMax) head(fix | n);
    else if (c8 !== null && n <= 0xff) head(c8, n);
    else if (n <= 0xffff) head(c16, n >> 8, n & 0xff);
    else { const b = new Uint8Array(5); b[0] = c32; new DataView(b.buffer).setUint32(1, n); push(b); }
  }
  function any(v) {
    if (v === null || v === undefined) head(0xc0);
    else if (v === true) head(0xc3);
    else if (v === false) head(0xc2);
    else if (typeof v === "number") {
      if (Number.isInteger(v)) int(v);
      else { const b = new Uint8Array(9); b[0] = 0xcb; new DataView(b.buffer).setFloat64(1, v); push(b); }
    } else if (typeof v === "string") {
      const s = utf8Encoder.encode(v);
      length(s.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      push(s);
    } else if (v instanceof Uint8Array) {
      length(v.length, null, 0, 0xc4, 0xc5, 0xc6);
      push(v);
    } else if (Array.isArray(v)) {
      length(v.length, 0x90, 15, null, 0xdc, 0xdd);
      v.forEach(any);
    } else if (typeof v === "object") {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      length(keys.length, 0x80, 15, null, 0xde, 0xdf);
      for (const k of keys) { any(k); any(v[k]); }
    } else throw new MsgpackError(`cannot encode ${typeof v}`);
  }

  any(value);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
