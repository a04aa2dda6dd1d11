// The LwM2M 1.1 content formats as a server reads and writes them (OMA-TS-LightweightM2M_Core-V1_1 §7.4):
// text/plain and opaque for one resource, TLV (§7.4.3), SenML JSON and SenML CBOR (RFC 8428, with LwM2M's
// naming: base name + name is the full path, "/3/0/" + "0", one record per resource instance "/3/0/6/1").
// TLV and text do not carry a value's type, so those are typed by the resources of Objects 0, 1, 3 and 5
// below (from the OMA object registry); any other resource reads as raw bytes (TLV) or text.
// Written for the host from the specifications, independently of the device's codecs in src/.

import { type CborInput, decodeCbor, encodeCbor } from "./cbor";

export type Lwm2mFormat = "text" | "opaque" | "tlv" | "senml-json" | "senml-cbor";
/** A resource value, or an instance or object as id → value (a multi-instance resource is a nested map). */
export type Lwm2mValue = number | string | boolean | Buffer | { [id: number]: Lwm2mValue };

/** CoAP Content-Format numbers (the IANA CoAP registry). */
export const contentFormats: { readonly [format in Lwm2mFormat]: number } = { text: 0, opaque: 42, tlv: 11542, "senml-json": 110, "senml-cbor": 112 };
export const linkFormat = 40;

export function formatOf(contentFormat: number): Lwm2mFormat | undefined {
	return (Object.keys(contentFormats) as Lwm2mFormat[]).find((format) => contentFormats[format] === contentFormat);
}

type ResourceType = "string" | "integer" | "unsigned" | "float" | "boolean" | "opaque" | "time" | "objlnk";

const objectModel: { [object: number]: { [resource: number]: ResourceType } } = {
	// Security
	0: { 0: "string", 1: "boolean", 2: "integer", 3: "opaque", 4: "opaque", 5: "opaque", 6: "integer", 7: "opaque", 8: "opaque", 9: "string", 10: "integer", 11: "integer", 12: "integer" },
	// Server
	1: {
		0: "integer", 1: "integer", 2: "integer", 3: "integer", 5: "integer", 6: "boolean", 7: "string", 10: "objlnk", 11: "unsigned", 12: "time",
		13: "unsigned", 14: "unsigned", 15: "boolean", 16: "boolean", 17: "unsigned", 18: "unsigned", 19: "unsigned", 20: "unsigned", 21: "boolean", 22: "string", 23: "boolean",
	},
	// Device
	3: {
		0: "string", 1: "string", 2: "string", 3: "string", 6: "integer", 7: "integer", 8: "integer", 9: "integer", 10: "integer", 11: "integer", 13: "time",
		14: "string", 15: "string", 16: "string", 17: "string", 18: "string", 19: "string", 20: "integer", 21: "integer", 22: "objlnk",
	},
	// Firmware Update
	5: { 0: "opaque", 1: "string", 3: "integer", 5: "integer", 6: "string", 7: "string", 8: "integer", 9: "integer", 11: "integer", 12: "time", 13: "unsigned", 14: "boolean" },
};

/** "/3/0/1" → [3, 0, 1]. */
export function parsePath(path: string): number[] {
	const parts = path.split("/").slice(1);
	if (parts[parts.length - 1] === "") parts.pop();
	if (!path.startsWith("/") || parts.length > 4 || !parts.every((part) => /^\d{1,5}$/.test(part) && Number(part) <= 65535)) throw new Error(`bad lwm2m path ${path}`);
	return parts.map(Number);
}

function typeOf(path: number[]): ResourceType | undefined {
	return path.length >= 3 ? objectModel[path[0]]?.[path[2]] : undefined;
}

function isMap(value: Lwm2mValue): value is { [id: number]: Lwm2mValue } {
	return typeof value === "object" && !Buffer.isBuffer(value);
}

export function decode(format: Lwm2mFormat, path: string, bytes: Buffer): Lwm2mValue {
	const ids = parsePath(path);
	switch (format) {
		case "opaque": return bytes;
		case "text": return fromText(ids, bytes.toString("utf8"));
		case "tlv": return fromTlv(ids, bytes);
		case "senml-json": return fromSenml(ids, fromSenmlJson(bytes));
		case "senml-cbor": return fromSenml(ids, fromSenmlCbor(bytes));
	}
}

export function encode(format: Lwm2mFormat, path: string, value: Lwm2mValue): Buffer {
	const ids = parsePath(path);
	switch (format) {
		case "opaque":
			if (Buffer.isBuffer(value)) return value;
			if (typeof value === "string") return Buffer.from(value);
			throw new Error("opaque holds bytes");
		case "text": return Buffer.from(toText(value));
		case "tlv": return toTlv(ids, value);
		case "senml-json": return Buffer.from(JSON.stringify(jsonRecords(toSenml(ids, value))));
		case "senml-cbor": return Buffer.from(encodeCbor(cborRecords(toSenml(ids, value))));
	}
}

// text/plain: numbers in decimal, booleans "1"/"0", opaque in base64, object links "3:0".

function fromText(ids: number[], text: string): Lwm2mValue {
	switch (typeOf(ids)) {
		case "integer": case "unsigned": case "float": case "time": {
			const number = Number(text);
			if (text.trim() === "" || Number.isNaN(number)) throw new Error(`bad number ${JSON.stringify(text)}`);
			return number;
		}
		case "boolean":
			if (text !== "0" && text !== "1") throw new Error(`bad boolean ${JSON.stringify(text)}`);
			return text === "1";
		case "opaque": return Buffer.from(text, "base64");
		default: return text;
	}
}

function toText(value: Lwm2mValue): string {
	if (typeof value === "boolean") return value ? "1" : "0";
	if (Buffer.isBuffer(value)) return value.toString("base64");
	if (isMap(value)) throw new Error("text holds one resource");
	return String(value);
}

// TLV: a type byte (bits 7-6 what the id names: 00 object instance, 01 resource instance, 10 multiple
// resource, 11 resource with value; bit 5 a 16-bit id; bits 4-3 the length's size in bytes, or 0 with the
// length in bits 2-0), the id, the length, the value. Instances and multiple resources nest TLVs.

const enum Tlv { ObjectInstance = 0, ResourceInstance = 1, MultipleResource = 2, Resource = 3 }
type TlvItem = { kind: Tlv; id: number; value: Buffer };

function readTlvs(bytes: Buffer): TlvItem[] {
	const items: TlvItem[] = [];
	let at = 0;
	const take = (count: number): number => {
		if (at + count > bytes.length) throw new Error("truncated tlv");
		at += count;
		return at - count;
	};
	while (at < bytes.length) {
		const type = bytes[take(1)];
		const id = type & 0x20 ? bytes.readUInt16BE(take(2)) : bytes[take(1)];
		const lengthSize = (type >> 3) & 3;
		const length = lengthSize ? bytes.readUIntBE(take(lengthSize), lengthSize) : type & 7;
		const start = take(length);
		items.push({ kind: type >> 6, id, value: bytes.subarray(start, start + length) });
	}
	return items;
}

function tlvTree(items: TlvItem[], base: number[]): { [id: number]: Lwm2mValue } {
	const tree: { [id: number]: Lwm2mValue } = {};
	for (const item of items) {
		const here = [...base, item.id];
		tree[item.id] = item.kind === Tlv.ObjectInstance || item.kind === Tlv.MultipleResource ? tlvTree(readTlvs(item.value), here) : fromTlvValue(here, item.value);
	}
	return tree;
}

function fromTlv(ids: number[], bytes: Buffer): Lwm2mValue {
	const items = readTlvs(bytes);
	if (!items.length) return {};
	// Where the top-level ids sit in the path: instances under the object, resources under an instance,
	// resource instances under a resource.
	const depth = items[0].kind === Tlv.ObjectInstance ? 1 : items[0].kind === Tlv.ResourceInstance ? 3 : 2;
	if (depth > ids.length) throw new Error("tlv does not match the path");
	const tree = tlvTree(items, ids.slice(0, depth));
	if (ids.length <= depth) return tree;
	const named = tree[ids[depth]];
	if (named === undefined || items.length !== 1) throw new Error("tlv does not match the path");
	return named;
}

function fromTlvValue(ids: number[], value: Buffer): Lwm2mValue {
	const type = typeOf(ids);
	const sizes = type === "float" ? [4, 8] : [1, 2, 4, 8];
	if ((type === "integer" || type === "time" || type === "unsigned" || type === "float") && !sizes.includes(value.length)) throw new Error(`bad ${type} length ${value.length}`);
	switch (type) {
		case "integer": case "time": return value.length === 8 ? Number(value.readBigInt64BE()) : value.readIntBE(0, value.length);
		case "unsigned": return value.length === 8 ? Number(value.readBigUInt64BE()) : value.readUIntBE(0, value.length);
		case "float": return value.length === 4 ? value.readFloatBE() : value.readDoubleBE();
		case "boolean":
			if (value.length !== 1 || value[0] > 1) throw new Error("bad boolean");
			return value[0] === 1;
		case "string": return value.toString("utf8");
		case "objlnk":
			if (value.length !== 4) throw new Error("bad object link");
			return `${value.readUInt16BE(0)}:${value.readUInt16BE(2)}`;
		default: return Buffer.from(value);
	}
}

function tlvHeader(kind: Tlv, id: number, length: number): Buffer {
	const idBytes = id > 0xff ? 2 : 1;
	const lengthBytes = length < 8 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3;
	if (length > 0xffffff) throw new Error("tlv value too large");
	const header = Buffer.alloc(1 + idBytes + lengthBytes);
	header[0] = (kind << 6) | (idBytes === 2 ? 0x20 : 0) | (lengthBytes << 3) | (lengthBytes ? 0 : length);
	header.writeUIntBE(id, 1, idBytes);
	if (lengthBytes) header.writeUIntBE(length, 1 + idBytes, lengthBytes);
	return header;
}

function tlv(kind: Tlv, id: number, value: Buffer): Buffer {
	return Buffer.concat([tlvHeader(kind, id, value.length), value]);
}

function toTlvValue(ids: number[], value: Lwm2mValue): Buffer {
	const type = typeOf(ids);
	if (Buffer.isBuffer(value)) return value;
	if (typeof value === "boolean") return Buffer.of(value ? 1 : 0);
	if (typeof value === "string") {
		if (type !== "objlnk") return Buffer.from(value);
		const link = /^(\d+):(\d+)$/.exec(value);
		if (!link) throw new Error(`bad object link ${value}`);
		const bytes = Buffer.alloc(4);
		bytes.writeUInt16BE(Number(link[1]), 0);
		bytes.writeUInt16BE(Number(link[2]), 2);
		return bytes;
	}
	if (typeof value !== "number") throw new Error("a map is not a resource value");
	if (type === "float" || !Number.isSafeInteger(value)) {
		const single = Buffer.alloc(4);
		single.writeFloatBE(value);
		if (single.readFloatBE() === value) return single;
		const double = Buffer.alloc(8);
		double.writeDoubleBE(value);
		return double;
	}
	const size = [1, 2, 4].find((bytes) => value >= -(2 ** (bytes * 8 - 1)) && value < 2 ** (bytes * 8 - 1));
	if (size) {
		const bytes = Buffer.alloc(size);
		bytes.writeIntBE(value, 0, size);
		return bytes;
	}
	const bytes = Buffer.alloc(8);
	bytes.writeBigInt64BE(BigInt(value));
	return bytes;
}

function tlvEntries(value: Lwm2mValue): [number, Lwm2mValue][] {
	if (!isMap(value)) throw new Error("expected a map of ids");
	return Object.entries(value).map(([id, item]) => [Number(id), item]);
}

function resourceTlv(ids: number[], value: Lwm2mValue): Buffer {
	const id = ids[2];
	if (!isMap(value)) return tlv(Tlv.Resource, id, toTlvValue(ids, value));
	return tlv(Tlv.MultipleResource, id, Buffer.concat(tlvEntries(value).map(([instance, item]) => tlv(Tlv.ResourceInstance, instance, toTlvValue([...ids, instance], item)))));
}

function toTlv(ids: number[], value: Lwm2mValue): Buffer {
	switch (ids.length) {
		case 1: return Buffer.concat(tlvEntries(value).map(([instance, resources]) =>
			tlv(Tlv.ObjectInstance, instance, Buffer.concat(tlvEntries(resources).map(([id, item]) => resourceTlv([ids[0], instance, id], item))))));
		case 2: return Buffer.concat(tlvEntries(value).map(([id, item]) => resourceTlv([...ids, id], item)));
		case 3: return resourceTlv(ids, value);
		case 4: return tlv(Tlv.ResourceInstance, ids[3], toTlvValue(ids, value));
		default: throw new Error("tlv needs an object path");
	}
}

// SenML: records of a name (base name + name) and one value: v number, vs string, vb boolean, vd bytes
// (base64url in JSON), vlo object link (LwM2M's own field). In CBOR the fields are integer labels.

type SenmlRecord = { name: string; value: number | string | boolean | Buffer; link?: boolean };

const cborLabels = { bn: -2, n: 0, v: 2, vs: 3, vb: 4, vd: 8 } as const;

function fromSenmlJson(bytes: Buffer): SenmlRecord[] {
	const parsed: unknown = JSON.parse(bytes.toString("utf8"));
	if (!Array.isArray(parsed)) throw new Error("senml is not an array");
	return senmlRecords(parsed.map((record: { [field: string]: unknown }) => ({
		bn: record.bn, n: record.n, v: record.v, vs: record.vs, vb: record.vb,
		vd: typeof record.vd === "string" ? Buffer.from(record.vd, "base64url") : record.vd, vlo: record.vlo,
	})));
}

function fromSenmlCbor(bytes: Buffer): SenmlRecord[] {
	const parsed = decodeCbor(bytes);
	if (!Array.isArray(parsed)) throw new Error("senml is not an array");
	return senmlRecords(parsed.map((item) => {
		const record = (item ?? {}) as { [label: string]: unknown };
		const field = (label: number) => record[String(label)];
		const vd = field(cborLabels.vd);
		return { bn: field(cborLabels.bn), n: field(cborLabels.n), v: field(cborLabels.v), vs: field(cborLabels.vs), vb: field(cborLabels.vb), vd: vd instanceof Uint8Array ? Buffer.from(vd) : vd, vlo: record.vlo };
	}));
}

function senmlRecords(records: { [field: string]: unknown }[]): SenmlRecord[] {
	let baseName = "";
	return records.map((record) => {
		if (record.bn !== undefined) {
			if (typeof record.bn !== "string") throw new Error("bad senml base name");
			baseName = record.bn;
		}
		if (record.n !== undefined && typeof record.n !== "string") throw new Error("bad senml name");
		const name = baseName + ((record.n as string | undefined) ?? "");
		if (typeof record.v === "number") return { name, value: record.v };
		if (typeof record.vs === "string") return { name, value: record.vs };
		if (typeof record.vb === "boolean") return { name, value: record.vb };
		if (Buffer.isBuffer(record.vd)) return { name, value: record.vd };
		if (typeof record.vlo === "string") return { name, value: record.vlo, link: true };
		throw new Error(`senml record ${name} has no value`);
	});
}

function fromSenml(ids: number[], records: SenmlRecord[]): Lwm2mValue {
	const tree: { [id: number]: Lwm2mValue } = {};
	for (const record of records) {
		const full = parsePath(record.name);
		if (full.length < ids.length || ids.some((id, i) => full[i] !== id)) throw new Error(`senml name ${record.name} is outside ${ids.join("/")}`);
		const rest = full.slice(ids.length);
		if (!rest.length) {
			if (records.length !== 1) throw new Error("senml names one resource twice");
			return record.value;
		}
		let node = tree;
		for (const id of rest.slice(0, -1)) node = (node[id] ??= {}) as { [id: number]: Lwm2mValue };
		node[rest[rest.length - 1]] = record.value;
	}
	return tree;
}

function toSenml(ids: number[], value: Lwm2mValue): SenmlRecord[] {
	if (!isMap(value)) return [{ name: "/" + ids.join("/"), value, link: typeOf(ids) === "objlnk" }];
	return tlvEntries(value).flatMap(([id, item]) => toSenml([...ids, id], item));
}

function senmlFields(record: SenmlRecord, index: number, base: string): [string, unknown][] {
	// The first record carries the base name; each names what follows it.
	const name = record.name.slice(base.length);
	const naming: [string, unknown][] = [...(index === 0 ? [["bn", base] as [string, unknown]] : []), ...(name ? [["n", name] as [string, unknown]] : [])];
	const { value } = record;
	const field = record.link ? "vlo" : typeof value === "number" ? "v" : typeof value === "boolean" ? "vb" : Buffer.isBuffer(value) ? "vd" : "vs";
	return [...naming, [field, value]];
}

function jsonRecords(records: SenmlRecord[]): { [field: string]: unknown }[] {
	const base = commonBase(records);
	return records.map((record, index) => Object.fromEntries(senmlFields(record, index, base).map(([field, value]) => [field, Buffer.isBuffer(value) ? value.toString("base64url") : value])));
}

function cborRecords(records: SenmlRecord[]): CborInput[] {
	const base = commonBase(records);
	return records.map((record, index) => new Map(senmlFields(record, index, base).map(([field, value]) =>
		[field in cborLabels ? cborLabels[field as keyof typeof cborLabels] : field, (Buffer.isBuffer(value) ? new Uint8Array(value) : value) as CborInput])));
}

/** The records' common path prefix up to a "/", so names stay short: "/3/0/" with names "0", "6/1". */
function commonBase(records: SenmlRecord[]): string {
	if (records.length === 1) return records[0].name;
	let base = records[0].name;
	for (const { name } of records) while (!name.startsWith(base)) base = base.slice(0, -1);
	return base.slice(0, base.lastIndexOf("/") + 1);
}
