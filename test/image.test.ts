import { test } from "uvu";
import * as assert from "uvu/assert";
import { chipIds, makeAppImage, readAppDescription, sha256Hex, wrapAppImage } from "../host-sim/image";
import { checkImage, hashAppendedOffset, imageHeaderLength, segmentHeaderLength, slotDigest, type ImageCheck } from "../src/agent/image";
import type { Digest, FlashSlot } from "../src/platform/ports";
import { MemorySlot, NodeDigest } from "./support/memory-slot";

const KiB = 1024;
const MiB = 1024 * KiB;
const esp32 = chipIds.esp32;

function slotWith(image: Uint8Array, written = image.length, slotLength = roundUp(image.length, 4096) + 4096): MemorySlot {
	const slot = new MemorySlot(slotLength);
	for (let offset = 0; offset < written; offset += slot.sectorSize) {
		const count = Math.min(slot.sectorSize, written - offset);
		slot.erase(offset / slot.sectorSize);
		slot.write(offset, count, image.slice(offset, offset + count).buffer);
	}
	return slot;
}

function check(slot: FlashSlot, chipId = esp32, scratch = new Uint8Array(4096)): ImageCheck {
	return checkImage(slot, new NodeDigest(), chipId, scratch);
}

function expectOk(result: ImageCheck, image: Uint8Array, version: string) {
	if (!result.ok) assert.unreachable(`expected ok, got ${result.result} ${result.reason}`);
	else {
		assert.is(result.version, version);
		assert.is(result.imageLength, image.length);
		assert.is(hex(result.sha256), sha256Hex(image));
	}
}

function expectFailure(result: ImageCheck, code: 5 | 6, reason?: string) {
	if (result.ok) assert.unreachable(`expected failure ${code}, got ok`);
	else {
		assert.is(result.result, code, result.reason);
		if (reason !== undefined) assert.is(result.reason, reason);
	}
}

/** Offsets and lengths of each segment's data, read from the image itself. */
function segmentsOf(image: Uint8Array): { headerOffset: number; dataOffset: number; length: number }[] {
	const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
	const segments = [];
	let offset = imageHeaderLength;
	for (let index = 0; index < image[1]; index++) {
		const length = view.getUint32(offset + 4, true);
		segments.push({ headerOffset: offset, dataOffset: offset + segmentHeaderLength, length });
		offset += segmentHeaderLength + length;
	}
	return segments;
}

function hex(bytes: Uint8Array): string {
	return Buffer.from(bytes).toString("hex");
}

function roundUp(value: number, unit: number): number {
	return Math.ceil(value / unit) * unit;
}

const image100k = makeAppImage({ size: 100 * KiB, version: "1.2.3" });

for (const size of [1 * KiB, 100 * KiB, 1 * MiB]) {
	test(`a ${size}-byte image passes with its version, length and sha256`, () => {
		const image = size === 100 * KiB ? image100k : makeAppImage({ size, version: "1.2.3", projectName: "blinky" });
		assert.ok(Math.abs(image.length - size) <= 16, `length ${image.length}`);
		const result = check(slotWith(image));
		expectOk(result, image, "1.2.3");
		if (result.ok) assert.is(result.projectName, size === 100 * KiB ? "xs-ota-app" : "blinky");
	});
}

test("a 4 MiB image passes", () => {
	const image = makeAppImage({ size: 4 * MiB, version: "9.9.9" });
	expectOk(check(slotWith(image)), image, "9.9.9");
});

test("every small size from the minimum up builds and passes", () => {
	for (let size = 320; size <= 2100; size += 4) {
		const image = makeAppImage({ size, version: `v${size}` });
		assert.ok(Math.abs(image.length - size) <= 16, `size ${size} gave ${image.length}`);
		expectOk(check(slotWith(image)), image, `v${size}`);
	}
	assert.throws(() => makeAppImage({ size: 300, version: "1" }), /size too small/);
});

test("each chip passes against its own id and fails against another", () => {
	for (const [chip, id] of Object.entries(chipIds)) {
		const image = makeAppImage({ size: 2 * KiB, version: "1.0.0", chip: chip as keyof typeof chipIds });
		const slot = slotWith(image);
		expectOk(check(slot, id), image, "1.0.0");
		expectFailure(check(slot, id === esp32 ? chipIds.esp32s3 : esp32), 6, "wrong chip");
	}
});

test("first byte not 0xE9 is unsupported", () => {
	const image = image100k.slice();
	image[0] = 0xe8;
	expectFailure(check(slotWith(image)), 6, "bad magic");
});

test("erased flash is unsupported, not an exception", () => {
	expectFailure(check(new MemorySlot(64 * KiB)), 6, "bad magic");
	const tiny: FlashSlot = { byteLength: 16, sectorSize: 4096, blockSize: 4096, erase() {}, eraseBlock() {}, write() {}, readInto() { throw new Error("read past end"); } };
	expectFailure(check(tiny), 6, "slot too small");
});

test("a zero or oversized segment count is unsupported", () => {
	for (const count of [0, 17, 0xff]) {
		const image = image100k.slice();
		image[1] = count;
		expectFailure(check(slotWith(image)), 6, "bad segment count");
	}
});

test("a segment running past the slot is unsupported", () => {
	const last = segmentsOf(image100k).at(-1)!;
	const huge = image100k.slice();
	new DataView(huge.buffer).setUint32(last.headerOffset + 4, 0xffffffff, true);
	expectFailure(check(slotWith(huge)), 6, "segment past slot end");

	// Segments fit exactly, but the checksum and hash would not.
	const slotLength = roundUp(image100k.length, 4096);
	const snug = image100k.slice();
	new DataView(snug.buffer).setUint32(last.headerOffset + 4, slotLength - last.dataOffset, true);
	expectFailure(check(slotWith(snug, snug.length, slotLength)), 6, "image past slot end");

	// Segment headers themselves past the end: a count that walks off the slot.
	const slot = slotWith(image100k, image100k.length, roundUp(image100k.length, 4096));
	const firstHeader = new Uint8Array(8);
	new DataView(firstHeader.buffer).setUint32(4, slot.byteLength - imageHeaderLength - 8 - 4, true);
	const bent = new MemorySlot(slot.byteLength);
	bent.bytes.set(slot.bytes);
	bent.bytes.set(firstHeader, imageHeaderLength);
	expectFailure(check(bent), 6, "segment past slot end");
});

test("a missing app description is unsupported", () => {
	const first = segmentsOf(image100k)[0];
	const image = image100k.slice();
	image[first.dataOffset] ^= 0x01;
	expectFailure(check(slotWith(image)), 6, "no app description");

	const short = image100k.slice();
	short[1] = 1; // a lone first segment, too short to hold the description
	new DataView(short.buffer).setUint32(first.headerOffset + 4, 255, true);
	expectFailure(check(slotWith(short)), 6, "no app description");
});

test("a flipped bit in segment data fails the checksum", () => {
	for (const segment of segmentsOf(image100k)) {
		const image = image100k.slice();
		image[segment.dataOffset + segment.length - 1] ^= 0x10; // last byte: past any app description
		expectFailure(check(slotWith(image)), 5, "checksum mismatch");
	}
});

test("two flips that cancel in the checksum still fail the hash", () => {
	const segment = segmentsOf(image100k).at(-1)!;
	const image = image100k.slice();
	image[segment.dataOffset + 100] ^= 0x04;
	image[segment.dataOffset + 5000] ^= 0x04;
	expectFailure(check(slotWith(image)), 5, "hash mismatch");
});

test("flipped bits outside segment data fail the hash", () => {
	const image = image100k.slice();
	image[image.length - 1] ^= 0x80; // appended hash
	expectFailure(check(slotWith(image)), 5, "hash mismatch");

	const padding = image100k.slice();
	padding[padding.length - 34] ^= 0x01; // zero padding before the checksum
	expectFailure(check(slotWith(padding)), 5, "hash mismatch");

	const loadAddress = image100k.slice();
	loadAddress[imageHeaderLength] ^= 0x01;
	expectFailure(check(slotWith(loadAddress)), 5, "hash mismatch");
});

test("a flipped checksum byte fails the checksum", () => {
	const image = image100k.slice();
	image[image.length - 33] ^= 0x01;
	expectFailure(check(slotWith(image)), 5, "checksum mismatch");
});

test("a half-written image never passes", () => {
	for (const size of [1 * KiB, 100 * KiB, 1 * MiB]) {
		const image = size === 100 * KiB ? image100k : makeAppImage({ size, version: "2.0.0" });
		for (const written of [image.length >> 1, image.length - 32, image.length - 1]) {
			const result = check(slotWith(image, written));
			assert.not.ok(result.ok, `${size} bytes, ${written} written`);
			if (!result.ok) assert.ok(result.result === 5 || result.result === 6);
		}
	}
});

test("an image without an appended hash is checked by checksum alone", () => {
	const image = image100k.slice();
	image[hashAppendedOffset] = 0;
	const result = check(slotWith(image));
	expectOk(result, image.subarray(0, image.length - 32), "1.2.3");

	image[image.length - 40] ^= 0x01; // last segment byte
	expectFailure(check(slotWith(image)), 5, "checksum mismatch");

	image[hashAppendedOffset] = 2;
	expectFailure(check(slotWith(image)), 6, "bad hash flag");
});

test("no single changed byte in the headers passes, and none throws", () => {
	const small = makeAppImage({ size: 2 * KiB, version: "3.1.4" });
	const headerBytes = segmentsOf(small)[0].dataOffset + 64;
	for (let offset = 0; offset < headerBytes; offset++) {
		for (const change of [0x01, 0x80, 0xff]) {
			const image = small.slice();
			image[offset] ^= change;
			if (offset === hashAppendedOffset && image[offset] === 0) continue; // turns the hash off: see above
			let result: ImageCheck | undefined;
			try {
				result = check(slotWith(image));
			}
			catch (error) {
				assert.unreachable(`byte ${offset} ^ ${change} threw ${error}`);
			}
			assert.not.ok(result!.ok, `byte ${offset} ^ ${change} passed`);
		}
	}
});

test("odd scratch buffers give the same answers", () => {
	const backing = new Uint8Array(6000);
	const unaligned = backing.subarray(1, 5001); // byte path: no word view possible
	const oddLength = new Uint8Array(4099); // word path with a ragged end
	for (const scratch of [unaligned, oddLength]) {
		expectOk(check(slotWith(image100k), esp32, scratch), image100k, "1.2.3");
		const image = image100k.slice();
		image[segmentsOf(image).at(-1)!.dataOffset + 777] ^= 0x20;
		expectFailure(check(slotWith(image), esp32, scratch), 5, "checksum mismatch");
	}
	assert.throws(() => check(slotWith(image100k), esp32, new Uint8Array(4095)), /scratch too small/);
});

test("segment edges falling anywhere around a piece boundary are all counted", () => {
	const slot = slotWith(image100k);
	const edges = segmentsOf(image100k).flatMap((segment) => [segment.dataOffset, segment.dataOffset + segment.length]);
	let tried = 0;
	for (const edge of edges) {
		for (const scratchLength of [edge - 2, edge - 1, edge, edge + 1, edge + 2]) {
			if (scratchLength < 4096) continue;
			tried++;
			expectOk(check(slot, esp32, new Uint8Array(scratchLength)), image100k, "1.2.3");
			// Also with the scratch unaligned, through the byte-at-a-time path.
			expectOk(check(slot, esp32, new Uint8Array(scratchLength + 1).subarray(1)), image100k, "1.2.3");
		}
	}
	assert.ok(tried >= 20, `${tried} scratch lengths`);
});

test("reads go into the scratch buffer and the digest sees almost no new views", () => {
	const image = makeAppImage({ size: 1 * MiB, version: "1.0.0" });
	const memory = slotWith(image);
	const scratch = new Uint8Array(4096);
	let foreignReads = 0;
	const slot: FlashSlot = {
		byteLength: memory.byteLength,
		sectorSize: memory.sectorSize,
		blockSize: memory.blockSize,
		erase: (sector) => memory.erase(sector),
		eraseBlock: (block) => memory.eraseBlock(block),
		write: (offset, length, buffer) => memory.write(offset, length, buffer),
		readInto(offset, length, into) {
			if (into !== scratch) foreignReads++;
			memory.readInto(offset, length, into);
		},
	};
	const inner = new NodeDigest();
	const seen = new Set<Uint8Array>();
	let writes = 0;
	const digest: Digest = {
		reset: () => inner.reset(),
		write(bytes) { seen.add(bytes); writes++; inner.write(bytes); },
		finish: (into) => inner.finish(into),
	};
	expectOk(checkImage(slot, digest, esp32, scratch), image, "1.0.0");
	assert.is(foreignReads, 0);
	assert.ok(writes > 500, `${writes} writes`);
	assert.ok(seen.size <= 3, `${seen.size} distinct arrays`); // scratch, plus one tail view per pass
});

test("slotDigest hashes exactly the first N bytes", () => {
	const slot = slotWith(image100k);
	const into = new Uint8Array(32);
	const scratch = new Uint8Array(4096);
	for (const length of [0, 1, 4095, 4096, 4097, 10_000, image100k.length, slot.byteLength]) {
		slotDigest(slot, length, new NodeDigest(), scratch, into);
		assert.is(hex(into), sha256Hex(slot.bytes.subarray(0, length)), `length ${length}`);
	}
	assert.throws(() => slotDigest(slot, slot.byteLength + 1, new NodeDigest(), scratch, into), /length past slot end/);
});

test("readAppDescription round-trips version and project name", () => {
	const image = makeAppImage({ size: 5000, version: "2024.11.3-rc.1+g1a2b3c", projectName: "greenhouse" });
	assert.equal(readAppDescription(image), { version: "2024.11.3-rc.1+g1a2b3c", projectName: "greenhouse" });
	const full = "v".repeat(31);
	assert.is(readAppDescription(makeAppImage({ size: 5000, version: full }))?.version, full);
	assert.throws(() => makeAppImage({ size: 5000, version: "v".repeat(32) }), /version too long/);
	assert.is(readAppDescription(new Uint8Array(4096).fill(0xff)), undefined);
	assert.is(readAppDescription(image.subarray(0, 100)), undefined);
});

test("images are deterministic per version and size, and differ between versions", () => {
	const a = makeAppImage({ size: 50 * KiB, version: "1.0.0" });
	const b = makeAppImage({ size: 50 * KiB, version: "1.0.1" });
	assert.is(sha256Hex(a), sha256Hex(makeAppImage({ size: 50 * KiB, version: "1.0.0" })));
	assert.is(a.length, b.length);
	for (const segment of segmentsOf(a)) {
		const end = segment.dataOffset + segment.length;
		assert.not.equal(a.subarray(end - 64, end), b.subarray(end - 64, end), `segment at ${segment.headerOffset}`);
	}
	const view = new DataView(a.buffer);
	assert.is(a[0], 0xe9);
	assert.is(view.getUint32(4, true) >>> 20, 0x400, "entry in 0x400xxxxx");
	assert.is(view.getUint32(imageHeaderLength, true), 0x3f400020, "DROM first");
	assert.is(a.length % 16, 0);
});

test("a wrapped payload is the code segment of an image the device accepts, for every payload length", () => {
	for (const length of [1, 2, 3, 4, 5, 1000, 4097, 70_001]) {
		const payload = new Uint8Array(length).map((_, i) => (i * 7 + length) & 0xff);
		const image = wrapAppImage(payload, { version: `w${length}`, chip: "esp32c3" });
		expectOk(check(slotWith(image), chipIds.esp32c3), image, `w${length}`);
		const [description, code] = segmentsOf(image);
		assert.is(description.length, 256);
		assert.is(code.length, Math.ceil(length / 4) * 4);
		assert.equal(image.subarray(code.dataOffset, code.dataOffset + length), payload);
		assert.ok(image.subarray(code.dataOffset + length, code.dataOffset + code.length).every((byte) => byte === 0), "zero padding");
		assert.is(new DataView(image.buffer).getUint32(4, true), new DataView(image.buffer).getUint32(code.headerOffset, true), "entry at the code");
		assert.is(image.length % 16, 0);
	}
	// Two releases of one binary differ in the description and where the binaries differ, nowhere else.
	const payload = new Uint8Array(10_000).fill(0x5a), next = payload.slice();
	next[5000] = 0;
	const [a, b] = [wrapAppImage(payload, { version: "1" }), wrapAppImage(next, { version: "2" })];
	const differing = [...a.subarray(0, -33)].flatMap((byte, i) => (byte === b[i] ? [] : [i]));
	const descriptionEnd = segmentsOf(a)[0].dataOffset + 256;
	assert.ok(differing.every((i) => i < descriptionEnd || i === segmentsOf(a)[1].dataOffset + 5000 || i === a.length - 33), String(differing));
});

test.run();
