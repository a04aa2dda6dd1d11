// Synthetic ESP32 application images for the simulator and tests, built from the documented layout
// (NOTES §5): well-formed enough for the agent's check and the simulated bootloader, deterministic per
// (version, size) so two versions differ in every segment and a rebuild gives the same bytes.

import { createHash } from "node:crypto";

import { chipIds } from "../src/agent/image";
export { chipIds };

const imageMagic = 0xe9;
const headerLength = 24;
const segmentHeaderLength = 8;
const descriptionMagic = 0xabcd5432;
const descriptionLength = 256;
const checksumSeed = 0xef;
const hashLength = 32;
// Segment data ends 3 bytes before the checksum (lengths stay multiples of 4), and image + checksum fills
// whole 16-byte lines, so the image is 16·m bytes with the data ending at 16·m − 36.
const trailerLength = 3 + 1 + hashLength;

type Segment = { loadAddress: number; minimum: number; share: number };

const drom = 0x3f400020; // flash-mapped rodata: app description first
const dram = 0x3ffb0000;
const iram = 0x40080000;
const irom = 0x400d0020; // flash-mapped code
const smallLayout: Segment[] = [
	{ loadAddress: drom, minimum: descriptionLength, share: 0.6 },
	{ loadAddress: iram, minimum: 4, share: 0.4 },
];
const fullLayout: Segment[] = [
	{ loadAddress: drom, minimum: descriptionLength, share: 0.25 },
	{ loadAddress: dram, minimum: 4, share: 0.05 },
	{ loadAddress: iram, minimum: 4, share: 0.15 },
	{ loadAddress: irom, minimum: 4, share: 0.55 },
];

export type AppImageOptions = {
	/** Wanted length in bytes; the image is the nearest multiple of 16 (at least 336 bytes). */
	size: number;
	/** Goes into the app description; at most 31 UTF-8 bytes. */
	version: string;
	chip?: keyof typeof chipIds;
	projectName?: string;
	/** Append the SHA-256 (as ESP-IDF does by default); false: the image ends with its checksum. */
	hashAppended?: boolean;
	/** esp_app_desc_t.secure_version, the anti-rollback counter (default 0). */
	secureVersion?: number;
	/**
	 * esptool's `elf2image --secure-pad-v2`, which ESP-IDF's build adds for apps signed with Secure Boot v2 blocks:
	 * one more segment, zero-filled at load address 0, so that the image (checksum and SHA-256 included) ends on
	 * a 64 KiB flash MMU page and its signature sector begins the next one. Needs the SHA-256 appended.
	 */
	securePad?: boolean;
};

export function makeAppImage(options: AppImageOptions): Uint8Array {
	const { size, version, projectName = "xs-ota-app", secureVersion = 0 } = options;
	if (!Number.isInteger(size) || size <= 0 || size > 16 * 1024 * 1024) throw new Error("bad size");
	if (options.securePad && options.hashAppended === false) throw new Error("secure padding needs the sha-256 appended");

	const layout = size >= 1024 ? fullLayout : smallLayout;
	const overhead = headerLength + layout.length * segmentHeaderLength + trailerLength;
	const smallest = roundUp16(overhead + layout.reduce((sum, segment) => sum + segment.minimum, 0));
	const total = Math.max(Math.round(size / 16) * 16, smallest);
	if (total - size > 16) throw new Error(`size too small (at least ${smallest - 16})`);

	const lengths = segmentLengths(layout, total - overhead);
	const random = randomBytes(`${version}\0${size}`);
	const segments = layout.map((segment, index) => {
		const data = new Uint8Array(lengths[index]);
		random.fill(data);
		if (index === 0) writeDescription(data, version, projectName, size, secureVersion);
		return { loadAddress: segment.loadAddress, data };
	});
	const iramIndex = layout.findIndex((segment) => segment.loadAddress === iram);
	const entry = iram + ((random.seed % Math.min(lengths[iramIndex], 0x4000)) & ~3);
	return assemble(segments, entry, options);
}

/**
	An app image whose code segment carries `payload` (padded with zeros to a multiple of 4) after a segment that
	holds only the app description: real executables (another program's native binary) as the device would get
	them, for measuring patches on bytes that are not synthetic. The entry point is the payload's start.
*/
export function wrapAppImage(payload: Uint8Array, options: Omit<AppImageOptions, "size" | "securePad">): Uint8Array {
	const description = new Uint8Array(descriptionLength);
	writeDescription(description, options.version, options.projectName ?? "xs-ota-app", payload.length, options.secureVersion ?? 0);
	const code = new Uint8Array(Math.ceil(payload.length / 4) * 4);
	code.set(payload);
	return assemble([{ loadAddress: drom, data: description }, { loadAddress: irom, data: code }], irom, options);
}

/** Header, `segments`, zero padding, the checksum ending a 16-byte line, then (unless told not) the SHA-256 of all before it. */
function assemble(segments: { loadAddress: number; data: Uint8Array }[], entry: number, options: Omit<AppImageOptions, "size">): Uint8Array {
	const { chip = "esp32", hashAppended = true } = options;
	const chipId = chipIds[chip];
	if (chipId === undefined) throw new Error("unknown chip");
	const end = segments.reduce((offset, segment) => offset + segmentHeaderLength + segment.data.length, headerLength);
	const checksumOffset = roundUp16(end + 1) - 1;
	const image = new Uint8Array(checksumOffset + 1 + hashLength);
	const view = new DataView(image.buffer);

	// Header and extended header.
	image[0] = imageMagic;
	image[1] = segments.length;
	image[2] = 2; // SPI mode DIO
	image[3] = 0x20; // 4 MB flash, 40 MHz
	view.setUint32(4, entry, true);
	image[8] = 0xee; // WP pin: not used
	view.setUint16(12, chipId, true);
	view.setUint16(17, 399, true); // max full chip revision v3.99
	image[23] = hashAppended ? 1 : 0;

	let offset = headerLength;
	let xor = 0;
	for (const { loadAddress, data } of segments) {
		view.setUint32(offset, loadAddress, true);
		view.setUint32(offset + 4, data.length, true);
		image.set(data, offset + segmentHeaderLength);
		offset += segmentHeaderLength + data.length;
		for (const byte of data) xor ^= byte;
	}

	// Zero padding (already zero), checksum ending a 16-byte line, then the hash of all before it.
	image[checksumOffset] = checksumSeed ^ xor;
	if (!hashAppended) return image.slice(0, checksumOffset + 1);
	image.set(createHash("sha256").update(image.subarray(0, checksumOffset + 1)).digest(), checksumOffset + 1);
	return options.securePad ? securePadded(image) : image;
}

const mmuPageSize = 64 * 1024;

/** `image` (SHA-256 appended) with a padding segment after its others, ending on a flash MMU page. */
function securePadded(image: Uint8Array): Uint8Array {
	const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
	let end = headerLength;
	for (let index = 0; index < image[1]; index++) end += segmentHeaderLength + view.getUint32(end + 4, true);
	// The padding segment's header, then a 16-byte line ending with the checksum, then the hash.
	const total = Math.ceil((end + segmentHeaderLength + 16 + hashLength) / mmuPageSize) * mmuPageSize;
	const padded = new Uint8Array(total);
	padded.set(image.subarray(0, end));
	padded[1] = image[1] + 1;
	new DataView(padded.buffer).setUint32(end + 4, total - end - segmentHeaderLength - 16 - hashLength, true);
	// Zeros leave the checksum as it was.
	padded[total - hashLength - 1] = image[image.length - hashLength - 1];
	padded.set(createHash("sha256").update(padded.subarray(0, total - hashLength)).digest(), total - hashLength);
	return padded;
}

/** Version and project name from an image's app description, or undefined if it has none. */
export function readAppDescription(image: Uint8Array): { version: string; projectName: string } | undefined {
	const dataOffset = headerLength + segmentHeaderLength;
	if (image.length < dataOffset + descriptionLength || image[0] !== imageMagic || image[1] === 0) return undefined;
	const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
	if (view.getUint32(headerLength + 4, true) < descriptionLength) return undefined;
	if (view.getUint32(dataOffset, true) !== descriptionMagic) return undefined;
	return {
		version: readField(image.subarray(dataOffset + 16, dataOffset + 48)),
		projectName: readField(image.subarray(dataOffset + 48, dataOffset + 80)),
	};
}

export function sha256Hex(bytes: Uint8Array): string {
	return createHash("sha256").update(bytes).digest("hex");
}

// Minimums first, then the rest by share; lengths stay multiples of 4 and the last takes the remainder.
function segmentLengths(layout: Segment[], dataLength: number): number[] {
	const surplus = dataLength - layout.reduce((sum, segment) => sum + segment.minimum, 0);
	const lengths = layout.map((segment) => segment.minimum + Math.floor((surplus * segment.share) / 4) * 4);
	lengths[lengths.length - 1] += dataLength - lengths.reduce((sum, length) => sum + length, 0);
	return lengths;
}

// esp_app_desc_t: magic, secure version, 2 reserved words, version, project name, time, date, IDF version,
// ELF SHA-256, reserved to 256 bytes.
function writeDescription(data: Uint8Array, version: string, projectName: string, size: number, secureVersion: number): void {
	data.fill(0, 0, descriptionLength);
	new DataView(data.buffer, data.byteOffset).setUint32(0, descriptionMagic, true);
	new DataView(data.buffer, data.byteOffset).setUint32(4, secureVersion, true);
	writeField(data, 16, maxVersionBytes + 1, version, "version");
	writeField(data, 48, 32, projectName, "project name");
	writeField(data, 80, 16, "12:00:00", "time");
	writeField(data, 96, 16, "Jan  1 2025", "date");
	writeField(data, 112, 32, "v5.4.2", "idf version");
	data.set(createHash("sha256").update(`elf\0${version}\0${size}`).digest(), 144);
}

/** esp_app_desc_t.version: 32 bytes with the NUL. */
export const maxVersionBytes = 31;

function writeField(data: Uint8Array, at: number, length: number, text: string, name: string): void {
	const bytes = new TextEncoder().encode(text);
	if (bytes.length >= length) throw new Error(`${name} too long: at most ${length - 1} bytes, as ESP-IDF's app description holds it`); // keep the NUL terminator
	data.set(bytes, at);
}

function readField(field: Uint8Array): string {
	const end = field.indexOf(0);
	return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
}

// xorshift32 seeded from a hash of the key: fast enough for 4 MB, and unrelated keys give unrelated bytes.
function randomBytes(key: string): { seed: number; fill(into: Uint8Array): void } {
	const seed = createHash("sha256").update(key).digest().readUInt32LE(0) || 1;
	let state = seed;
	return {
		seed,
		fill(into) {
			for (let i = 0; i < into.length; i += 4) {
				state ^= state << 13;
				state ^= state >>> 17;
				state ^= state << 5;
				into[i] = state;
				into[i + 1] = state >>> 8;
				into[i + 2] = state >>> 16;
				into[i + 3] = state >>> 24;
			}
		},
	};
}

function roundUp16(length: number): number {
	return Math.ceil(length / 16) * 16;
}
