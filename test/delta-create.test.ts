// Patches made in TypeScript (host-sim/delta/create-patch.ts) go through the device's applier (src/delta) and
// give the new image byte for byte: every compression, raw and in esp_delta_ota framing, from an empty base,
// between identical images, random, edited and moved-block pairs of odd sizes; they resume from the
// applier's checkpoints; they are about as small as the real detools' (test/fixtures/delta/); bad options are
// refused with a reason.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { createPatch, type CompressionName, type PatchOptions } from "../host-sim/delta/create-patch";
import { suffixArray } from "../host-sim/delta/suffix-array";
import { seeded } from "../host-sim/random";
import { MemorySlot } from "./support/memory-slot";
import { apply, assertResumes, header } from "./support/delta-apply";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/delta/${name}`, import.meta.url)));
const base = fixture("base.bin"), target = fixture("new.bin");
const compressions: CompressionName[] = ["none", "crle", "heatshrink"];

/** Applies our patch of old → next on the device's applier, in chunks of any size, and checks the result. */
function roundTrip(old: Uint8Array, next: Uint8Array, options: PatchOptions, what: string): Uint8Array {
	const patch = createPatch(old, next, options);
	const slotBytes = Math.max(4096, Math.ceil(next.length / 4096) * 4096);
	for (const chunk of [1, 777, 65536]) {
		const { slot, done } = apply(patch, old, chunk, new MemorySlot(slotBytes));
		assert.ok(done, `${what}: not done in chunks ≤ ${chunk}`);
		assert.equal(slot.bytes.subarray(0, next.length), next, `${what} in chunks ≤ ${chunk}`);
	}
	return patch;
}

function randomBytes(random: () => number, length: number): Uint8Array {
	const bytes = new Uint8Array(length);
	for (let i = 0; i < length; i++) bytes[i] = random() * 256;
	return bytes;
}

/** `old` edited as a new build changes a binary: bytes changed here and there, a block moved, one inserted, one cut out. */
function edited(random: () => number, old: Uint8Array): Uint8Array {
	const next = old.slice();
	for (let i = 0; i < old.length / 200; i++) next[Math.floor(random() * old.length)] ^= 1 + random() * 255;
	const cut = Math.floor(old.length / 3), moved = next.slice(cut, cut + Math.floor(old.length / 7));
	const inserted = randomBytes(random, 1 + Math.floor(old.length / 50));
	const out = new Uint8Array([...next.subarray(0, cut), ...inserted, ...next.subarray(cut + moved.length, Math.floor(old.length * 0.8)), ...moved, ...next.subarray(Math.floor(old.length * 0.9))]);
	return out;
}

for (const compression of compressions) {
	for (const framing of [undefined, "esp-delta-ota"] as const) {
		test(`${compression}${framing ? ", framed" : ""}: the fixture pair patches byte-identically`, () => {
			roundTrip(base, target, { compression, framing }, `${compression} ${framing ?? "raw"}`);
		});
	}

	test(`${compression}: a compressed full image (empty base) and identical images`, () => {
		roundTrip(new Uint8Array(0), target, { compression }, "empty base");
		const same = roundTrip(target, target, { compression }, "identical");
		// All zero diff bytes: crle makes one run of them, heatshrink a 2-byte copy per 128 bytes.
		if (compression !== "none") assert.ok(same.length <= target.length / 60, `identical images: ${same.length} bytes`);
	});

	test(`${compression}: random, edited and moved-block pairs of odd sizes`, () => {
		const random = seeded(compression.length);
		for (const size of [1, 2, 3, 17, 255, 4099, 65537, 100003]) {
			const old = randomBytes(random, size);
			roundTrip(old, edited(random, old), { compression }, `edited ${size}`);
			roundTrip(old, randomBytes(random, size + 5), { compression }, `unrelated ${size}`);
			roundTrip(edited(random, old), old, { compression }, `reverse ${size}`);
			// Runs and repeats, as in padding and tables.
			const runs = new Uint8Array(size).fill(0xff);
			runs.set(old.subarray(0, size >> 2), size >> 1);
			roundTrip(old, runs, { compression }, `runs ${size}`);
		}
	});
}

test("the suffix array sorts every suffix, also of runs and repeats", () => {
	const random = seeded(3);
	const strings = [new Uint8Array(0), Uint8Array.of(5), new Uint8Array(300), randomBytes(random, 2000),
		Uint8Array.from({ length: 999 }, (_, i) => (i % 7 === 0 ? 1 : 0)), Uint8Array.from({ length: 1500 }, () => random() * 3)];
	for (const bytes of strings) {
		const naive = Array.from(bytes, (_, i) => i).sort((a, b) => Buffer.compare(bytes.subarray(a), bytes.subarray(b)));
		assert.equal(Array.from(suffixArray(bytes)), naive, `${bytes.length} bytes`);
	}
});

test("heatshrink: every window and lookahead the device takes", () => {
	const random = seeded(7);
	const old = randomBytes(random, 20000), next = edited(random, old);
	for (const [windowBits, lookaheadBits] of [[4, 3], [5, 4], [8, 4], [8, 7], [11, 5], [12, 11], [12, 3]]) {
		const patch = roundTrip(old, next, { windowBits, lookaheadBits }, `heatshrink ${windowBits}/${lookaheadBits}`);
		assert.is(patch[header(patch).dataOffset - 1], ((windowBits - 4) << 4) | (lookaheadBits - 3), "the parameters byte after the header and size");
	}
});

test("the framing is esp_delta_ota's: magic, the base's appended SHA-256, 28 zero bytes", () => {
	const patch = createPatch(base, target, { framing: "esp-delta-ota" });
	// The framing the fixture README describes (ESP-IDF's esp_delta_ota_patch_gen.py) around detools' patch.
	assert.equal(patch.subarray(0, 64), fixture("esp-delta-ota.patch").subarray(0, 64));
	assert.equal(patch.subarray(4, 36), new Uint8Array(createHash("sha256").update(base.subarray(0, base.length - 32)).digest()));
});

test("the new image reaches flash in whole 256-byte pages, each programmed once, however short the runs", () => {
	const random = seeded(11);
	const old = randomBytes(random, 40000);
	// A byte inserted every 20 to 80 bytes: a short diff run and a 1-byte extra run each time.
	const parts: number[] = [];
	for (let at = 0; at < old.length;) {
		const step = 20 + Math.floor(random() * 60);
		parts.push(...old.subarray(at, at + step), Math.floor(random() * 256));
		at += step;
	}
	const next = Uint8Array.from(parts), page = 256;
	for (const compression of compressions) {
		const patch = createPatch(old, next, { compression });
		for (const chunk of [1, 777]) {
			const { slot, done } = apply(patch, old, chunk, new MemorySlot(Math.ceil(next.length / 4096) * 4096));
			assert.ok(done);
			assert.equal(slot.bytes.subarray(0, next.length), next);
			const what = `${compression} in chunks ≤ ${chunk}: ${slot.writes.length} writes`;
			assert.ok(slot.writes.length <= Math.ceil(next.length / 512), what);
			let end = 0;
			for (const write of slot.writes) {
				assert.is(write.start, end, `${what}: front to back`);
				assert.ok(write.start % page === 0 && (write.end % page === 0 || write.end === next.length), `${what}: ${write.start}–${write.end} is not whole pages`);
				end = write.end;
			}
			assert.is(end, next.length, what);
		}
	}
});

test("our patches resume from each of the applier's checkpoints", () => {
	for (const compression of compressions) {
		assertResumes(createPatch(base, target, { compression }), base, target, compression);
	}
});

test("the fixture pair's patches are about as small as the real detools'", () => {
	for (const compression of compressions) {
		const ours = createPatch(base, target, { compression }).length, theirs = fixture(`${compression}.patch`).length;
		assert.ok(ours <= theirs * 1.5, `${compression}: ${ours} bytes, detools ${theirs}`);
	}
	const full = createPatch(new Uint8Array(0), target).length;
	assert.ok(full <= fixture("full-heatshrink.patch").length * 1.5, `full image: ${full} bytes`);
});

test("bad options are refused with a reason", () => {
	assert.throws(() => createPatch(base, new Uint8Array(0)), /new image is empty/);
	assert.throws(() => createPatch(base, target, { windowBits: 13 }), /window is 4 to 12 bits/);
	assert.throws(() => createPatch(base, target, { windowBits: 8, lookaheadBits: 8 }), /lookahead is 3 to 7 bits/);
	assert.throws(() => createPatch(base, target, { compression: "lzma" as CompressionName }), /compression is none, crle, heatshrink/);
	assert.throws(() => createPatch(target.subarray(0, 1000), target, { framing: "esp-delta-ota" }), /carries none/);
});

test.run();
