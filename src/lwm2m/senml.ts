/*
	SenML (RFC 8428) as LwM2M 1.1 uses it (Core §7.4.5–7.4.6): JSON (content format 110) and CBOR (112).
	A record names its resource by base name + name ("/3/0/" + "0"); the value goes in v (number), vs (string),
	vb (boolean), vd (opaque: base64url in JSON, a byte string in CBOR) or vlo (object link "3:0").
	CBOR labels: bn -2, n 0, v 2, vs 3, vb 4, vd 8; vlo keeps its text label.
*/

import { decodeBase64, decodedBase64Length, encodeBase64 } from "../lib/base64";
import { decodeCbor, putField, putHead } from "../lib/cbor";
import { nestedWithin } from "../lib/json";
import { utf8Length } from "../lib/utf8";
import { type Entry, Kind, type Value, type WrittenEntry, parsePath } from "./model";

const maxRecords = 64;

/** The base name for a request to `base`: its object and instance, so every name is "resource[/instance]". */
function baseName(base: readonly number[]): string {
	const prefix = base.slice(0, Math.min(base.length, 2));
	return prefix.length ? `/${prefix.join("/")}/` : "/";
}

function nameOf(entry: Entry, base: readonly number[]): string {
	return entry.path.slice(Math.min(base.length, 2)).join("/");
}

function valueLabel(entry: Entry): "v" | "vs" | "vb" | "vd" | "vlo" {
	switch (entry.kind) {
		case Kind.string: return "vs";
		case Kind.boolean: return "vb";
		case Kind.opaque: return "vd";
		case Kind.objlnk: return "vlo";
		default: return "v";
	}
}

export function encodeSenmlJson(entries: readonly Entry[], base: readonly number[]): string {
	const records: { [label: string]: string | number | boolean }[] = [];
	for (let i = 0; i < entries.length; i++) {
		const entry = entries[i];
		const record: { [label: string]: string | number | boolean } = {};
		if (i === 0) record.bn = baseName(base);
		record.n = nameOf(entry, base);
		const label = valueLabel(entry);
		record[label] = label === "vd" ? base64url(entry.value as Uint8Array) : entry.value as string | number | boolean;
		records.push(record);
	}
	return JSON.stringify(records);
}

const cborLabels = { bn: -2, n: 0, v: 2, vs: 3, vb: 4, vd: 8 } as const;

export function encodeSenmlCbor(entries: readonly Entry[], base: readonly number[]): Uint8Array {
	const bn = baseName(base);
	let size = 9 + utf8Length(bn) + 2;
	for (const entry of entries)
		size += 16 + utf8Length(nameOf(entry, base)) + (typeof entry.value === "string" ? utf8Length(entry.value) : entry.value instanceof Uint8Array ? entry.value.length : 9);
	const into = new Uint8Array(size);
	let at = putHead(0x80, entries.length, 0, into, 0);
	for (let i = 0; i < entries.length; i++) {
		const entry = entries[i];
		at = putHead(0xa0, i === 0 ? 3 : 2, 0, into, at);
		if (i === 0) at = putField(bn, into, putField(cborLabels.bn, into, at));
		at = putField(nameOf(entry, base), into, putField(cborLabels.n, into, at));
		const label = valueLabel(entry), value = entry.value;
		at = putField(label === "vlo" ? label : cborLabels[label], into, at);
		if (typeof value === "number" && !Number.isSafeInteger(value)) {
			into[at++] = 0xfb;
			new DataView(into.buffer, at, 8).setFloat64(0, value);
			at += 8;
		}
		else at = putField(value, into, at);
	}
	return into.subarray(0, at);
}

type Labels = { [label: string]: unknown };

/** The entries of a SenML JSON write; a reason when malformed. */
export function decodeSenmlJson(text: string): WrittenEntry[] | string {
	if (!nestedWithin(text, 2)) return "senml too deep";
	let records: unknown;
	try {
		records = JSON.parse(text);
	}
	catch {
		return "bad senml json";
	}
	return entriesOf(records, { bn: "bn", n: "n", v: "v", vs: "vs", vb: "vb", vd: "vd" }, true);
}

export function decodeSenmlCbor(bytes: Uint8Array): WrittenEntry[] | string {
	let records: unknown;
	try {
		records = decodeCbor(bytes, { integerKeysAndFloats: true });
	}
	catch {
		return "bad senml cbor";
	}
	return entriesOf(records, { bn: "-2", n: "0", v: "2", vs: "3", vb: "4", vd: "8" }, false);
}

function entriesOf(records: unknown, labels: { [label: string]: string }, json: boolean): WrittenEntry[] | string {
	if (!Array.isArray(records) || records.length > maxRecords) return "senml must be an array of records";
	const entries: WrittenEntry[] = [];
	let bn = "";
	for (const record of records as Labels[]) {
		if (typeof record !== "object" || record === null || Array.isArray(record)) return "bad senml record";
		const base = record[labels.bn], name = record[labels.n] ?? "";
		if (base !== undefined) {
			if (typeof base !== "string") return "bad senml base name";
			bn = base;
		}
		if (typeof name !== "string") return "bad senml name";
		const full = bn + name;
		const path = full.startsWith("/") ? parsePath(full.slice(1).split("/")) : undefined;
		if (!path || path.length < 3) return `bad senml name ${full.slice(0, 32)}`;
		const value = valueOf(record, labels, json);
		if (typeof value === "object" && "error" in value) return value.error;
		entries.push({ path, value, bytes: undefined });
	}
	return entries;
}

function valueOf(record: Labels, labels: { [label: string]: string }, json: boolean): Value | undefined | { error: string } {
	const v = record[labels.v], vs = record[labels.vs], vb = record[labels.vb], vd = record[labels.vd], vlo = record.vlo;
	if (v !== undefined) return typeof v === "number" ? v : { error: "bad senml v" };
	if (vs !== undefined) return typeof vs === "string" ? vs : { error: "bad senml vs" };
	if (vb !== undefined) return typeof vb === "boolean" ? vb : { error: "bad senml vb" };
	if (vlo !== undefined) return typeof vlo === "string" ? vlo : { error: "bad senml vlo" };
	if (vd === undefined) return undefined;
	if (!json) return vd instanceof Uint8Array ? vd : { error: "bad senml vd" };
	if (typeof vd !== "string") return { error: "bad senml vd" };
	try {
		const standard = vd.replace(/-/g, "+").replace(/_/g, "/");
		const bytes = new Uint8Array(decodedBase64Length(standard));
		decodeBase64(standard, bytes, 0);
		return bytes;
	}
	catch {
		return { error: "bad senml vd" };
	}
}

/** RFC 4648 §5, without padding (RFC 8428 §4.3). */
function base64url(bytes: Uint8Array): string {
	return encodeBase64(bytes, 0, bytes.length).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
