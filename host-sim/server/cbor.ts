// The CBOR (RFC 8949) the AWS IoT stream emulator and the LwM2M server need: maps with text keys (and,
// written from a Map, integer keys such as SenML's labels), integers, byte and text strings, arrays, booleans,
// null and floats. Definite lengths out; indefinite lengths and tags read too; integer keys read as text.

export type CborValue = number | bigint | string | boolean | null | undefined | Uint8Array | CborValue[] | { [key: string]: CborValue };
/** What encodeCbor writes: a decoded value, or maps whose keys are integers. */
export type CborInput = CborValue | CborInput[] | { [key: string]: CborInput } | Map<number | string, CborInput>;

export function encodeCbor(value: CborInput): Uint8Array {
	const out: number[] = [];
	write(value, out);
	return Uint8Array.from(out);
}

function head(major: number, length: number | bigint, out: number[]): void {
	const n = BigInt(length);
	if (n < 24n) out.push((major << 5) | Number(n));
	else if (n < 0x100n) out.push((major << 5) | 24, Number(n));
	else if (n < 0x10000n) out.push((major << 5) | 25, Number(n >> 8n), Number(n & 0xffn));
	else if (n < 0x100000000n) {
		out.push((major << 5) | 26);
		for (let shift = 24n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
	}
	else {
		out.push((major << 5) | 27);
		for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
	}
}

function write(value: CborInput, out: number[]): void {
	if (value === false) out.push(0xf4);
	else if (value === true) out.push(0xf5);
	else if (value === null) out.push(0xf6);
	else if (value === undefined) out.push(0xf7);
	else if (typeof value === "bigint") value < 0n ? head(1, -1n - value, out) : head(0, value, out);
	else if (typeof value === "number") {
		if (Number.isSafeInteger(value)) value < 0 ? head(1, -1 - value, out) : head(0, value, out);
		else {
			const bytes = new Uint8Array(8);
			new DataView(bytes.buffer).setFloat64(0, value);
			out.push(0xfb, ...bytes);
		}
	}
	else if (typeof value === "string") {
		const bytes = new TextEncoder().encode(value);
		head(3, bytes.length, out);
		for (const byte of bytes) out.push(byte);
	}
	else if (value instanceof Uint8Array) {
		head(2, value.length, out);
		for (const byte of value) out.push(byte);
	}
	else if (Array.isArray(value)) {
		head(4, value.length, out);
		for (const item of value) write(item, out);
	}
	else {
		const entries = value instanceof Map ? [...value] : Object.entries(value);
		head(5, entries.length, out);
		for (const [key, item] of entries) {
			write(key, out);
			write(item, out);
		}
	}
}

const breakMark = Symbol("break");

/** Decodes exactly one data item; throws on truncation, trailing bytes or what JSON-like values cannot hold. */
export function decodeCbor(bytes: Uint8Array): CborValue {
	const reader = { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), at: 0 };
	const value = read(reader, 0);
	if (value === breakMark) throw new Error("unexpected break");
	if (reader.at !== bytes.length) throw new Error("trailing bytes");
	return value;
}

type Reader = { bytes: Uint8Array; view: DataView; at: number };

function need(reader: Reader, count: number): number {
	const at = reader.at;
	if (at + count > reader.bytes.length) throw new Error("truncated cbor");
	reader.at += count;
	return at;
}

function argument(reader: Reader, info: number): number | bigint | undefined {
	if (info < 24) return info;
	if (info === 24) return reader.view.getUint8(need(reader, 1));
	if (info === 25) return reader.view.getUint16(need(reader, 2));
	if (info === 26) return reader.view.getUint32(need(reader, 4));
	if (info === 27) {
		const value = reader.view.getBigUint64(need(reader, 8));
		return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
	}
	if (info === 31) return undefined;
	throw new Error("reserved cbor length");
}

function length(reader: Reader, info: number): number | undefined {
	const value = argument(reader, info);
	if (typeof value === "bigint" || (value !== undefined && value > reader.bytes.length)) throw new Error("cbor length too large");
	return value;
}

function read(reader: Reader, depth: number): CborValue | typeof breakMark {
	if (depth > 64) throw new Error("cbor nested too deep");
	const initial = reader.bytes[need(reader, 1)];
	const major = initial >> 5, info = initial & 0x1f;
	switch (major) {
		case 0: {
			const value = argument(reader, info);
			if (value === undefined) throw new Error("bad cbor integer");
			return value;
		}
		case 1: {
			const value = argument(reader, info);
			if (value === undefined) throw new Error("bad cbor integer");
			return typeof value === "bigint" ? -1n - value : -1 - value;
		}
		case 2:
		case 3: {
			const size = length(reader, info);
			let bytes: Uint8Array;
			if (size === undefined) {
				const parts: Uint8Array[] = [];
				for (;;) {
					const part = read(reader, depth + 1);
					if (part === breakMark) break;
					const chunk = typeof part === "string" ? new TextEncoder().encode(part) : part;
					if (!(chunk instanceof Uint8Array) || (major === 3) !== (typeof part === "string")) throw new Error("bad cbor chunk");
					parts.push(chunk);
				}
				bytes = Uint8Array.from(parts.flatMap((part) => [...part]));
			}
			// A copy in a plain Uint8Array, whatever the input's class (a Buffer's slice would be a view).
			else bytes = new Uint8Array(reader.bytes.subarray(need(reader, size), reader.at));
			return major === 2 ? bytes : new TextDecoder("utf-8", { fatal: true }).decode(bytes);
		}
		case 4: {
			const size = length(reader, info);
			const items: CborValue[] = [];
			for (let i = 0; size === undefined || i < size; i++) {
				const item = read(reader, depth + 1);
				if (item === breakMark) {
					if (size === undefined) break;
					throw new Error("unexpected break");
				}
				items.push(item);
			}
			return items;
		}
		case 5: {
			const size = length(reader, info);
			const map: { [key: string]: CborValue } = {};
			for (let i = 0; size === undefined || i < size; i++) {
				const key = read(reader, depth + 1);
				if (key === breakMark) {
					if (size === undefined) break;
					throw new Error("unexpected break");
				}
				if (typeof key !== "string" && typeof key !== "number") throw new Error("unsupported cbor map key");
				const item = read(reader, depth + 1);
				if (item === breakMark) throw new Error("unexpected break");
				Object.defineProperty(map, String(key), { value: item, enumerable: true, writable: true, configurable: true });
			}
			return map;
		}
		case 6:
			argument(reader, info);
			return read(reader, depth + 1);
		default: {
			if (info === 20) return false;
			if (info === 21) return true;
			if (info === 22) return null;
			if (info === 23) return undefined;
			if (info === 25) return halfFloat(reader.view.getUint16(need(reader, 2)));
			if (info === 26) return reader.view.getFloat32(need(reader, 4));
			if (info === 27) return reader.view.getFloat64(need(reader, 8));
			if (info === 31) return breakMark;
			throw new Error("unsupported cbor simple value");
		}
	}
}

function halfFloat(bits: number): number {
	const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
	if (exponent === 0) return sign * fraction * 2 ** -24;
	if (exponent === 31) return fraction ? NaN : sign * Infinity;
	return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
