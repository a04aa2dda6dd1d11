/*
	CoAP messages (RFC 7252 §3) as plain data, and the option helpers the endpoint and the LwM2M layer share:
	Block1/Block2 (RFC 7959), Observe (RFC 7641) and the content formats LwM2M 1.1 names.

	The parser trusts nothing: it returns a short error for every malformed packet instead of throwing, and
	its token, option values and payload are views into the packet (no copies).
*/

import { utf8Length, utf8Read, utf8Write } from "../lib/utf8";

export const Type = { con: 0, non: 1, ack: 2, reset: 3 } as const;

export const Code = {
	empty: 0, get: 1, post: 2, put: 3, delete: 4, fetch: 5, iPatch: 7,
	created: 65, deleted: 66, valid: 67, changed: 68, content: 69, continue: 95,
	badRequest: 128, unauthorized: 129, badOption: 130, forbidden: 131, notFound: 132, methodNotAllowed: 133,
	notAcceptable: 134, requestEntityIncomplete: 136, preconditionFailed: 140, requestEntityTooLarge: 141,
	unsupportedContentFormat: 143, internalServerError: 160, notImplemented: 161, serviceUnavailable: 163, gatewayTimeout: 164,
} as const;

export const Option = {
	ifMatch: 1, uriHost: 3, etag: 4, ifNoneMatch: 5, observe: 6, uriPort: 7, locationPath: 8,
	uriPath: 11, contentFormat: 12, maxAge: 14, uriQuery: 15, accept: 17, locationQuery: 20, block2: 23, block1: 27,
	size2: 28, proxyUri: 35, size1: 60,
} as const;

export const ContentFormat = { text: 0, linkFormat: 40, opaque: 42, cbor: 60, senmlJson: 110, senmlCbor: 112, tlv: 11542, lwm2mJson: 11543 } as const;

export interface CoapOption {
	number: number;
	value: Uint8Array;
}

export interface Message {
	type: number;
	code: number;
	messageId: number;
	token: Uint8Array;
	options: CoapOption[];
	payload: Uint8Array;
}

const version = 1;
const payloadMarker = 0xff;
const maxToken = 8;
const empty: Uint8Array = new Uint8Array(0);
const known = new Set<number>(Object.values(Option));

/** Reads one option delta or length nibble with its extension bytes; -1 when the packet ends inside it. */
function extended(nibble: number, packet: Uint8Array, at: number): [value: number, next: number] {
	if (nibble < 13) return [nibble, at];
	if (nibble === 13) return at < packet.length ? [packet[at] + 13, at + 1] : [-1, at];
	return at + 1 < packet.length ? [((packet[at] << 8) | packet[at + 1]) + 269, at + 2] : [-1, at];
}

export function parseMessage(packet: Uint8Array): Message | string {
	if (packet.length < 4) return "truncated header";
	const first = packet[0];
	if (first >> 6 !== version) return "bad version";
	const tokenLength = first & 0x0f;
	if (tokenLength > maxToken) return "bad token length";
	const type = (first >> 4) & 3, code = packet[1], messageId = (packet[2] << 8) | packet[3];
	if (code === Code.empty && packet.length !== 4 || code === Code.empty && tokenLength) return "bad empty message";
	let at = 4 + tokenLength;
	if (at > packet.length) return "truncated token";
	const token = packet.subarray(4, at);
	const options: CoapOption[] = [];
	let number = 0, payload: Uint8Array = empty;
	while (at < packet.length) {
		const byte = packet[at++];
		if (byte === payloadMarker) {
			if (at === packet.length) return "empty payload";
			payload = packet.subarray(at);
			break;
		}
		if (byte >> 4 === 15) return "bad option delta";
		if ((byte & 0x0f) === 15) return "bad option length";
		const [delta, afterDelta] = extended(byte >> 4, packet, at);
		const [length, afterLength] = extended(byte & 0x0f, packet, afterDelta);
		if (delta < 0 || length < 0 || afterLength + length > packet.length) return "truncated option";
		number += delta;
		if (number > 0xffff) return "bad option number";
		options.push({ number, value: packet.subarray(afterLength, afterLength + length) });
		at = afterLength + length;
	}
	return { type, code, messageId, token, options, payload };
}

function nibble(value: number): number {
	return value < 13 ? value : value < 269 ? 13 : 14;
}

function writeExtension(value: number, into: Uint8Array, at: number): number {
	if (value >= 269) {
		into[at++] = (value - 269) >> 8;
		into[at++] = (value - 269) & 0xff;
	}
	else if (value >= 13) into[at++] = value - 13;
	return at;
}

/** Index of the option to write after (number, index) `previous`: options go out sorted, equal numbers in the caller's order, with no sorted copy. */
function nextOption(options: CoapOption[], number: number, index: number): number {
	let best = -1;
	for (let i = 0; i < options.length; i++) {
		const candidate = options[i].number;
		if (candidate < number || candidate === number && i <= index) continue;
		if (best < 0 || candidate < options[best].number) best = i;
	}
	return best;
}

/** Writes `message` into `into`; returns its length. Throws "message too large" when it does not fit. */
export function serializeMessage(message: Message, into: Uint8Array): number {
	const { token, options, payload } = message;
	if (token.length > maxToken) throw new Error("bad token length");
	const end = into.length;
	if (4 + token.length > end) throw new Error("message too large");
	into[0] = (version << 6) | ((message.type & 3) << 4) | token.length;
	into[1] = message.code;
	into[2] = (message.messageId >> 8) & 0xff;
	into[3] = message.messageId & 0xff;
	into.set(token, 4);
	let at = 4 + token.length, number = 0;
	for (let i = nextOption(options, -1, -1); i >= 0; i = nextOption(options, options[i].number, i)) {
		const option = options[i], delta = option.number - number, length = option.value.length;
		if (at + 5 + length > end) throw new Error("message too large");
		into[at++] = (nibble(delta) << 4) | nibble(length);
		at = writeExtension(delta, into, at);
		at = writeExtension(length, into, at);
		into.set(option.value, at);
		at += length;
		number = option.number;
	}
	if (payload.length) {
		if (at + 1 + payload.length > end) throw new Error("message too large");
		into[at++] = payloadMarker;
		into.set(payload, at);
		at += payload.length;
	}
	return at;
}

/** The first critical option (odd number) this endpoint does not know, or undefined: a CON request with one gets 4.02. */
export function unknownCriticalOption(message: Message): number | undefined {
	for (const option of message.options)
		if (option.number & 1 && !known.has(option.number)) return option.number;
	return undefined;
}

export function optionValues(message: Message, number: number): Uint8Array[] {
	const values: Uint8Array[] = [];
	for (const option of message.options)
		if (option.number === number) values.push(option.value);
	return values;
}

export function firstOption(message: Message, number: number): Uint8Array | undefined {
	for (const option of message.options)
		if (option.number === number) return option.value;
	return undefined;
}

/** An unsigned option (up to 4 bytes); undefined when absent or longer. */
export function uintOption(message: Message, number: number): number | undefined {
	const value = firstOption(message, number);
	return value && value.length <= 4 ? bytesUint(value) : undefined;
}

export function stringOptions(message: Message, number: number): string[] {
	const values: string[] = [];
	for (const option of message.options)
		if (option.number === number) values.push(bytesString(option.value));
	return values;
}

function bytesUint(bytes: Uint8Array): number {
	let value = 0;
	for (let i = 0; i < bytes.length; i++) value = value * 256 + bytes[i];
	return value;
}

/** Minimal-length big-endian bytes (0 → none), as RFC 7252 §3.2 encodes uint options. */
export function uintBytes(value: number): Uint8Array {
	let length = 0;
	for (let rest = value; rest >= 1 && length < 4; rest = Math.floor(rest / 256)) length++;
	const bytes = new Uint8Array(length);
	for (let i = length - 1, rest = value; i >= 0; i--, rest = Math.floor(rest / 256)) bytes[i] = rest & 0xff;
	return bytes;
}

export function stringBytes(text: string): Uint8Array {
	const bytes = new Uint8Array(utf8Length(text));
	utf8Write(text, bytes, 0);
	return bytes;
}

export function bytesString(bytes: Uint8Array): string {
	return utf8Read(bytes, 0, bytes.length);
}

/** A Block1 or Block2 option (RFC 7959 §2.2): block `num` of 16 << szx bytes, `more` after it. */
export interface Block {
	num: number;
	more: boolean;
	szx: number;
}

/** undefined for a value longer than 3 bytes or the reserved szx 7. */
export function parseBlock(value: Uint8Array): Block | undefined {
	if (value.length > 3) return undefined;
	const bits = bytesUint(value), szx = bits & 7;
	if (szx === 7) return undefined;
	return { num: Math.floor(bits / 16), more: (bits & 8) !== 0, szx };
}

export function blockBytes(block: Block): Uint8Array {
	return uintBytes(block.num * 16 + (block.more ? 8 : 0) + block.szx);
}

export function blockSize(szx: number): number {
	return 16 << szx;
}

/** "2.05" style, for logs. */
export function codeName(code: number): string {
	const detail = code & 31;
	return `${code >> 5}.${detail < 10 ? "0" : ""}${detail}`;
}

/** Requests are 0.01–0.31, responses 2.00–5.31 (classes 1, 6 and 7 are reserved). */
export function isRequest(code: number): boolean {
	return code >= 1 && code < 32;
}

export function isResponse(code: number): boolean {
	return code >= 64 && code < 192;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++)
		if (a[i] !== b[i]) return false;
	return true;
}
