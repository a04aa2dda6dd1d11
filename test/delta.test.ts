// The delta applier against patches the real detools made (test/fixtures/delta/README.md): every compression
// applies byte-identically from chunks of any size, resumes from any checkpoint after a cut, and refuses what
// it does not support with a reason.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { emptyHeader, readHeader } from "../src/delta/patch-header";
import { apply, assertResumes, header, running } from "./support/delta-apply";
import { MemorySlot, NodeDigest } from "./support/memory-slot";
import { PatchSink } from "../src/delta/patch-sink";
import { chipIds } from "../src/agent/image";
import { emptyRecord } from "../src/agent/record";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/delta/${name}`, import.meta.url)));
const base = fixture("base.bin"), target = fixture("new.bin");

for (const name of ["none.patch", "crle.patch", "heatshrink.patch", "heatshrink-w11-l5.patch"]) {
	test(`detools ${name} applies byte-identically from chunks of any size`, () => {
		for (const chunk of [1, 7, 1000, 65536]) {
			const { slot, done } = apply(fixture(name), base, chunk);
			assert.ok(done, `${name} in chunks ≤ ${chunk} did not finish`);
			assert.equal(slot.bytes.subarray(0, target.length), target, `${name} in chunks ≤ ${chunk}`);
		}
	});

	test(`detools ${name} resumes from each checkpoint after a cut`, () => {
		assertResumes(fixture(name), base, target, name);
	});
}

test("a heatshrink-compressed full image (a patch from an empty base) installs", () => {
	const { slot, done } = apply(fixture("full-heatshrink.patch"), new Uint8Array(0), 4096);
	assert.ok(done);
	assert.equal(slot.bytes.subarray(0, target.length), target);
});

test("the esp_delta_ota framing carries the base's SHA-256 and the detools patch after 64 bytes", () => {
	const framed = fixture("esp-delta-ota.patch"), parsed = header(framed);
	assert.ok(parsed.framed);
	assert.equal(parsed.baseSha256, base.subarray(base.length - 32));
	assert.is(parsed.dataOffset, 64 + 1 + 3 + 1);
	assert.is(parsed.newSize, target.length);
	const { slot, done } = apply(framed, base, 500);
	assert.ok(done);
	assert.equal(slot.bytes.subarray(0, target.length), target);
});

test("lzma, in-place patches and oversize heatshrink windows are refused with a reason", () => {
	assert.match(readHeader(fixture("lzma.patch"), 20, emptyHeader()), /compression lzma is not supported/);
	assert.match(readHeader(Uint8Array.of(0x14, 0x80, 0x80, 0x18), 4, emptyHeader()), /patch type 1 is not supported/);
	assert.match(readHeader(Uint8Array.of(0x04, 0x80, 0x80, 0x18, 0x94), 5, emptyHeader()), /window 2\^13/);
	assert.is(readHeader(Uint8Array.of(0x04, 0x80), 2, emptyHeader()), "more");
});

test("a corrupted or truncated patch ends with a reason, never a wrong image reported done", () => {
	const patch = fixture("heatshrink.patch").slice();
	const truncated = apply(patch.subarray(0, patch.length - 100), base, 4096);
	assert.not.ok(truncated.done);
	const corrupt = patch.slice();
	for (let i = 200; i < 260; i++) corrupt[i] ^= 0xa5;
	assert.throws(() => apply(corrupt, base, 4096), /too long|outside the base|after the end/);
	const wrongBase = apply(patch, target, 4096);
	assert.not.equal(wrongBase.slot.bytes.subarray(0, target.length), target);
});

test("the patch sink installs in chunks, then ends bytes past the patch's end with 5", () => {
	const patch = fixture("esp-delta-ota.patch"), slot = new MemorySlot(327680), record = emptyRecord();
	record.totalSize = patch.length;
	let saves = 0;
	const sink = new PatchSink({ running: running(base), slot, digest: new NodeDigest(), chipId: chipIds.esp32 }, record, 16384, () => saves++);
	for (let at = 0; at < patch.length; at += 1000) assert.is(sink.write(patch.subarray(at, Math.min(at + 1000, patch.length))), undefined);
	assert.ok(sink.done);
	assert.is(sink.finish(), undefined);
	assert.equal(slot.bytes.subarray(0, target.length), target);
	assert.ok(saves >= 2, `${saves} saves`);
	// The record's patch section: the header's numbers and the last checkpoint, nothing of the framing.
	assert.equal(Object.keys(record.patch!).sort(), ["compression", "dataOffset", "lookaheadBits", "newSize", "oldSize", "patchSize", "state", "windowBits"]);
	assert.equal(sink.write(Uint8Array.of(0)), { result: 5, reason: "patch data after the end" });
	assert.is(sink.write(new Uint8Array(0)), undefined);
});

test.run();
