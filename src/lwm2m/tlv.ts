/*
	OMA TLV (LwM2M Core §7.4.3, content format 11542). Each element: a type byte, its identifier (8 or 16 bits),
	its length (in the type byte, or 8, 16 or 24 bits), then its value.
	  type bits 7–6: 00 object instance, 01 resource instance, 10 multiple resource, 11 resource with value
	  bit 5: 16-bit identifier   bits 4–3: length field size (0: length in bits 2–0)
	What a read returns depends on the path asked: an object gives object instances of resources, an instance
	gives its resources, a resource its value (or its resource instances when multiple).
*/

import { utf8Length, utf8Write } from "../lib/utf8";
import { type Entry, Kind, type KindCode, type Value, type WrittenEntry } from "./model";

const objectInstance = 0, resourceInstance = 1, multipleResource = 2, resource = 3;

function headerSize(id: number, length: number): number {
	return 1 + (id > 255 ? 2 : 1) + (length < 8 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3);
}

function valueSize(kind: KindCode, value: Value): number {
	switch (kind) {
		case Kind.string: return utf8Length(value as string);
		case Kind.opaque: return (value as Uint8Array).length;
		case Kind.boolean: return 1;
		case Kind.objlnk: return 4;
		case Kind.float: return Math.fround(value as number) === value ? 4 : 8;
		default: {
			const n = value as number;
			return n >= -0x80 && n < 0x80 ? 1 : n >= -0x8000 && n < 0x8000 ? 2 : n >= -0x80000000 && n < 0x80000000 ? 4 : 8;
		}
	}
}

function putHeader(type: number, id: number, length: number, into: Uint8Array, at: number): number {
	const lengthBytes = length < 8 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3;
	into[at++] = (type << 6) | (id > 255 ? 0x20 : 0) | (lengthBytes << 3) | (lengthBytes ? 0 : length);
	if (id > 255) into[at++] = id >> 8;
	into[at++] = id & 0xff;
	for (let shift = (lengthBytes - 1) * 8; shift >= 0; shift -= 8) into[at++] = (length >> shift) & 0xff;
	return at;
}

function putValue(kind: KindCode, value: Value, size: number, into: Uint8Array, at: number): number {
	switch (kind) {
		case Kind.string: return utf8Write(value as string, into, at);
		case Kind.opaque:
			into.set(value as Uint8Array, at);
			return at + size;
		case Kind.boolean:
			into[at] = value ? 1 : 0;
			return at + 1;
		case Kind.objlnk: {
			const [object, instance] = (value as string).split(":").map(Number);
			into[at] = object >> 8; into[at + 1] = object; into[at + 2] = instance >> 8; into[at + 3] = instance;
			return at + 4;
		}
		case Kind.float: {
			const view = new DataView(into.buffer, into.byteOffset + at, size);
			if (size === 4) view.setFloat32(0, value as number);
			else view.setFloat64(0, value as number);
			return at + size;
		}
		default: {
			// Two's complement, most significant byte first; the division keeps values past 32 bits exact.
			let n = value as number;
			for (let i = size - 1; i >= 0; i--) {
				const low = ((n % 256) + 256) % 256;
				into[at + i] = low;
				n = (n - low) / 256;
			}
			return at + size;
		}
	}
}

/** The depth of TLV's outermost elements for a request to `base`: a resource is sent as itself. */
function topDepth(base: readonly number[]): number {
	return base.length >= 4 ? 3 : Math.min(Math.max(base.length, 1), 2);
}

interface Node {
	type: number;
	id: number;
	length: number;
	entry?: Entry;
	children?: Node[];
}

/** Nests the entries below `base` the way TLV answers a request for `base`. */
function tree(entries: readonly Entry[], base: readonly number[]): Node[] {
	const top: Node[] = [];
	for (const entry of entries) {
		let level = top;
		// Entries arrive grouped by instance and resource, so a group's node is always the last one.
		for (let depth = topDepth(base); depth < entry.path.length; depth++) {
			const id = entry.path[depth], leaf = depth === entry.path.length - 1;
			if (leaf) {
				level.push({ type: depth === 3 ? resourceInstance : resource, id, length: valueSize(entry.kind, entry.value), entry });
				break;
			}
			let node = level[level.length - 1];
			if (!node || node.id !== id || !node.children) {
				node = { type: depth === 1 ? objectInstance : multipleResource, id, length: 0, children: [] };
				level.push(node);
			}
			level = node.children!;
		}
	}
	for (const node of top) measure(node);
	return top;
}

function measure(node: Node): number {
	if (node.children) {
		node.length = 0;
		for (const child of node.children) node.length += measure(child);
	}
	return headerSize(node.id, node.length) + node.length;
}

function put(nodes: readonly Node[], into: Uint8Array, at: number): number {
	for (const node of nodes) {
		at = putHeader(node.type, node.id, node.length, into, at);
		at = node.children ? put(node.children, into, at) : putValue(node.entry!.kind, node.entry!.value, node.length, into, at);
	}
	return at;
}

export function encodeTlv(entries: readonly Entry[], base: readonly number[]): Uint8Array {
	const nodes = tree(entries, base);
	let size = 0;
	for (const node of nodes) size += headerSize(node.id, node.length) + node.length;
	const bytes = new Uint8Array(size);
	put(nodes, bytes, 0);
	return bytes;
}

/** The entries a TLV write to `base` carries (values as bytes: the resource's kind decodes them); a reason when malformed. */
export function decodeTlv(bytes: Uint8Array, base: readonly number[]): WrittenEntry[] | string {
	const entries: WrittenEntry[] = [];
	if (!base.length) return "tlv out of place";
	const error = decodeLevel(bytes, 0, bytes.length, base.slice(0, topDepth(base)), entries);
	return error ?? entries;
}

function decodeLevel(bytes: Uint8Array, at: number, end: number, path: number[], entries: WrittenEntry[]): string | undefined {
	while (at < end) {
		const typeByte = bytes[at++];
		const idBytes = typeByte & 0x20 ? 2 : 1, lengthBytes = (typeByte >> 3) & 3;
		if (at + idBytes + lengthBytes > end) return "truncated tlv";
		let id = bytes[at++];
		if (idBytes === 2) id = (id << 8) | bytes[at++];
		let length = lengthBytes ? 0 : typeByte & 7;
		for (let i = 0; i < lengthBytes; i++) length = (length << 8) | bytes[at++];
		if (length > end - at) return "truncated tlv";
		const type = typeByte >> 6, depth = path.length;
		// Each type belongs at one depth: object instance under an object, resource under an instance, …
		const expected = type === objectInstance ? 1 : type === resourceInstance ? 3 : 2;
		if (depth !== expected) return "tlv out of place";
		const child = path.concat(id);
		if (type === objectInstance || type === multipleResource) {
			const error = decodeLevel(bytes, at, at + length, child, entries);
			if (error) return error;
		}
		else entries.push({ path: child, value: undefined, bytes: bytes.subarray(at, at + length) });
		at += length;
	}
	return undefined;
}
