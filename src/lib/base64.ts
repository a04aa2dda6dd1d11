// Base64 (RFC 4648 §4, standard alphabet) and hex. AWS streams send block payloads as base64 in JSON and
// take the bitmap of wanted blocks as hex; job documents carry the signature in base64 and the MD5 in hex.
//
// The bitmap in a stream request (`b`) covers blocks from `o` on, least significant bit first: bit k of byte j
// asks for block o + 8j + k. JSON requests send it as hexEncode(bitmap, 0, bytes), byte 0 first; CBOR requests
// send the bytes themselves.

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const digits = "0123456789abcdef";

// Built when the module loads: on the device that is at link time, so the table lives in flash, not RAM.
const values = makeValues();

function makeValues(): Int8Array {
	const result = new Int8Array(128).fill(-1);
	for (let i = 0; i < 64; i++)
		result[alphabet.charCodeAt(i)] = i;
	return result;
}

// The characters before the padding. Padding is optional, but when present it completes a group of four.
function dataLength(source: Uint8Array, start: number, end: number): number {
	let length = end - start;
	if (length % 4 === 0 && source[end - 1] === 0x3d)
		length -= source[end - 2] === 0x3d ? 2 : 1;
	if (length % 4 === 1) throw new Error("bad base64");
	return length;
}

// XS indexes strings by scanning them, so text is decoded through its bytes: one pass, not one per character.
function asciiBytes(text: string): Uint8Array {
	const bytes = new Uint8Array(text.length);
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		bytes[i] = c < 128 ? c : 0xff;
	}
	return bytes;
}

/** The bytes `text` decodes to; throws "bad base64" when no base64 text has its length. */
export function decodedBase64Length(text: string): number {
	const bytes = asciiBytes(text);
	return Math.floor(dataLength(bytes, 0, bytes.length) * 3 / 4);
}

/**
 * Decodes `text` into `into` at `at` and returns the bytes written. Throws "bad base64" on a character outside
 * the alphabet (whitespace included) or a misplaced "=", after writing the groups before it.
 */
export function decodeBase64(text: string, into: Uint8Array, at: number): number {
	const bytes = asciiBytes(text);
	return decodeBase64Bytes(bytes, 0, bytes.length, into, at);
}

/** decodeBase64 over the ASCII bytes source[start, end): a JSON payload decoded where it lies, no string. */
export function decodeBase64Bytes(source: Uint8Array, start: number, end: number, into: Uint8Array, at: number): number {
	const length = dataLength(source, start, end);
	const bytes = Math.floor(length * 3 / 4);
	if (at + bytes > into.length) throw new Error("base64 buffer too small");
	let group = 0;
	for (let i = 0; i < length; i++) {
		const c = source[start + i];
		const value = c < 128 ? values[c] : -1;
		if (value < 0) throw new Error("bad base64");
		group = (group << 6) | value;
		if ((i & 3) === 3) {
			into[at++] = group >> 16;
			into[at++] = group >> 8;
			into[at++] = group;
			group = 0;
		}
	}
	// A short last group: its spare low bits are dropped, as most decoders do.
	if ((length & 3) === 2)
		into[at] = group >> 4;
	else if ((length & 3) === 3) {
		into[at] = group >> 10;
		into[at + 1] = group >> 2;
	}
	return bytes;
}

export function encodeBase64(bytes: Uint8Array, start: number, end: number): string {
	let text = "";
	let i = start;
	for (; i + 3 <= end; i += 3) {
		const group = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
		text += alphabet[group >> 18] + alphabet[(group >> 12) & 63] + alphabet[(group >> 6) & 63] + alphabet[group & 63];
	}
	if (end - i === 1)
		text += alphabet[bytes[i] >> 2] + alphabet[(bytes[i] & 3) << 4] + "==";
	else if (end - i === 2) {
		const group = (bytes[i] << 8) | bytes[i + 1];
		text += alphabet[group >> 10] + alphabet[(group >> 4) & 63] + alphabet[(group & 15) << 2] + "=";
	}
	return text;
}

/** Lower-case hex of bytes[start..end), byte by byte. */
export function hexEncode(bytes: Uint8Array, start: number, end: number): string {
	let text = "";
	for (let i = start; i < end; i++)
		text += digits[bytes[i] >> 4] + digits[bytes[i] & 15];
	return text;
}

function hexValue(c: number): number {
	if (c >= 0x30 && c <= 0x39) return c - 0x30;
	c |= 0x20;
	if (c >= 0x61 && c <= 0x66) return c - 0x57;
	throw new Error("bad hex");
}

/** Decodes hex (either case) into `into` at `at`; returns the bytes written. Throws "bad hex". */
export function hexDecode(text: string, into: Uint8Array, at: number): number {
	const bytes = text.length >> 1;
	if (text.length & 1) throw new Error("bad hex");
	if (at + bytes > into.length) throw new Error("hex buffer too small");
	for (let i = 0; i < bytes; i++)
		into[at + i] = (hexValue(text.charCodeAt(2 * i)) << 4) | hexValue(text.charCodeAt(2 * i + 1));
	return bytes;
}
