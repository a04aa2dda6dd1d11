// CBOR (RFC 8949), as much of it as AWS IoT MQTT file streams use. A block request is one map of text keys to
// integers, text, bytes and booleans, encoded into a buffer the caller reuses. A reply decodes like JSON.parse
// would, except that a byte string comes back as a view into the input, so a block's payload is never copied.

import { isWellFormedUtf8, utf8Length, utf8Read, utf8Write } from "./utf8";

export type CborField = number | string | boolean | Uint8Array;
export type CborFields = { readonly [key: string]: CborField };
export type CborValue = number | string | boolean | null | Uint8Array | CborValue[] | { [key: string]: CborValue };

const maxDepth = 8;

function headSize(n: number): number {
	return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n <= 0xffffffff ? 5 : 9;
}

function fieldSize(value: CborField): number {
	if (typeof value === "number") {
		if (!Number.isSafeInteger(value)) throw new Error("bad cbor value");
		return headSize(value < 0 ? -1 - value : value);
	}
	if (typeof value === "boolean") return 1;
	const length = typeof value === "string" ? utf8Length(value) : value.length;
	return headSize(length) + length;
}

/** The bytes encodeCbor writes for `map`. */
export function cborSize(map: CborFields): number {
	const keys = Object.keys(map);
	let size = headSize(keys.length);
	for (let i = 0; i < keys.length; i++)
		size += fieldSize(keys[i]) + fieldSize(map[keys[i]]);
	return size;
}

function putUint(value: number, bytes: number, into: Uint8Array, at: number): number {
	for (let shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
		into[at++] = value >>> shift;
	return at;
}

/** Writes a head with argument `n` at `at`, after checking that it and `content` more bytes fit; returns the offset after it. */
export function putHead(major: number, n: number, content: number, into: Uint8Array, at: number): number {
	const size = headSize(n);
	if (at + size + content > into.length) throw new Error("cbor buffer too small");
	if (size === 1) {
		into[at] = major | n;
		return at + 1;
	}
	into[at++] = major | (size === 2 ? 24 : size === 3 ? 25 : size === 5 ? 26 : 27);
	if (size < 9) return putUint(n, size - 1, into, at);
	// Shifts see 32 bits: the high word comes from a division, and >>> then takes the low word.
	return putUint(n, 4, into, putUint(Math.floor(n / 0x100000000), 4, into, at));
}

/** Writes one integer, boolean, text or byte string at `at`; returns the offset after it. */
export function putField(value: CborField, into: Uint8Array, at: number): number {
	if (typeof value === "number") {
		if (!Number.isSafeInteger(value)) throw new Error("bad cbor value");
		return value < 0 ? putHead(0x20, -1 - value, 0, into, at) : putHead(0x00, value, 0, into, at);
	}
	if (typeof value === "boolean") return putHead(0xe0, value ? 21 : 20, 0, into, at);
	if (typeof value === "string") {
		const length = utf8Length(value);
		return utf8Write(value, into, putHead(0x60, length, length, into, at));
	}
	at = putHead(0x40, value.length, value.length, into, at);
	into.set(value, at);
	return at + value.length;
}

/** Writes `map` at the start of `into` and returns its length; cborSize says how much room it needs. */
export function encodeCbor(map: CborFields, into: Uint8Array): number {
	const keys = Object.keys(map);
	let at = putHead(0xa0, keys.length, 0, into, 0);
	for (let i = 0; i < keys.length; i++)
		at = putField(map[keys[i]], into, putField(keys[i], into, at));
	return at;
}

// The decoder's cursor lives here rather than in an object so that a decode allocates only what it returns.
const none = new Uint8Array(0);
let input: Uint8Array = none;
let at = 0;
let extended = false;

function fail(): never {
	throw new Error("bad cbor");
}

function need(bytes: number): void {
	if (bytes > input.length - at) fail();
}

// The argument of a head; -1 for an indefinite length.
function argument(info: number): number {
	if (info < 24) return info;
	if (info === 31) return -1;
	if (info > 27) fail();
	const bytes = 1 << (info - 24);
	need(bytes);
	let value = 0;
	for (let i = 0; i < bytes; i++)
		value = value * 256 + input[at++];
	// Above 2^53 the sum rounds, but never below 2^53: the test still holds.
	if (value > Number.MAX_SAFE_INTEGER) fail();
	return value;
}

// Consumes the break that ends an indefinite-length container, if it comes next.
function atBreak(): boolean {
	need(1);
	if (input[at] !== 0xff) return false;
	at++;
	return true;
}

function item(depth: number): CborValue {
	need(1);
	const initial = input[at++];
	const major = initial >> 5;
	if (major === 7) {
		if (initial === 0xf4) return false;
		if (initial === 0xf5) return true;
		if (initial === 0xf6) return null;
		if (extended && initial >= 0xf9 && initial <= 0xfb) return float(initial);
		fail();
	}
	const n = argument(initial & 0x1f);
	// Indefinite-length strings arrive in chunks that no single view could cover.
	if (n < 0 && major < 4) fail();
	switch (major) {
	case 0:
		return n;
	case 1:
		if (n === Number.MAX_SAFE_INTEGER) fail();
		return -1 - n;
	case 2:
		need(n);
		at += n;
		return input.subarray(at - n, at);
	case 3:
		need(n);
		if (!isWellFormedUtf8(input, at, at + n)) fail();
		at += n;
		return utf8Read(input, at - n, at);
	case 4: {
		if (depth === maxDepth) fail();
		// Every item takes a byte at least: a count the input cannot hold fails before any work (-1 passes).
		need(n);
		const array: CborValue[] = [];
		while (n < 0 ? !atBreak() : array.length < n)
			array.push(item(depth + 1));
		return array;
	}
	case 5: {
		if (depth === maxDepth) fail();
		need(2 * n);
		const map: { [key: string]: CborValue } = {};
		for (let i = 0; n < 0 ? !atBreak() : i < n; i++) {
			need(1);
			const keyMajor = input[at] >> 5;
			if (keyMajor !== 3 && !(extended && keyMajor < 2)) fail();
			const key = String(item(depth + 1));
			// A repeated key would let two readers of one reply see different values.
			if (Object.prototype.hasOwnProperty.call(map, key)) fail();
			const value = item(depth + 1);
			// As JSON.parse does: "__proto__" becomes an own property, not the object's prototype.
			if (key === "__proto__") Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
			else map[key] = value;
		}
		return map;
	}
	default:
		// Tags are not used by AWS streams.
		return fail();
	}
}

// Half, single and double precision floats (RFC 8949 §3.3 and Appendix D).
function float(initial: number): number {
	const bytes = initial === 0xf9 ? 2 : initial === 0xfa ? 4 : 8;
	need(bytes);
	const view = new DataView(input.buffer, input.byteOffset + at, bytes);
	at += bytes;
	if (bytes === 4) return view.getFloat32(0);
	if (bytes === 8) return view.getFloat64(0);
	const half = view.getUint16(0), exponent = (half >> 10) & 0x1f, fraction = half & 0x3ff;
	const magnitude = exponent === 0 ? fraction * 2 ** -24 : exponent === 31 ? (fraction ? NaN : Infinity) : (fraction + 1024) * 2 ** (exponent - 25);
	return half & 0x8000 ? -magnitude : magnitude;
}

/**
 * Decodes the one data item that fills `bytes`. Throws "bad cbor" on anything malformed or unsupported:
 * truncation, trailing bytes, lengths past the end, nesting deeper than 8, indefinite-length strings, tags,
 * floats, undefined, integers beyond 2^53 - 1, map keys that are not text, repeated keys, invalid UTF-8.
 * With `integerKeysAndFloats`, integer map keys (as their decimal text) and floats are accepted.
 */
export function decodeCbor(bytes: Uint8Array, options?: { integerKeysAndFloats: boolean }): CborValue {
	input = bytes;
	at = 0;
	// SenML CBOR (RFC 8428 §6) labels its fields with integers and carries floats.
	extended = options?.integerKeysAndFloats ?? false;
	try {
		const value = item(0);
		if (at !== bytes.length) fail();
		return value;
	}
	finally {
		input = none;
	}
}
