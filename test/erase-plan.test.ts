// The erase plan over an in-memory NOR slot: which erases it issues, and that no committed byte is ever erased.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { ErasePlan } from "../src/agent/erase-plan";
import { MemorySlot } from "./support/memory-slot";
import { seeded } from "./support/sim";

const KiB = 1024, sector = 4 * KiB, block = 64 * KiB;
const slotBytes = 30 * block;

/** Bytes that are not 0xFF anywhere, so an erase of any of them shows. */
function pattern(length: number, seed: number): Uint8Array {
	const next = seeded(seed);
	return Uint8Array.from({ length }, () => Math.floor(next() * 255));
}

/** Writes `bytes` at `offset` the way the transports do: prepare, then write. */
function write(plan: ErasePlan, slot: MemorySlot, offset: number, bytes: Uint8Array): void {
	plan.prepare(offset, offset + bytes.length);
	slot.write(offset, bytes.length, bytes.slice().buffer);
}

const sizes = (slot: MemorySlot) => slot.erases.map((erase) => erase.end - erase.start);

test("a fresh image is erased a block at a time, and a short tail sector by sector", () => {
	const slot = new MemorySlot(slotBytes);
	const image = pattern(3 * block + 3 * sector - 100, 1);
	const plan = new ErasePlan(slot, () => false);
	plan.setImageSize(image.length);
	for (let at = 0; at < image.length; at += 1460) write(plan, slot, at, image.subarray(at, Math.min(at + 1460, image.length)));
	assert.equal(sizes(slot), [block, block, block, sector, sector, sector]);
	assert.equal(slot.bytes.subarray(0, image.length), image);
});

test("a tail of four sectors or more takes a block erase, as it is cheaper", () => {
	const slot = new MemorySlot(slotBytes);
	const plan = new ErasePlan(slot, () => false);
	plan.setImageSize(block + 4 * sector);
	write(plan, slot, 0, pattern(block + 4 * sector, 2));
	assert.equal(sizes(slot), [block, block]);
});

test("after a resume inside a block only the sectors past the checkpoint are erased, the committed ones never", () => {
	const slot = new MemorySlot(slotBytes);
	const image = pattern(3 * block, 3);
	const committed = block + 5 * sector;
	// The cut power-on left the committed prefix and some uncommitted bytes after it.
	slot.bytes.set(image.subarray(0, committed + 3000));
	const plan = new ErasePlan(slot, (index) => (index + 1) * sector <= committed);
	plan.setImageSize(image.length);
	for (let at = committed; at < image.length; at += 1460) write(plan, slot, at, image.subarray(at, Math.min(at + 1460, image.length)));
	assert.ok(slot.erases.every((erase) => erase.start >= committed), "an erase reached a committed byte");
	assert.equal(slot.erases.map((erase) => erase.start / sector), [...Array.from({ length: 11 }, (_, i) => 21 + i), 32]);
	assert.equal(sizes(slot).at(-1), block);
	assert.equal(slot.bytes.subarray(0, image.length), image);
});

test("a torn block erase is redone whole: the record shows nothing committed in it", () => {
	const slot = new MemorySlot(slotBytes);
	const image = pattern(2 * block, 4);
	const committed = block;
	slot.bytes.set(image.subarray(0, committed));
	// Block 1 half erased by the cut, the rest old bytes.
	slot.bytes.set(pattern(block / 2, 5), block + block / 2);
	const plan = new ErasePlan(slot, (index) => (index + 1) * sector <= committed);
	plan.setImageSize(image.length);
	write(plan, slot, committed, image.subarray(committed));
	assert.equal(slot.erases, [{ start: block, end: 2 * block }]);
	assert.equal(slot.bytes.subarray(0, image.length), image);
});

test("blocks arriving out of order: a flash block holding committed sectors is erased sector by sector around them", () => {
	const slot = new MemorySlot(slotBytes);
	const image = pattern(4 * block, 6);
	const committed = new Set([3, 4, 17, 40, 41, 42, 63]);
	for (const index of committed) slot.bytes.set(image.subarray(index * sector, (index + 1) * sector), index * sector);
	const plan = new ErasePlan(slot, (index) => committed.has(index));
	plan.setImageSize(image.length);
	const order = Array.from({ length: 64 }, (_, i) => i).filter((i) => !committed.has(i));
	const next = seeded(7);
	for (let i = order.length - 1; i > 0; i--) {
		const j = Math.floor(next() * (i + 1));
		[order[i], order[j]] = [order[j], order[i]];
	}
	for (const index of order) write(plan, slot, index * sector, image.subarray(index * sector, (index + 1) * sector));
	for (const erase of slot.erases)
		for (let index = erase.start / sector; index < erase.end / sector; index++) assert.not.ok(committed.has(index), `sector ${index} erased`);
	// Every flash block holds a committed sector (3, 17, 40, 63): all the erases are sectors.
	assert.ok(sizes(slot).every((size) => size === sector));
	assert.equal(slot.erases.length, 64 - committed.size);
	assert.equal(slot.bytes.subarray(0, image.length), image);
});

test("a block with no committed sector is erased whole even when its first write lands mid-block", () => {
	const slot = new MemorySlot(slotBytes);
	const plan = new ErasePlan(slot, () => false);
	plan.setImageSize(2 * block);
	write(plan, slot, block + 7 * sector, pattern(sector, 8));
	write(plan, slot, block + 2 * sector, pattern(sector, 9));
	assert.equal(slot.erases, [{ start: block, end: 2 * block }]);
});

test("the plan refuses to erase a committed sector a transport asks for, and erases nothing", () => {
	const slot = new MemorySlot(slotBytes);
	const plan = new ErasePlan(slot, (index) => index === 2);
	assert.throws(() => plan.prepare(2 * sector, 3 * sector), /sector 2 holds committed bytes/);
	assert.equal(slot.erases, []);
});

test("without a block erase (blockSize = sectorSize) every erase is a sector", () => {
	const slot = new MemorySlot(slotBytes, sector, sector);
	const plan = new ErasePlan(slot, () => false);
	write(plan, slot, 0, pattern(block, 10));
	assert.equal(sizes(slot), Array(16).fill(sector));
});

test("reset: a body that replaces the one written erases its sectors again", () => {
	const slot = new MemorySlot(slotBytes);
	const plan = new ErasePlan(slot, () => false);
	plan.setImageSize(block);
	write(plan, slot, 0, pattern(block, 11));
	plan.reset();
	const second = pattern(block, 12);
	write(plan, slot, 0, second);
	assert.equal(sizes(slot), [block, block]);
	assert.equal(slot.bytes.subarray(0, block), second);
});

test.run();
