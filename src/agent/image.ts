/*
	Checks an ESP32 application image in place, reading it back from the slot it was written to, so what is
	checked is what the bootloader will see. Layout (little-endian, NOTES §5):

	  0  u8  magic 0xE9          1  u8  segment count (1..16)     2  u8 SPI mode   3 u8 SPI speed/size
	  4  u32 entry address       8  extended header (16 bytes): chip id u16 at 12, hash-appended flag at 23
	  24 segments: load address u32, data length u32, data
	     zero padding, then a checksum byte (0xEF ^ every segment data byte) ending on a 16-byte boundary
	     then, with the hash flag, the SHA-256 of everything before it (32 bytes)

	The first segment's data begins with the 256-byte app description (magic 0xABCD5432, secure version u32
	at 4, version at 16, project name at 48, 32 bytes each, NUL-terminated unless full).

	Memory stays flat whatever the image size: every read goes into the caller's scratch buffer, the digest is
	fed the scratch itself (one subarray for the final partial piece), and the checksum runs over an Int32Array
	view of the same bytes (XOR folds the same whichever lane a byte sits in). A second digest may ride the same
	pass over a longer stretch (the Secure Boot v2 signed data: signature-block.ts), so signing costs no pass.
*/

import type { Digest, FlashSlot, RunningImage } from "../platform/ports";
import { Result } from "./firmware-object";
import { utf8Read } from "../lib/utf8";

export const imageMagic = 0xe9;
export const maxSegmentCount = 16;
export const imageHeaderLength = 24; // 8-byte header + 16-byte extended header
export const segmentCountOffset = 1;
export const chipIdOffset = 12;
export const hashAppendedOffset = 23;
export const segmentHeaderLength = 8;
export const segmentLengthOffset = 4; // within a segment header, after the load address
export const checksumSeed = 0xef;
export const checksumAlignment = 16; // image + checksum byte is a multiple of this
export const sha256Length = 32;

export const appDescriptionMagic = 0xabcd5432;
export const appDescriptionLength = 256;
export const appSecureVersionOffset = 4;
export const appVersionOffset = 16;
export const appProjectNameOffset = 48;
export const appStringLength = 32;

export const minScratchLength = 4096;

const noSegments = new Int32Array(0);

export type ImageFailure = typeof Result.integrityFailure | typeof Result.unsupportedPackage;

/** What the headers and the app description say, before any data is trusted. */
export interface ImageLayout {
	/** Bytes the image occupies in the slot: segments, padding, checksum and appended hash. */
	imageLength: number;
	version: string;
	projectName: string;
	/** esp_app_desc_t.secure_version: the anti-rollback counter. */
	secureVersion: number;
	hashed: boolean;
}

/** A digest that rides checkImage's pass over the slot's first `length` bytes, written into `into`. */
export interface ExtraDigest {
	digest: Digest;
	/** Bytes to digest, given the image length (past it: padding the same file carries). */
	length(imageLength: number): number;
	into: Uint8Array;
}

export type ImageRefusal = { ok: false; result: ImageFailure; reason: string };

export type ImageCheck =
	| {
		ok: true;
		/** Bytes the image occupies in the slot: segments, padding, checksum and appended hash. */
		imageLength: number;
		version: string;
		projectName: string;
		secureVersion: number;
		/** SHA-256 of the whole image (imageLength bytes), as `sha256sum` of the .bin would give. */
		sha256: Uint8Array;
		/** The image carries its own SHA-256 (checked); without it only the 8-bit checksum vouches for it. */
		hashed: boolean;
	}
	| ImageRefusal;

/**
 * Verifies the image at the start of `slot`: structure and chip (else result 6), checksum and appended
 * SHA-256 (else result 5). Never throws on bad content, erased flash included; throws only on a scratch
 * buffer under 4096 bytes or a failing slot read.
 */
export function checkImage(slot: FlashSlot, digest: Digest, expectedChipId: number, scratch: Uint8Array, extra?: ExtraDigest): ImageCheck {
	const check = verifyImage(slot, digest, expectedChipId, scratch, extra);
	// The appended hash leaves itself out; servers publish the hash of the whole file, so take it too.
	if (check.ok && check.hashed) slotDigest(slot, check.imageLength, digest, scratch, check.sha256);
	return check;
}

/**
 * What the bootloader checks, in one pass: checkImage without the hash of the whole file (`sha256` is the
 * appended hash's, of the bytes before it, when the image carries one).
 */
export function verifyImage(slot: FlashSlot, digest: Digest, expectedChipId: number, scratch: Uint8Array, extra?: ExtraDigest): ImageCheck {
	requireScratch(scratch);
	const layout = walkImage(slot, expectedChipId, scratch);
	if (!layout.ok) return layout;
	const { imageLength, version, projectName, secureVersion, segments } = layout;
	const hashAppended = layout.hashed;
	const checksumOffset = imageLength - 1 - (hashAppended ? sha256Length : 0);

	// One pass over everything up to and including the checksum byte: digest and checksum together (and the
	// extra digest, which may run further).
	const sha256 = new Uint8Array(sha256Length);
	digest.reset();
	extra?.digest.reset();
	const extraLength = extra ? Math.min(extra.length(imageLength), slot.byteLength) : 0;
	const xor = streamSlot(slot, checksumOffset + 1, digest, scratch, segments, extra?.digest, extraLength);
	digest.finish(sha256);
	if (extra) extra.digest.finish(extra.into);

	slot.readInto(checksumOffset, imageLength - checksumOffset, scratch);
	if ((checksumSeed ^ xor) !== scratch[0]) return integrity("checksum mismatch");
	if (!hashAppended) return { ok: true, imageLength, version, projectName, secureVersion, sha256, hashed: false };

	for (let i = 0; i < sha256Length; i++)
		if (sha256[i] !== scratch[1 + i]) return integrity("hash mismatch");
	return { ok: true, imageLength, version, projectName, secureVersion, sha256, hashed: true };
}

/** Reads the headers and the app description only (the running image's, say): no data is checked. */
export function readImageLayout(slot: RunningImage, expectedChipId: number, scratch: Uint8Array): (ImageLayout & { ok: true }) | ImageRefusal {
	requireScratch(scratch);
	const layout = walkImage(slot, expectedChipId, scratch);
	if (!layout.ok) return layout;
	const { imageLength, version, projectName, secureVersion, hashed } = layout;
	return { ok: true, imageLength, version, projectName, secureVersion, hashed };
}

function walkImage(slot: RunningImage, expectedChipId: number, scratch: Uint8Array): (ImageLayout & { ok: true; segments: Int32Array }) | ImageRefusal {
	const slotLength = slot.byteLength;
	if (slotLength < imageHeaderLength) return unsupported("slot too small");

	slot.readInto(0, imageHeaderLength, scratch);
	if (scratch[0] !== imageMagic) return unsupported("bad magic");
	const segmentCount = scratch[segmentCountOffset];
	if (segmentCount < 1 || segmentCount > maxSegmentCount) return unsupported("bad segment count");
	if (readU16(scratch, chipIdOffset) !== expectedChipId) return unsupported("wrong chip");
	const hashAppended = scratch[hashAppendedOffset];
	if (hashAppended > 1) return unsupported("bad hash flag");

	// Walk the segment headers first: everything must lie inside the slot before any data is trusted.
	const segments = new Int32Array(segmentCount * 2); // data offset, data length
	let offset = imageHeaderLength;
	for (let index = 0; index < segmentCount; index++) {
		if (segmentHeaderLength > slotLength - offset) return unsupported("segment past slot end");
		slot.readInto(offset, segmentHeaderLength, scratch);
		offset += segmentHeaderLength;
		const dataLength = readU32(scratch, segmentLengthOffset);
		if (dataLength > slotLength - offset) return unsupported("segment past slot end");
		segments[2 * index] = offset;
		segments[2 * index + 1] = dataLength;
		offset += dataLength;
	}

	if (segments[1] < appDescriptionLength) return unsupported("no app description");
	slot.readInto(segments[0], appDescriptionLength, scratch);
	if (readU32(scratch, 0) !== appDescriptionMagic) return unsupported("no app description");
	const version = readString(scratch, appVersionOffset);
	const projectName = readString(scratch, appProjectNameOffset);
	if (version === undefined || projectName === undefined) return unsupported("bad app description");
	const secureVersion = readU32(scratch, appSecureVersionOffset);

	const checksumOffset = offset + (checksumAlignment - 1 - (offset % checksumAlignment));
	const imageLength = checksumOffset + 1 + (hashAppended ? sha256Length : 0);
	if (imageLength > slotLength) return unsupported("image past slot end");
	return { ok: true, imageLength, version, projectName, secureVersion, hashed: hashAppended === 1, segments };
}

/** Writes into `into` the digest (SHA-256, MD5: whatever `digest` computes) of the slot's first `length` bytes. */
export function slotDigest(slot: FlashSlot, length: number, digest: Digest, scratch: Uint8Array, into: Uint8Array): void {
	requireScratch(scratch);
	if (!(length >= 0 && length <= slot.byteLength)) throw new Error("length past slot end");
	digest.reset();
	streamSlot(slot, length, digest, scratch, noSegments);
	digest.finish(into);
}

/**
 * Reads the slot's first `length` bytes through `scratch`, feeding each piece to `digest` (and the first
 * `extraLength` bytes to `extra`), and returns the XOR of the bytes inside `segments` (pairs of data offset
 * and length, in order).
 */
function streamSlot(slot: FlashSlot, length: number, digest: Digest, scratch: Uint8Array, segments: Int32Array, extra?: Digest, extraLength = 0): number {
	const pieceLength = scratch.length;
	const words = scratch.byteOffset % 4 === 0 ? new Int32Array(scratch.buffer, scratch.byteOffset, pieceLength >> 2) : undefined;
	const segmentCount = segments.length >> 1;
	const passLength = Math.max(length, extraLength);
	let segment = 0; // first segment not yet wholly behind us
	let xor = 0;
	for (let position = 0; position < passLength; position += pieceLength) {
		const count = Math.min(pieceLength, passLength - position);
		slot.readInto(position, count, scratch);
		// Only each digest's last piece can be short, so this makes at most one view per digest and call.
		if (extra && position < extraLength) extra.write(piece(scratch, Math.min(count, extraLength - position)));
		if (position >= length) continue;
		digest.write(piece(scratch, Math.min(count, length - position)));

		const end = position + count;
		while (segment < segmentCount) {
			const dataStart = segments[2 * segment];
			const dataEnd = dataStart + segments[2 * segment + 1];
			if (dataStart >= end) break;
			const from = dataStart > position ? dataStart : position;
			const to = dataEnd < end ? dataEnd : end;
			if (from < to) xor ^= xorBytes(scratch, words, from - position, to - position);
			if (dataEnd > end) break;
			segment++;
		}
	}
	return xor;
}

function piece(scratch: Uint8Array, count: number): Uint8Array {
	return count === scratch.length ? scratch : scratch.subarray(0, count);
}

/** XOR of bytes[start..end), a word at a time where aligned (`words` views the same memory as `bytes`). */
function xorBytes(bytes: Uint8Array, words: Int32Array | undefined, start: number, end: number): number {
	let xor = 0;
	let i = start;
	if (words) {
		while (i < end && (i & 3) !== 0) xor ^= bytes[i++];
		const wordEnd = end >> 2;
		let lanes = 0;
		for (let word = i >> 2; word < wordEnd; word++) lanes ^= words[word];
		if (wordEnd << 2 > i) i = wordEnd << 2;
		xor ^= (lanes ^ (lanes >>> 8) ^ (lanes >>> 16) ^ (lanes >>> 24)) & 0xff;
	}
	while (i < end) xor ^= bytes[i++];
	return xor;
}

/** A NUL-terminated (or full) 32-byte field; undefined when it is not text. */
function readString(bytes: Uint8Array, at: number): string | undefined {
	let end = at;
	while (end < at + appStringLength && bytes[end] !== 0) end++;
	try {
		return utf8Read(bytes, at, end);
	}
	catch {
		return undefined; // a code point out of range: garbage, not a version
	}
}

function readU16(bytes: Uint8Array, at: number): number {
	return bytes[at] | (bytes[at + 1] << 8);
}

export function readU32(bytes: Uint8Array, at: number): number {
	return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

function requireScratch(scratch: Uint8Array): void {
	if (scratch.length < minScratchLength) throw new Error("scratch too small");
}

function unsupported(reason: string): ImageRefusal {
	return { ok: false, result: Result.unsupportedPackage, reason };
}

function integrity(reason: string): ImageRefusal {
	return { ok: false, result: Result.integrityFailure, reason };
}

/** Chip ids in the extended header, by the names boards and mcconfig use. */
export const chipIds = { esp32: 0x0000, esp32s2: 0x0002, esp32c3: 0x0005, esp32s3: 0x0009, esp32c2: 0x000c, esp32c6: 0x000d, esp32h2: 0x0010 };

export function chipIdOf(name: string): number {
	const id = (chipIds as { [name: string]: number })[name];
	if (id === undefined) throw new Error(`unknown chip ${name}`);
	return id;
}
