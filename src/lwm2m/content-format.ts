// The content formats an LwM2M 1.1 server may ask for or write in: text/plain and opaque for one resource,
// TLV, SenML JSON and SenML CBOR for anything. Reads without an Accept option answer in SenML JSON, the
// format the registration names (`</>;ct=110`), except a single resource, which answers as text or opaque.

import { type CoapOption, ContentFormat, Option, uintBytes } from "../coap/message";
import { utf8Length, utf8Write } from "../lib/utf8";
import { type Entry, Kind, type WrittenEntry, utf8Text } from "./model";
import { decodeSenmlCbor, decodeSenmlJson, encodeSenmlCbor, encodeSenmlJson } from "./senml";
import { decodeTlv, encodeTlv } from "./tlv";

export const preferredFormat = ContentFormat.senmlJson;

export function supportedFormat(format: number): boolean {
	return format === ContentFormat.text || format === ContentFormat.opaque || format === ContentFormat.tlv ||
		format === ContentFormat.senmlJson || format === ContentFormat.senmlCbor;
}

/** The format of a read's answer: the Accept option, else text or opaque for one resource, else SenML JSON. */
export function answerFormat(accept: number | undefined, entries: readonly Entry[], singleResource: boolean): number {
	if (accept !== undefined) return accept;
	if (singleResource && entries.length === 1) return entries[0].kind === Kind.opaque ? ContentFormat.opaque : ContentFormat.text;
	return preferredFormat;
}

/** The bytes of `entries` in `format`, or undefined when the format cannot carry them (4.06 Not Acceptable). */
export function encodeEntries(format: number, entries: readonly Entry[], base: readonly number[]): Uint8Array | undefined {
	switch (format) {
		case ContentFormat.tlv: return encodeTlv(entries, base);
		case ContentFormat.senmlJson: return utf8Bytes(encodeSenmlJson(entries, base));
		case ContentFormat.senmlCbor: return encodeSenmlCbor(entries, base);
		case ContentFormat.opaque:
			return entries.length === 1 && entries[0].kind === Kind.opaque ? entries[0].value as Uint8Array : undefined;
		case ContentFormat.text:
			return entries.length === 1 && entries[0].kind !== Kind.opaque ? utf8Bytes(textOf(entries[0])) : undefined;
	}
	return undefined;
}

function textOf(entry: Entry): string {
	const value = entry.value;
	if (typeof value === "boolean") return value ? "1" : "0";
	return String(value);
}

/** The entries a write to `base` carries, or a reason (4.00) when the payload is not what its format says. */
export function decodeEntries(format: number, payload: Uint8Array, base: readonly number[], kind: number | undefined): WrittenEntry[] | string {
	switch (format) {
		case ContentFormat.tlv: return decodeTlv(payload, base);
		case ContentFormat.senmlJson: {
			const text = utf8Text(payload);
			return text === undefined ? "bad utf-8" : decodeSenmlJson(text);
		}
		case ContentFormat.senmlCbor: return decodeSenmlCbor(payload);
		case ContentFormat.opaque:
			if (base.length < 3) return "opaque needs a resource path";
			return [{ path: base.slice(), value: payload, bytes: undefined }];
		case ContentFormat.text: {
			if (base.length < 3) return "text needs a resource path";
			const text = utf8Text(payload);
			if (text === undefined) return "bad utf-8";
			const value = parseText(text, kind);
			return value === undefined ? "bad text value" : [{ path: base.slice(), value, bytes: undefined }];
		}
	}
	return "unsupported content format";
}

/** text/plain values (Core §7.4.1): numbers in decimal, booleans "0"/"1", object links "3:0". */
function parseText(text: string, kind: number | undefined): string | number | boolean | undefined {
	switch (kind) {
		case Kind.integer:
		case Kind.unsigned:
		case Kind.time:
			return /^-?\d{1,16}$/.test(text) ? Number(text) : undefined;
		case Kind.float:
			return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text) ? Number(text) : undefined;
		case Kind.boolean:
			return text === "1" ? true : text === "0" ? false : undefined;
		default:
			return text;
	}
}

function utf8Bytes(text: string): Uint8Array {
	const bytes = new Uint8Array(utf8Length(text));
	utf8Write(text, bytes, 0);
	return bytes;
}

export function contentFormat(format: number): CoapOption {
	return { number: Option.contentFormat, value: uintBytes(format) };
}
