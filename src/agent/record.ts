/*
	The persisted download record: everything needed to resume or report an update after any power cut.

	Moddable's ESP32 Preference.set erases the key before writing it, so a cut in between loses the key. The
	record is therefore written alternately under two keys, "fw.a" and "fw.b", each copy carrying a sequence
	number and a CRC-32: a torn write can only destroy the older copy, and load() keeps the newest valid one.

	Binary layout, format 1, little-endian:
	   0 u8   format (1)           1 u8  state           2 u8  result        3 u8  policy
	   4 u32  sequence             8 u32 total size (0 = unknown)           12 u32 committed offset
	  16 u32  image length (0 until verified)                               20 u8  download attempts
	  21 u8   boot switches        22 u8 target slot (0xff = none)          23 u8  flags (1 sha256 given,
	                                                                   2 automatic update, 4 result not yet reported)
	  24 [32] expected SHA-256     56 u16 URI length   58 u8 ETag length   59 u8 version length
	  60 u32  update id (counts requests: the server's key for de-duplicating result reports)
	  64 URI, ETag, version (UTF-8), then u32 CRC-32 of every byte before it.
*/

import type { KeyValueStore, Logger } from "../platform/ports";
import { crc32 } from "../lib/crc32";
import { utf8Length, utf8Read, utf8Write } from "../lib/utf8";
import { type ResultCode, type StateCode, State, Result } from "./firmware-object";

export const Policy = { savePoint: 0, restart: 1, abort: 2, none: 3 } as const;
export type PolicyCode = (typeof Policy)[keyof typeof Policy];
export const policyNames = ["save point", "restart", "abort", "none"];

export interface DownloadRecord {
	state: StateCode;
	result: ResultCode;
	policy: PolicyCode;
	sequence: number;
	totalSize: number;
	committed: number;
	imageLength: number;
	attempts: number;
	switches: number;
	targetSlot: number;
	sha256: Uint8Array | undefined;
	/** Update runs as soon as the package is verified (LwM2M resource 14). */
	automatic: boolean;
	/** A final result was reached but its report was not yet acknowledged. */
	reportPending: boolean;
	updateId: number;
	uri: string;
	etag: string;
	version: string;
}

export const recordKeys = ["fw.a", "fw.b"] as const;
export const formatVersion = 1;
export const maxUriBytes = 2048;
export const maxEtagBytes = 255;
export const maxVersionBytes = 32;
const headerBytes = 64;
const crcBytes = 4;
const noSlot = 0xff;
const flagSha256 = 1;
const flagAutomatic = 2;
const flagReportPending = 4;

export function emptyRecord(): DownloadRecord {
	return {
		state: State.idle, result: Result.initial, policy: Policy.savePoint, sequence: 0, totalSize: 0, committed: 0,
		imageLength: 0, attempts: 0, switches: 0, targetSlot: -1, sha256: undefined, automatic: false, reportPending: false, updateId: 0, uri: "", etag: "", version: "",
	};
}

export function encodedLength(record: DownloadRecord): number {
	return headerBytes + utf8Length(record.uri) + utf8Length(record.etag) + utf8Length(record.version) + crcBytes;
}

/** Encodes into `bytes`, which must be exactly encodedLength(record) long. */
export function encodeRecord(record: DownloadRecord, bytes: Uint8Array): void {
	const uriLength = utf8Length(record.uri), etagLength = utf8Length(record.etag), versionLength = utf8Length(record.version);
	if (uriLength > maxUriBytes) throw new Error("uri too long");
	if (etagLength > maxEtagBytes) throw new Error("etag too long");
	if (versionLength > maxVersionBytes) throw new Error("version too long");
	bytes[0] = formatVersion;
	bytes[1] = record.state;
	bytes[2] = record.result;
	bytes[3] = record.policy;
	put32(bytes, 4, record.sequence);
	put32(bytes, 8, record.totalSize);
	put32(bytes, 12, record.committed);
	put32(bytes, 16, record.imageLength);
	bytes[20] = Math.min(record.attempts, 255);
	bytes[21] = Math.min(record.switches, 255);
	bytes[22] = record.targetSlot < 0 ? noSlot : record.targetSlot;
	bytes[23] = (record.sha256 ? flagSha256 : 0) | (record.automatic ? flagAutomatic : 0) | (record.reportPending ? flagReportPending : 0);
	for (let i = 0; i < 32; i++)
		bytes[24 + i] = record.sha256 ? record.sha256[i] : 0;
	bytes[56] = uriLength & 0xff;
	bytes[57] = uriLength >> 8;
	bytes[58] = etagLength;
	bytes[59] = versionLength;
	put32(bytes, 60, record.updateId);
	let at = utf8Write(record.uri, bytes, headerBytes);
	at = utf8Write(record.etag, bytes, at);
	at = utf8Write(record.version, bytes, at);
	put32(bytes, at, crc32(bytes, 0, at));
}

// Byte by byte rather than through a DataView: a checkpoint must not allocate.
function put32(bytes: Uint8Array, at: number, value: number): void {
	bytes[at] = value & 0xff;
	bytes[at + 1] = (value >>> 8) & 0xff;
	bytes[at + 2] = (value >>> 16) & 0xff;
	bytes[at + 3] = value >>> 24;
}

/** Decodes a stored copy, or returns the short reason it cannot be trusted. */
export function decodeRecord(bytes: Uint8Array): DownloadRecord | string {
	if (bytes.length < headerBytes + crcBytes) return "too short";
	const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
	const end = bytes.length - crcBytes;
	if (view.getUint32(end, true) !== crc32(bytes, 0, end)) return "crc mismatch";
	if (bytes[0] !== formatVersion) return `unknown format ${bytes[0]}`;
	const uriLength = view.getUint16(56, true), etagLength = bytes[58], versionLength = bytes[59];
	if (headerBytes + uriLength + etagLength + versionLength !== end) return "bad lengths";
	const state = bytes[1], result = bytes[2], policy = bytes[3];
	if (state > State.updating || result > Result.deferred || policy > Policy.none) return "bad codes";
	const record: DownloadRecord = {
		state: state as StateCode,
		result: result as ResultCode,
		policy: policy as PolicyCode,
		sequence: view.getUint32(4, true),
		totalSize: view.getUint32(8, true),
		committed: view.getUint32(12, true),
		imageLength: view.getUint32(16, true),
		attempts: bytes[20],
		switches: bytes[21],
		targetSlot: bytes[22] === noSlot ? -1 : bytes[22],
		sha256: bytes[23] & flagSha256 ? bytes.slice(24, 56) : undefined,
		automatic: (bytes[23] & flagAutomatic) !== 0,
		reportPending: (bytes[23] & flagReportPending) !== 0,
		updateId: view.getUint32(60, true),
		uri: utf8Read(bytes, headerBytes, headerBytes + uriLength),
		etag: utf8Read(bytes, headerBytes + uriLength, headerBytes + uriLength + etagLength),
		version: utf8Read(bytes, headerBytes + uriLength + etagLength, end),
	};
	if (record.totalSize && record.committed > record.totalSize) return "offset past size";
	return record;
}

/** Loads and saves the record under its two alternating keys. */
export class RecordStore {
	#store: KeyValueStore;
	#log: Logger;
	#newestKey = -1;
	#sequence = 0;
	#buffer = new ArrayBuffer(0);
	#bytes = new Uint8Array(this.#buffer);

	constructor(store: KeyValueStore, log: Logger) {
		this.#store = store;
		this.#log = log;
	}

	/** The newest trustworthy copy, or undefined; untrusted copies are logged and ignored, never fatal. */
	load(): DownloadRecord | undefined {
		let newest: DownloadRecord | undefined;
		for (let i = 0; i < recordKeys.length; i++) {
			const value = this.#store.get(recordKeys[i]);
			if (value === undefined) continue;
			const decoded = value instanceof ArrayBuffer ? decodeRecord(new Uint8Array(value)) : "not a buffer";
			if (typeof decoded === "string") {
				this.#log(`record ${recordKeys[i]} discarded: ${decoded}`);
				continue;
			}
			if (!newest || sequenceAfter(decoded.sequence, newest.sequence)) {
				newest = decoded;
				this.#newestKey = i;
			}
		}
		if (newest) this.#sequence = newest.sequence;
		return newest;
	}

	/** Writes the record (with the next sequence number) over the older copy. */
	save(record: DownloadRecord): void {
		record.sequence = this.#sequence = (this.#sequence + 1) >>> 0;
		const length = encodedLength(record);
		if (this.#buffer.byteLength !== length) {
			this.#buffer = new ArrayBuffer(length);
			this.#bytes = new Uint8Array(this.#buffer);
		}
		encodeRecord(record, this.#bytes);
		const key = this.#newestKey === 0 ? 1 : 0;
		this.#store.set(recordKeys[key], this.#buffer);
		this.#newestKey = key;
	}

	/** Forgets the record, older copy first, so a cut in between still leaves a consistent newest copy. */
	clear(): void {
		const newest = this.#newestKey < 0 ? 0 : this.#newestKey;
		this.#store.delete(recordKeys[1 - newest]);
		this.#store.delete(recordKeys[newest]);
		this.#newestKey = -1;
	}
}

/** Serial-number comparison, so the sequence may wrap after 2^32 saves. */
function sequenceAfter(a: number, b: number): boolean {
	return a !== b && ((a - b) >>> 0) < 0x80000000;
}
