/*
	The front of a patch: ESP-IDF's esp_delta_ota framing (optional) and detools' sequential header.

	esp_delta_ota (64 bytes): u32 magic 0xfccdde10 (little-endian), the SHA-256 of the base image (the digest
	ESP-IDF computes over the running app: the hash appended to the image), 28 reserved bytes.
	detools sequential: one byte (bit 7 zero, bits 6–4 patch type 0 = sequential, bits 3–0 compression), the
	new image's size (detools' size encoding, see readSize), and for heatshrink one byte
	(window − 4) << 4 | (lookahead − 3). The compressed data follows.
*/

export const Compression = { none: 0, lzma: 1, crle: 2, bz2: 3, heatshrink: 4, zstd: 5, lz4: 6 } as const;
const compressionNames = ["none", "lzma", "crle", "bz2", "heatshrink", "zstd", "lz4"];

export const framingMagic = 0xfccdde10;
export const framingBytes = 64;
/** The largest heatshrink window applied: its bytes are held in RAM. */
export const maxWindowBits = 12;
/** The most header bytes to hold before the header is known. */
export const maxHeaderBytes = framingBytes + 1 + 10 + 1;

export interface PatchHeader {
	/** Whether the esp_delta_ota framing came first (then baseSha256 holds the base's digest). */
	framed: boolean;
	baseSha256: Uint8Array;
	compression: number;
	windowBits: number;
	lookaheadBits: number;
	/** Size of the image the patch makes. */
	newSize: number;
	/** Patch offset where the compressed data starts. */
	dataOffset: number;
}

export function emptyHeader(): PatchHeader {
	return { framed: false, baseSha256: new Uint8Array(32), compression: 0, windowBits: 0, lookaheadBits: 0, newSize: 0, dataOffset: 0 };
}

/** Whether a package starting with `first` is a patch (an ESP32 app image starts with 0xe9). */
export function isPatchStart(first: number): boolean {
	return first === (framingMagic & 0xff) || (first & 0xf0) === 0;
}

/**
	Reads the header from the first `length` bytes of `bytes` into `header`: "more" when more bytes are needed,
	"ok", or the reason the patch is not one this applier takes.
*/
export function readHeader(bytes: Uint8Array, length: number, header: PatchHeader): "more" | "ok" | string {
	let at = 0;
	if (length < 1) return "more";
	header.framed = bytes[0] === (framingMagic & 0xff);
	if (header.framed) {
		if (length < framingBytes + 1) return "more";
		const magic = (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
		if (magic !== framingMagic) return "not a patch: bad esp_delta_ota magic";
		header.baseSha256.set(bytes.subarray(4, 36));
		at = framingBytes;
	}
	const kind = bytes[at++];
	if (kind & 0x80) return "not a patch: bad detools header";
	const type = (kind >> 4) & 7, compression = kind & 15;
	if (type !== 0) return `detools patch type ${type} is not supported (only sequential)`;
	if (compression >= compressionNames.length) return `unknown detools compression ${compression}`;
	if (compression !== Compression.none && compression !== Compression.crle && compression !== Compression.heatshrink)
		return `detools compression ${compressionNames[compression]} is not supported (none, crle, heatshrink)`;
	header.compression = compression;
	const size = readSize(bytes, at, length);
	if (size === undefined) return "more";
	if (size.value <= 0) return "patch makes an empty image";
	header.newSize = size.value;
	at = size.end;
	if (compression === Compression.heatshrink) {
		if (length <= at) return "more";
		header.windowBits = (bytes[at] >> 4) + 4;
		header.lookaheadBits = (bytes[at] & 15) + 3;
		at++;
		if (header.windowBits > maxWindowBits) return `heatshrink window 2^${header.windowBits} is larger than 2^${maxWindowBits}`;
		if (header.lookaheadBits >= header.windowBits) return "bad heatshrink parameters";
	}
	header.dataOffset = at;
	return "ok";
}

/**
	detools' size encoding: the first byte holds 6 bits of value, bit 6 the sign, bit 7 "more"; each next byte
	7 more bits (least significant first) and bit 7 "more". Undefined when the bytes end before the size does.
*/
export function readSize(bytes: Uint8Array, at: number, length: number): { value: number; end: number } | undefined {
	if (at >= length) return undefined;
	let byte = bytes[at++];
	const negative = (byte & 0x40) !== 0;
	let value = byte & 0x3f, scale = 64;
	while (byte & 0x80) {
		if (at >= length || scale > 2 ** 48) return undefined;
		byte = bytes[at++];
		value += (byte & 0x7f) * scale;
		scale *= 128;
	}
	return { value: negative ? -value : value, end: at };
}
