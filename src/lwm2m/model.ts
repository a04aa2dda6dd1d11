// The LwM2M data model as the client serves it: objects of instances of resources, each resource of one kind.
// Content formats (content-format.ts) turn a list of entries into bytes and back; objects never see bytes.

import { isWellFormedUtf8, utf8Read } from "../lib/utf8";

export const Kind = { string: 0, integer: 1, unsigned: 2, float: 3, boolean: 4, opaque: 5, time: 6, objlnk: 7, none: 8 } as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];

/** A resource value. Object links are "object:instance" strings; times are seconds since 1970. */
export type Value = string | number | boolean | Uint8Array;

export interface ResourceDef {
	id: number;
	kind: KindCode;
	/** "R" read, "W" write, "RW", or "E" execute. */
	operations: "R" | "W" | "RW" | "E";
	/** A multiple-instance resource: its value is a list, indexed by resource instance id. */
	multiple?: boolean;
}

/** One value at a full path: object, instance, resource, and the resource instance of a multiple resource. */
export interface Entry {
	path: number[];
	kind: KindCode;
	value: Value;
}

/** What a write carries before the object's definition gives it a kind: TLV and opaque hold bytes only. */
export interface WrittenEntry {
	path: number[];
	value: Value | undefined;
	bytes: Uint8Array | undefined;
}

export interface Lwm2mObject {
	readonly id: number;
	/** Object version for the registration's `ver=` ("1.0" is left out there). */
	readonly version: string;
	readonly resources: readonly ResourceDef[];
	instances(): readonly number[];
	/** A readable resource's value, or its list of values when multiple. */
	read(instance: number, resource: number): Value | readonly Value[] | undefined;
	/** Writes one resource; answers with a CoAP response code (content-format.ts's Code). */
	write(instance: number, resource: number, value: Value): number;
	/** Executes a resource with its arguments (may be empty); answers with a CoAP response code. */
	execute(instance: number, resource: number, args: string): number;
}

/** Parses "/5/0/3" (1 to 4 ids, each 0–65535); undefined when malformed. "/" is the empty path. */
export function parsePath(segments: readonly string[]): number[] | undefined {
	if (segments.length > 4) return undefined;
	const path: number[] = [];
	for (const segment of segments) {
		if (!/^\d{1,5}$/.test(segment)) return undefined;
		const id = Number(segment);
		if (id > 65535) return undefined;
		path.push(id);
	}
	return path;
}

export function formatPath(path: readonly number[]): string {
	return "/" + path.join("/");
}

export function resourceDef(object: Lwm2mObject, id: number): ResourceDef | undefined {
	const resources = object.resources;
	for (let i = 0; i < resources.length; i++)
		if (resources[i].id === id) return resources[i];
	return undefined;
}

export function readable(def: ResourceDef): boolean {
	return def.operations === "R" || def.operations === "RW";
}

export function writable(def: ResourceDef): boolean {
	return def.operations === "W" || def.operations === "RW";
}

/** The readable values at or below `path` (an object, an instance, a resource, or one resource instance). */
export function entriesAt(object: Lwm2mObject, path: readonly number[]): Entry[] {
	const entries: Entry[] = [];
	const instances = path.length > 1 ? [path[1]] : object.instances();
	for (const instance of instances) {
		for (const def of object.resources) {
			if (path.length > 2 && def.id !== path[2]) continue;
			if (!readable(def)) continue;
			const value = object.read(instance, def.id);
			if (value === undefined) continue;
			if (!def.multiple) {
				entries.push({ path: [object.id, instance, def.id], kind: def.kind, value: value as Value });
				continue;
			}
			const values = value as readonly Value[];
			for (let i = 0; i < values.length; i++)
				if (path.length < 4 || path[3] === i) entries.push({ path: [object.id, instance, def.id, i], kind: def.kind, value: values[i] });
		}
	}
	return entries;
}

/** The value an entry written in `kind` carries, or undefined when it cannot be one. */
export function coerce(kind: KindCode, entry: WrittenEntry): Value | undefined {
	const { value, bytes } = entry;
	if (bytes) return fromBytes(kind, bytes);
	switch (kind) {
		case Kind.string: return typeof value === "string" ? value : undefined;
		case Kind.opaque: return value instanceof Uint8Array ? value : undefined;
		case Kind.boolean: return typeof value === "boolean" ? value : undefined;
		case Kind.float: return typeof value === "number" && Number.isFinite(value) ? value : undefined;
		case Kind.objlnk: return typeof value === "string" && /^\d{1,5}:\d{1,5}$/.test(value) ? value : undefined;
		case Kind.integer:
		case Kind.time:
			return typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
		case Kind.unsigned:
			return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
	}
	return undefined;
}

/** TLV's value encodings (LwM2M Core §7.4.3): integers big-endian two's complement in 1, 2, 4 or 8 bytes. */
function fromBytes(kind: KindCode, bytes: Uint8Array): Value | undefined {
	const n = bytes.length;
	switch (kind) {
		case Kind.opaque: return bytes;
		case Kind.string: return utf8Text(bytes);
		case Kind.boolean: return n === 1 && bytes[0] <= 1 ? bytes[0] === 1 : undefined;
		case Kind.objlnk: return n === 4 ? `${(bytes[0] << 8) | bytes[1]}:${(bytes[2] << 8) | bytes[3]}` : undefined;
		case Kind.float: {
			if (n !== 4 && n !== 8) return undefined;
			const view = new DataView(bytes.buffer, bytes.byteOffset, n);
			return n === 4 ? view.getFloat32(0) : view.getFloat64(0);
		}
		case Kind.integer:
		case Kind.unsigned:
		case Kind.time: {
			if (n !== 1 && n !== 2 && n !== 4 && n !== 8) return undefined;
			let value = bytes[0] >= 0x80 ? bytes[0] - 256 : bytes[0];
			for (let i = 1; i < n; i++) value = value * 256 + bytes[i];
			if (!Number.isSafeInteger(value) || (kind === Kind.unsigned && value < 0)) return undefined;
			return value;
		}
	}
	return undefined;
}

/** Well-formed UTF-8 only: a string resource never holds what its bytes cannot say. */
export function utf8Text(bytes: Uint8Array): string | undefined {
	return isWellFormedUtf8(bytes, 0, bytes.length) ? utf8Read(bytes, 0, bytes.length) : undefined;
}
