/*
	The persisted download record: everything needed to resume or report an update after any power cut.

	Moddable's ESP32 Preference.set erases the key before writing it, so a cut in between loses the key. The
	record is therefore written alternately under two keys, "fw.a" and "fw.b", each copy carrying a sequence
	number and a CRC-32: a torn write can only destroy the older copy, and load() keeps the newest valid one.

	Binary layout, format 1, little-endian:
	   0 u8   format (1)           1 u8  state           2 u8  result        3 u8  policy
	   4 u32  sequence             8 u32 total size (0 = unknown)           12 u32 committed offset (HTTP)
	  16 u32  image length (0 until verified)                               20 u8  download attempts
	  21 u8   boot switches        22 u8 target slot (0xff = none)          23 u8  flags
	  24 [32] expected digest: SHA-256, or MD5 in the first 16 bytes
	  56 u32  update id (counts requests: the server's key for de-duplicating result reports)
	  60 u8   source (0 pull by URI, 1 AWS job with an MQTT stream, 2 pushed package)   61 u8 stream file id
	  62 u16  stream block size / 256                               64 u16 URI length
	  66 u8   ETag length   67 u8 version length   68 u8 job id length   69 u8 stream id length
	  70 u8   signature length                     71 u8 (zero)          72 u16 block bitmap length
	  74 URI, ETag, version, job id, stream id (UTF-8), signature, block bitmap (bytes),
	     then u32 CRC-32 of every byte before it.
	Flags: 1 digest given, 2 automatic update, 4 result not yet reported, 8 the digest is MD5,
	16 only a newer version than the running one may be installed.
	The block bitmap holds, for a stream, the blocks whose whole flash sectors are written (bit k of byte j is
	block 8j + k).
*/

import type { KeyValueStore, Logger } from "../platform/ports";
import { crc32 } from "../lib/crc32";
import { utf8Length, utf8Read, utf8Write } from "../lib/utf8";
import { type ResultCode, type StateCode, State, Result } from "./firmware-object";
import type { ApplyState } from "../delta/bsdiff-apply";

export const Policy = { savePoint: 0, restart: 1, abort: 2, none: 3 } as const;
export type PolicyCode = (typeof Policy)[keyof typeof Policy];
export const policyNames = ["save point", "restart", "abort", "none"];
/** Policy names as job documents, URI parameters (?recovery=restart) and the command line spell them. */
export const policyCodes = { "save-point": Policy.savePoint, restart: Policy.restart, abort: Policy.abort, none: Policy.none } as const;
export type PolicyName = keyof typeof policyCodes;

export function policyOf(name: string): PolicyCode | undefined {
	return Object.prototype.hasOwnProperty.call(policyCodes, name) ? policyCodes[name as PolicyName] : undefined;
}

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
	/** Expected MD5 of the package (16 bytes), from an AWS "fota" job document. */
	md5: Uint8Array | undefined;
	/** Update runs as soon as the package is verified (LwM2M resource 14). */
	automatic: boolean;
	/** Refuse an image whose version is not newer than the running one. */
	newerOnly: boolean;
	/** A final result was reached but its report was not yet acknowledged. */
	reportPending: boolean;
	updateId: number;
	source: SourceCode;
	uri: string;
	etag: string;
	version: string;
	/** AWS IoT job execution, stream and file; empty for HTTP pulls. */
	jobId: string;
	streamId: string;
	fileId: number;
	blockSize: number;
	/** ECDSA P-256 signature (DER) over the image's SHA-256, from an AWS "afr_ota" job document. */
	signature: Uint8Array | undefined;
	blocks: Uint8Array | undefined;
	/** The package is a patch: its header and the applier's last checkpoint. */
	patch: PatchRecord | undefined;
}

export interface PatchRecord {
	compression: number;
	windowBits: number;
	lookaheadBits: number;
	newSize: number;
	/** Patch offset where the compressed data starts. */
	dataOffset: number;
	patchSize: number;
	oldSize: number;
	state: ApplyState;
}

export const Source = { http: 0, awsStream: 1, push: 2 } as const;
export type SourceCode = (typeof Source)[keyof typeof Source];

export const recordKeys = ["fw.a", "fw.b"] as const;
export const formatVersion = 1;
export const maxUriBytes = 2048;
export const maxEtagBytes = 255;
export const maxVersionBytes = 32;
export const maxJobIdBytes = 64;
export const maxStreamIdBytes = 128;
export const maxSignatureBytes = 72;
export const maxBitmapBytes = 1024;
const headerBytes = 74;
const crcBytes = 4;
const patchBytes = 52;
const noSlot = 0xff;
const flagDigest = 1;
const flagAutomatic = 2;
const flagReportPending = 4;
const flagMd5 = 8;
const flagNewerOnly = 16;

export function emptyRecord(): DownloadRecord {
	return {
		state: State.idle, result: Result.initial, policy: Policy.savePoint, sequence: 0, totalSize: 0, committed: 0,
		imageLength: 0, attempts: 0, switches: 0, targetSlot: -1, sha256: undefined, md5: undefined, automatic: false, newerOnly: false, reportPending: false, updateId: 0, source: Source.http,
		uri: "", etag: "", version: "", jobId: "", streamId: "", fileId: 0, blockSize: 0, signature: undefined, blocks: undefined, patch: undefined,
	};
}

export function encodedLength(record: DownloadRecord): number {
	return headerBytes + utf8Length(record.uri) + utf8Length(record.etag) + utf8Length(record.version) +
		utf8Length(record.jobId) + utf8Length(record.streamId) + (record.signature?.length ?? 0) + (record.blocks?.length ?? 0) + (record.patch ? patchBytes : 0) + crcBytes;
}

/** Encodes into `bytes`, which must be exactly encodedLength(record) long. */
export function encodeRecord(record: DownloadRecord, bytes: Uint8Array): void {
	const uriLength = checkedLength(record.uri, maxUriBytes, "uri");
	const etagLength = checkedLength(record.etag, maxEtagBytes, "etag");
	const versionLength = checkedLength(record.version, maxVersionBytes, "version");
	const jobIdLength = checkedLength(record.jobId, maxJobIdBytes, "job id");
	const streamIdLength = checkedLength(record.streamId, maxStreamIdBytes, "stream id");
	const signature = record.signature, blocks = record.blocks, digest = record.md5 ?? record.sha256;
	if (signature && signature.length > maxSignatureBytes) throw new Error("signature too long");
	if (blocks && blocks.length > maxBitmapBytes) throw new Error("bitmap too long");
	if (record.md5 && record.sha256) throw new Error("two digests");
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
	bytes[23] = (digest ? flagDigest : 0) | (record.md5 ? flagMd5 : 0) | (record.automatic ? flagAutomatic : 0) |
		(record.reportPending ? flagReportPending : 0) | (record.newerOnly ? flagNewerOnly : 0);
	for (let i = 0; i < 32; i++)
		bytes[24 + i] = digest && i < digest.length ? digest[i] : 0;
	put32(bytes, 56, record.updateId);
	bytes[60] = record.source;
	bytes[61] = record.fileId;
	put16(bytes, 62, record.blockSize >> 8);
	put16(bytes, 64, uriLength);
	bytes[66] = etagLength;
	bytes[67] = versionLength;
	bytes[68] = jobIdLength;
	bytes[69] = streamIdLength;
	bytes[70] = signature?.length ?? 0;
	bytes[71] = record.patch ? patchBytes : 0;
	put16(bytes, 72, blocks?.length ?? 0);
	let at = utf8Write(record.uri, bytes, headerBytes);
	at = utf8Write(record.etag, bytes, at);
	at = utf8Write(record.version, bytes, at);
	at = utf8Write(record.jobId, bytes, at);
	at = utf8Write(record.streamId, bytes, at);
	if (signature) { bytes.set(signature, at); at += signature.length; }
	if (blocks) { bytes.set(blocks, at); at += blocks.length; }
	if (record.patch) { encodePatch(record.patch, bytes, at); at += patchBytes; }
	put32(bytes, at, crc32(bytes, 0, at));
}

function encodePatch(patch: PatchRecord, bytes: Uint8Array, at: number): void {
	const { state } = patch, { decoder } = state;
	bytes[at] = state.phase;
	bytes[at + 1] = patch.compression;
	bytes[at + 2] = patch.windowBits;
	bytes[at + 3] = patch.lookaheadBits;
	put32(bytes, at + 4, patch.newSize);
	put32(bytes, at + 8, patch.dataOffset);
	put32(bytes, at + 12, state.newOffset);
	put32(bytes, at + 16, state.oldOffset);
	put32(bytes, at + 20, state.remaining);
	put32(bytes, at + 24, state.runDone);
	put32(bytes, at + 28, decoder.consumed);
	bytes[at + 32] = decoder.bits;
	bytes[at + 33] = decoder.phase;
	put16(bytes, at + 34, 0);
	put32(bytes, at + 36, decoder.a);
	put32(bytes, at + 40, decoder.b);
	put32(bytes, at + 44, patch.patchSize);
	put32(bytes, at + 48, patch.oldSize);
}

function decodePatch(view: DataView, at: number): PatchRecord {
	const word = (index: number) => view.getUint32(at + 4 + 4 * index, true);
	return {
		compression: view.getUint8(at + 1), windowBits: view.getUint8(at + 2), lookaheadBits: view.getUint8(at + 3),
		newSize: word(0), dataOffset: word(1), patchSize: view.getUint32(at + 44, true), oldSize: view.getUint32(at + 48, true),
		state: {
			phase: view.getUint8(at), newOffset: word(2), oldOffset: word(3), remaining: word(4), runDone: word(5),
			decoder: { consumed: word(6), bits: view.getUint8(at + 32), phase: view.getUint8(at + 33), a: view.getUint32(at + 36, true), b: view.getUint32(at + 40, true) },
		},
	};
}

function checkedLength(text: string, max: number, what: string): number {
	const length = utf8Length(text);
	if (length > max) throw new Error(`${what} too long`);
	return length;
}

function put16(bytes: Uint8Array, at: number, value: number): void {
	bytes[at] = value & 0xff;
	bytes[at + 1] = (value >>> 8) & 0xff;
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
	const lengths = [view.getUint16(64, true), bytes[66], bytes[67], bytes[68], bytes[69], bytes[70], view.getUint16(72, true), bytes[71]];
	if (bytes[71] !== 0 && bytes[71] !== patchBytes) return "bad patch section";
	if (headerBytes + lengths.reduce((sum, length) => sum + length, 0) !== end) return "bad lengths";
	const state = bytes[1], result = bytes[2], policy = bytes[3], source = bytes[60], flags = bytes[23];
	if (state > State.updating || result > Result.deferred || policy > Policy.none || source > Source.push) return "bad codes";
	let at = headerBytes;
	const text = (length: number) => utf8Read(bytes, at, (at += length));
	const raw = (length: number) => (length ? bytes.slice(at, (at += length)) : undefined);
	const digest = flags & flagDigest ? bytes.slice(24, flags & flagMd5 ? 40 : 56) : undefined;
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
		sha256: flags & flagMd5 ? undefined : digest,
		md5: flags & flagMd5 ? digest : undefined,
		automatic: (flags & flagAutomatic) !== 0,
		reportPending: (flags & flagReportPending) !== 0,
		newerOnly: (flags & flagNewerOnly) !== 0,
		updateId: view.getUint32(56, true),
		source: source as SourceCode,
		fileId: bytes[61],
		blockSize: view.getUint16(62, true) << 8,
		uri: text(lengths[0]),
		etag: text(lengths[1]),
		version: text(lengths[2]),
		jobId: text(lengths[3]),
		streamId: text(lengths[4]),
		signature: raw(lengths[5]),
		blocks: raw(lengths[6]),
		patch: lengths[7] ? decodePatch(view, at) : undefined,
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
export function sequenceAfter(a: number, b: number): boolean {
	return a !== b && ((a - b) >>> 0) < 0x80000000;
}
