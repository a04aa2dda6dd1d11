import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PowerCutError, PowerSupply } from "../host-sim/board/power";
import { Board } from "../host-sim/board/board";
import { FlashPartition, busyMs } from "../host-sim/board/flash-chip";
import { PreferenceStore } from "../host-sim/board/nvs";
import { capacityBytes } from "../host-sim/board/nvs-space";
import { OtaData, OtaState, crc32Le, seqCrc } from "../host-sim/board/otadata";
import { defaultPartitions, toCsv, validatePartitions, type Partition } from "../host-sim/board/partition-table";
import { BoardStorage } from "../host-sim/board/board-files";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-board-"));
let folders = 0;
const newFolder = () => {
	const dir = path.join(root, `board-${++folders}`);
	fs.mkdirSync(dir);
	return dir;
};
test.after(() => fs.rmSync(root, { recursive: true, force: true }));

const cutPower = (cutAfterOps: number, seed = 1) => new PowerSupply({ cutAfterOps, seed });
const bytesOf = (value: unknown) => Array.from(new Uint8Array(value as ArrayBuffer));
const throwsCut = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof PowerCutError && (e as Error).message === "power cut");
const slotFlash = (dir: string, power = new PowerSupply({})) => FlashPartition.open(dir, "slot", 4 * 4096, power);

// --- power ---

test("power: cuts at the Nth op, records it, then refuses everything", () => {
	const power = cutPower(3);
	assert.is(power.beginOp("a"), "full");
	assert.is(power.beginOp("b"), "full");
	assert.is(power.beginOp("c"), "torn");
	assert.ok(power.isOn, "power stays on until the caller cuts it");
	power.cut("c");
	assert.not.ok(power.isOn);
	assert.equal(power.cutAt, { op: 3, kind: "c" });
	throwsCut(() => power.beginOp("d"));
	assert.is(power.ops, 3);
});

test("power: tearFraction is reproducible, inside (0,1), and depends on seed and op", () => {
	const a = new PowerSupply({ seed: 7 });
	const b = new PowerSupply({ seed: 7 });
	const c = new PowerSupply({ seed: 8 });
	const seen = new Set<number>();
	for (let i = 0; i < 50; i++) {
		a.beginOp("x"); b.beginOp("x"); c.beginOp("x");
		const f = a.tearFraction();
		assert.ok(f > 0 && f < 1);
		assert.is(f, b.tearFraction());
		assert.is.not(f, c.tearFraction());
		seen.add(f);
	}
	assert.is(seen.size, 50);
});

// --- flash ---

test("flash: a new partition has no file and reads erased; NOR writes AND into old bits; erase restores 0xFF", () => {
	const dir = newFolder();
	const flash = slotFlash(dir);
	assert.is(flash.blockSize, 4096);
	assert.equal(Array.from(flash.read(0, 4)), [0xff, 0xff, 0xff, 0xff]);
	assert.not.ok(fs.existsSync(path.join(dir, "slot.bin")), "reading creates no file");
	flash.write(10, 2, new Uint8Array([0xf0, 0x0f]));
	flash.write(10, 2, new Uint8Array([0x3c, 0xff]).buffer);
	assert.equal(Array.from(flash.read(9, 4)), [0xff, 0x30, 0x0f, 0xff]);
	// Writing 0xFF over programmed bits cannot set them back.
	flash.write(10, 1, new Uint8Array([0xff]));
	assert.is(flash.read(10, 1)[0], 0x30);
	flash.erase(0);
	assert.ok(flash.read(0, 4096).every((b) => b === 0xff));
	assert.equal(flash.stats, { erases: 1, blockErases: 0, writes: 3, pagePrograms: 3, bytesWritten: 5, reads: 4, bytesRead: 4 + 4 + 1 + 4096 });
});

test("flash: the file holds what was written up to its last byte, erased bytes before it, and a reopen reads the same", () => {
	const dir = newFolder(), file = path.join(dir, "slot.bin");
	const flash = slotFlash(dir);
	flash.write(5000, 2, new Uint8Array([1, 2]));
	const stored = fs.readFileSync(file);
	assert.is(stored.length, 5002);
	assert.ok(stored.subarray(0, 5000).every((byte) => byte === 0xff), "the gap before the write is erased, not zero");
	flash.write(9000, 1, new Uint8Array([3]));
	flash.erase(0);
	assert.is(fs.statSync(file).size, 9001, "an erase before the end rewrites its sector in place");
	const reopened = slotFlash(dir);
	assert.equal(Array.from(reopened.read(4999, 4)), [0xff, 1, 2, 0xff]);
	assert.equal(Array.from(reopened.read(8999, 3)), [0xff, 3, 0xff]);
	reopened.erase(2);
	assert.is(fs.statSync(file).size, 8192, "an erase that reaches the end shortens the file");
	reopened.erase(1);
	assert.is(fs.statSync(file).size, 4096);
	assert.ok(slotFlash(dir).read(0, 4 * 4096).every((byte) => byte === 0xff));
});

test("flash: writes, reads and erases across the copy's 64 KiB pages land as on one chip", () => {
	const dir = newFolder(), size = 3 * 65536;
	const flash = FlashPartition.open(dir, "wide", size, new PowerSupply({}));
	const data = Uint8Array.from({ length: 70000 }, (_, i) => i % 251);
	flash.write(65530, data.length, data);
	assert.equal(Array.from(flash.read(65528, 4)), [0xff, 0xff, 0, 1]);
	assert.ok(Buffer.from(flash.read(65530, data.length)).equals(Buffer.from(data)));
	flash.eraseBlock(1);
	const after = FlashPartition.open(dir, "wide", size, new PowerSupply({})).read(0, size);
	assert.equal(Array.from(after.subarray(65530, 65536)), Array.from(data.subarray(0, 6)), "block 0 keeps its part");
	assert.ok(after.subarray(65536, 131072).every((byte) => byte === 0xff), "block 1 erased, in the file too");
	assert.equal(Array.from(after.subarray(131072, 131072 + 4458)), Array.from(data.subarray(65542)), "block 2 keeps its part");
	assert.ok(after.subarray(131072 + 4458).every((byte) => byte === 0xff));
});

test("a powered board's writes reach its files in the order made: one file's run at once, before another file's write, at the turn's end", async () => {
	const dir = path.join(newFolder(), "board");
	const storage = BoardStorage.open(dir, new PowerSupply({}), "4MB", true);
	const slot = storage.appSlot(1), file = (name: string) => path.join(dir, name);
	const size = (name: string) => (fs.existsSync(file(name)) ? fs.statSync(file(name)).size : 0);
	slot.write(0, 4, new Uint8Array([1, 2, 3, 4]));
	slot.write(4, 4, new Uint8Array([5, 6, 7, 8]));
	assert.is(size("ota_1.bin"), 0, "held while the turn runs");
	storage.nvs.set("xs-ota", "at", 8);
	assert.equal(Array.from(fs.readFileSync(file("ota_1.bin"))), [1, 2, 3, 4, 5, 6, 7, 8], "the flash writes went first, together");
	assert.not.ok(fs.existsSync(file("nvs.json")), "the set is held in its turn");
	slot.write(8, 1, new Uint8Array([9]));
	assert.equal(JSON.parse(fs.readFileSync(file("nvs.json"), "utf8")), { "xs-ota": { at: { type: "integer", value: 8 } } }, "the set went before the next flash write");
	await new Promise((turnEnds) => setImmediate(turnEnds));
	assert.is(size("ota_1.bin"), 9, "at the end of the turn");
	slot.erase(0);
	storage.close();
	assert.is(size("ota_1.bin"), 0, "close writes what is held: the erase reached the end, so the file is empty");
});

test("flash: programmed bytes keep ANDing after erases elsewhere in their page; erased ones take the write whole", () => {
	const flash = FlashPartition.open(newFolder(), "page", 2 * 65536, new PowerSupply({}));
	flash.write(0, 100, new Uint8Array(100).fill(0x0f));
	flash.erase(15);
	flash.write(50, 4, new Uint8Array(4).fill(0xf3));
	assert.equal(Array.from(flash.read(48, 8)), [0x0f, 0x0f, 0x03, 0x03, 0x03, 0x03, 0x0f, 0x0f]);
	flash.write(61440, 2, new Uint8Array([0x12, 0x34]));
	flash.erase(15);
	flash.write(61440, 2, new Uint8Array([0x56, 0x78]));
	assert.equal(Array.from(flash.read(61440, 3)), [0x56, 0x78, 0xff], "the erase gave the sector back whole");
	flash.write(61440, 1, new Uint8Array([0xf0]));
	assert.is(flash.read(61440, 1)[0], 0x50);
});

test("flash: write takes the bytes a view covers and only byteLength of them", () => {
	const flash = slotFlash(newFolder());
	const backing = new Uint8Array([1, 2, 3, 4, 5, 6]);
	flash.write(0, 2, new DataView(backing.buffer, 3, 3));
	assert.equal(Array.from(flash.read(0, 3)), [4, 5, 0xff]);
});

test("flash: read returns a copy", () => {
	const flash = slotFlash(newFolder());
	const copy = flash.read(0, 4);
	copy[0] = 0;
	assert.is(flash.read(0, 1)[0], 0xff);
});

test("flash: out of range and bad arguments throw the Moddable messages", () => {
	const flash = slotFlash(newFolder());
	assert.throws(() => flash.erase(4), /^erase failed$/);
	assert.throws(() => flash.erase(-1), /erase failed/);
	assert.throws(() => flash.write(4 * 4096 - 1, 2, new Uint8Array(2)), /write failed/);
	assert.throws(() => flash.write(-1, 1, new Uint8Array(1)), /write failed/);
	assert.throws(() => flash.write(0, 4, new Uint8Array(2)), /write failed/);
	assert.throws(() => flash.read(4 * 4096, 1), /read failed/);
	assert.throws(() => flash.read(0, 4 * 4096 + 1), /read failed/);
	// The last sector and the last byte are in range.
	flash.erase(3);
	flash.write(4 * 4096 - 1, 1, new Uint8Array([0]));
	assert.is(flash.read(4 * 4096 - 1, 1)[0], 0);
});

test("flash: a torn write lands only a prefix, in memory and in the file", () => {
	for (const seed of [1, 2, 3, 4, 5]) {
		const dir = newFolder();
		const power = cutPower(1, seed);
		const flash = slotFlash(dir, power);
		throwsCut(() => flash.write(100, 256, new Uint8Array(256)));
		assert.equal(power.cutAt, { op: 1, kind: "flash-write" });
		const expected = Math.floor(power.tearFraction() * 256);
		assert.ok(expected < 256);
		const after = slotFlash(dir).read(100, 256);
		const landed = after.findIndex((b) => b === 0xff);
		assert.is(landed === -1 ? 256 : landed, expected, `seed ${seed}`);
		assert.ok(after.subarray(expected).every((b) => b === 0xff), "nothing past the prefix");
	}
});

test("flash: a torn erase sets only a prefix of the sector to 0xFF", () => {
	const dir = newFolder();
	slotFlash(dir).write(4096, 4096, new Uint8Array(4096));
	const power = cutPower(1, 9);
	throwsCut(() => slotFlash(dir, power).erase(1));
	const erased = Math.floor(power.tearFraction() * 4096);
	const after = slotFlash(dir).read(4096, 4096);
	assert.ok(after.subarray(0, erased).every((b) => b === 0xff));
	assert.ok(after.subarray(erased).every((b) => b === 0), "the rest keeps its old bits");
	assert.ok(erased > 0 && erased < 4096);
});

test("flash: a block erase clears 64 KiB in one op; a torn one leaves sectors erased, one part-way, the rest old", () => {
	const dir = newFolder();
	const open = (power = new PowerSupply({})) => FlashPartition.open(dir, "slot", 2 * 65536, power);
	open().write(0, 2 * 65536, new Uint8Array(2 * 65536));
	const whole = open();
	whole.eraseBlock(0);
	assert.ok(whole.read(0, 65536).every((b) => b === 0xff));
	assert.ok(whole.read(65536, 65536).every((b) => b === 0), "the next block is untouched");
	assert.throws(() => whole.eraseBlock(2), /^erase failed$/);
	assert.equal([whole.stats.erases, whole.stats.blockErases], [0, 1]);
	const power = cutPower(1, 4);
	throwsCut(() => open(power).eraseBlock(1));
	assert.equal(power.cutAt, { op: 1, kind: "flash-block-erase" });
	const erased = Math.floor(power.tearFraction() * 65536);
	const after = open().read(65536, 65536);
	assert.ok(after.subarray(0, erased).every((b) => b === 0xff));
	assert.ok(after.subarray(erased).every((b) => b === 0), "the rest keeps its old bits");
	assert.ok(erased % 4096 !== 0 && erased > 4096 && erased < 65536 - 4096, `${erased} bytes erased: some whole sectors, one part-way, some old`);
});

test("flash: writes cost one page program per 256-byte page they touch; busyMs applies the W25Q32JV's times", () => {
	const flash = slotFlash(newFolder());
	flash.write(250, 10, new Uint8Array(10));
	flash.write(512, 256, new Uint8Array(256));
	flash.write(0, 0, new Uint8Array(0));
	assert.is(flash.stats.pagePrograms, 3);
	flash.erase(3);
	assert.equal(busyMs(flash.stats), [45 + 3 * 0.4, 400 + 3 * 3]);
	assert.equal(busyMs({ erases: 0, blockErases: 2, writes: 0, pagePrograms: 0, bytesWritten: 0, reads: 0, bytesRead: 0 }), [300, 4000]);
});

test("board: ota.eraseNext erases the inactive slot as esp_partition_erase_range does, or returns its error", () => {
	const dir = newFolder();
	const board = new Board({ dir });
	const slot = board.storage.appSlot(1);
	slot.write(0, 3 * 65536, new Uint8Array(3 * 65536));
	board.storage.appSlot(0).write(0, 3 * 65536, new Uint8Array(3 * 65536));
	// Sectors 1..15, block 1 whole, then sector 32: a block erase only where 64 KiB are aligned.
	assert.is(board.call("ota.eraseNext", [4096, 2 * 65536], undefined), 0);
	assert.equal([slot.stats.erases, slot.stats.blockErases], [16, 1]);
	assert.ok(slot.read(0, 4096).every((b) => b === 0), "sector 0 kept");
	assert.ok(slot.read(4096, 2 * 65536).every((b) => b === 0xff));
	assert.ok(slot.read(4096 + 2 * 65536, 4096).every((b) => b === 0), "the sector after the range kept");
	assert.ok(board.storage.appSlot(0).read(0, 3 * 65536).every((b) => b === 0), "the running slot is not touched");
	assert.is(board.call("ota.eraseNext", [100, 4096], undefined), 0x102);
	assert.is(board.call("ota.eraseNext", [0, 100], undefined), 0x102);
	assert.is(board.call("ota.eraseNext", [slot.byteLength - 4096, 8192], undefined), 0x104);
	assert.equal([slot.stats.erases, slot.stats.blockErases], [16, 1]);
});

test("board: events sent ahead stop where a timer falls due, and come from their own queue whatever another socket queued since", () => {
	const board = new Board({ dir: newFolder() });
	const timer = board.call("timer.set", [3, 0], undefined) as number;
	// 1,460 bytes take 1.168 ms at 10 Mbit/s: the clock reads 1, 2, 3 ms after the first three, when the timer is due.
	for (const topic of ["a", "b", "c", "d"]) board.mqtt.queue({ id: 7, message: "message", topic }, new Uint8Array(1460));
	const upcoming = board.upcomingEvents(16);
	assert.equal(upcoming.map((received) => (received.event as { topic?: string }).topic), ["a", "b", "c"]);
	// An HTTP event arrives while the device handles them: nextEvent() would put it first, but it came after.
	board.network.queue({ id: 8, message: 4, value: 10 }, new Uint8Array(10));
	for (const received of upcoming) board.takeUpcoming(received);
	assert.is(board.clock.now, 3);
	assert.is(board.nextEvent()?.event.id, timer);
	assert.is(board.nextEvent()?.event.id, 8);
	assert.equal(board.nextEvent()?.event.topic, "d");
	assert.is(board.eventsTaken, 6);
	assert.throws(() => board.takeUpcoming(upcoming[0]), /no longer next in its queue/);
});

test("flash: a file larger than its partition is refused", () => {
	const dir = newFolder();
	FlashPartition.open(dir, "slot", 8 * 4096, new PowerSupply({})).write(8 * 4096 - 1, 1, new Uint8Array(1));
	assert.throws(() => slotFlash(dir).read(0, 1), /^partition slot: file size 32768, larger than the partition's 16384$/);
});

// --- after a cut ---

test("after a cut every op throws PowerCutError, reads included", () => {
	const dir = newFolder();
	const power = cutPower(1);
	const flash = slotFlash(dir, power);
	const prefs = PreferenceStore.open(dir, power);
	throwsCut(() => flash.erase(0));
	assert.not.ok(power.isOn);
	throwsCut(() => flash.erase(1));
	throwsCut(() => flash.write(0, 1, new Uint8Array(1)));
	throwsCut(() => flash.read(0, 1));
	throwsCut(() => prefs.set("d", "k", 1));
	throwsCut(() => prefs.get("d", "k"));
	throwsCut(() => prefs.delete("d", "k"));
	throwsCut(() => prefs.keys("d"));
	assert.is(power.ops, 1, "refused ops are not counted");
});

// --- preferences ---

test("prefs: values round-trip by type, get copies buffers, delete of a missing key is fine", () => {
	const prefs = PreferenceStore.open(newFolder(), new PowerSupply({}));
	prefs.set("ota", "flag", true);
	prefs.set("ota", "n", -0x80000000);
	prefs.set("ota", "max", 0x7fffffff);
	prefs.set("ota", "s", "héllo");
	prefs.set("ota", "b", new Uint8Array([1, 2, 3]).buffer);
	assert.is(prefs.get("ota", "flag"), true);
	assert.is(prefs.get("ota", "n"), -0x80000000);
	assert.is(prefs.get("ota", "max"), 0x7fffffff);
	assert.is(prefs.get("ota", "s"), "héllo");
	const buffer = prefs.get("ota", "b");
	assert.instance(buffer, ArrayBuffer);
	assert.equal(bytesOf(buffer), [1, 2, 3]);
	new Uint8Array(buffer as ArrayBuffer)[0] = 9;
	assert.equal(bytesOf(prefs.get("ota", "b")), [1, 2, 3]);
	assert.is(prefs.get("ota", "none"), undefined);
	assert.is(prefs.get("other", "none"), undefined);
	assert.equal(prefs.keys("ota").sort(), ["b", "flag", "max", "n", "s"]);
	assert.equal(prefs.keys("other"), []);
	prefs.delete("ota", "missing");
	prefs.delete("ota", "flag");
	assert.is(prefs.get("ota", "flag"), undefined);
	assert.equal(prefs.stats, { setCount: 5, bytesWritten: 7 + 3, deletes: 2 });
});

test("prefs: ESP32 limits throw Moddable-like messages and store nothing", () => {
	const prefs = PreferenceStore.open(newFolder(), new PowerSupply({}));
	prefs.set("d", "k".repeat(15), 1);
	prefs.set("d".repeat(15), "k", 1);
	assert.throws(() => prefs.set("d", "k".repeat(16), 1), /^key too long$/);
	assert.throws(() => prefs.set("d".repeat(16), "k", 1), /^domain too long$/);
	prefs.set("d", "buf", new ArrayBuffer(4000));
	assert.throws(() => prefs.set("d", "big", new ArrayBuffer(4001)), /^value too long$/);
	prefs.set("d", "str", "x".repeat(4000));
	assert.throws(() => prefs.set("d", "bigstr", "é".repeat(2001)), /value too long/); // 4002 bytes of UTF-8
	assert.throws(() => prefs.set("d", "f", 1.5), /^float unsupported$/);
	assert.throws(() => prefs.set("d", "nan", NaN), /float unsupported/);
	assert.throws(() => prefs.set("d", "i", 0x80000000), /^integer out of range$/);
	assert.throws(() => prefs.set("d", "i", -0x80000001), /integer out of range/);
	assert.throws(() => prefs.set("d", "dv", new DataView(new ArrayBuffer(4)) as never), /^unsupported type$/);
	assert.throws(() => prefs.set("d", "u8", new Uint8Array(4) as never), /unsupported type/);
	assert.throws(() => prefs.set("d", "o", {} as never), /unsupported type/);
	assert.throws(() => prefs.set("d", "z", null as never), /unsupported type/);
	assert.equal(prefs.keys("d").sort(), ["buf", "k".repeat(15), "str"]);
});

test("prefs: the capacity model throws no space, and the failed set has already erased the key", () => {
	const prefs = PreferenceStore.open(newFolder(), new PowerSupply({}));
	// 4000-byte buffers cost 32 + 4000 bytes each, plus 32 for the domain: four fit in 18432, five do not.
	for (let i = 0; i < 4; i++) prefs.set("d", `k${i}`, new ArrayBuffer(4000));
	assert.is(prefs.usedBytes(), 32 + 4 * 4032);
	assert.throws(() => prefs.set("d", "k4", new ArrayBuffer(4000)), /^no space$/);
	assert.is(prefs.get("d", "k4"), undefined);
	// Replacing a key frees its old entry first, so the same size fits again.
	prefs.set("d", "k0", new ArrayBuffer(4000));
	assert.is(prefs.usedBytes(), 32 + 4 * 4032);
	// A replacement that grows past capacity fails after the erase: the old value is gone too.
	prefs.set("d", "k1", new ArrayBuffer(100));
	prefs.set("d", "pad", new ArrayBuffer(4000));
	assert.is(prefs.get("d", "k1")!.constructor, ArrayBuffer);
	assert.throws(() => prefs.set("d", "k1", new ArrayBuffer(4000)), /no space/);
	assert.is(prefs.get("d", "k1"), undefined);
	assert.ok(prefs.usedBytes() <= capacityBytes);
});

test("prefs: a cut at a set's second op loses the key", () => {
	for (const seed of [1, 2, 3]) {
		const dir = newFolder();
		PreferenceStore.open(dir, new PowerSupply({})).set("ota", "offset", 4096);
		const power = cutPower(2, seed);
		throwsCut(() => PreferenceStore.open(dir, power).set("ota", "offset", 8192));
		assert.equal(power.cutAt, { op: 2, kind: "pref-write" });
		assert.is(PreferenceStore.open(dir, new PowerSupply({})).get("ota", "offset"), undefined);
	}
});

test("prefs: a cut at a set's first op leaves the key gone or old, never new", () => {
	for (const seed of [1, 2, 3]) {
		const dir = newFolder();
		PreferenceStore.open(dir, new PowerSupply({})).set("ota", "offset", 4096);
		const power = cutPower(1, seed);
		throwsCut(() => PreferenceStore.open(dir, power).set("ota", "offset", 8192));
		assert.equal(power.cutAt, { op: 1, kind: "pref-erase" });
		const after = PreferenceStore.open(dir, new PowerSupply({})).get("ota", "offset");
		assert.ok(after === undefined || after === 4096, `got ${after}`);
	}
});

test("prefs: a set survives reopening; a cut at a later op leaves it whole", () => {
	const dir = newFolder();
	const power = cutPower(3);
	const prefs = PreferenceStore.open(dir, power);
	prefs.set("ota", "a", "one");
	throwsCut(() => prefs.set("ota", "b", "two"));
	const reopened = PreferenceStore.open(dir, new PowerSupply({}));
	assert.is(reopened.get("ota", "a"), "one");
	assert.is(reopened.get("ota", "b"), undefined);
});

test("prefs: a torn delete either deleted the key or not, as tearFraction says", () => {
	let deleted = 0;
	for (let seed = 1; seed <= 20; seed++) {
		const dir = newFolder();
		PreferenceStore.open(dir, new PowerSupply({})).set("d", "k", 5);
		const power = cutPower(1, seed);
		throwsCut(() => PreferenceStore.open(dir, power).delete("d", "k"));
		const after = PreferenceStore.open(dir, new PowerSupply({})).get("d", "k");
		assert.is(after === undefined, power.tearFraction() >= 0.5);
		if (after === undefined) deleted++;
	}
	assert.ok(deleted > 0 && deleted < 20, "both outcomes occur");
});

// --- partition table ---

test("partition table: boards/esp32/partitions.csv is toCsv(defaultPartitions)", () => {
	const file = new URL("../boards/esp32/partitions.csv", import.meta.url);
	assert.is(fs.readFileSync(file, "utf8"), toCsv(defaultPartitions));
	const rows = toCsv(defaultPartitions).split("\n").filter((l) => l && !l.startsWith("#"));
	assert.equal(rows[3].split(",").map((c) => c.trim()), ["ota_0", "app", "ota_0", "0x20000", "0x1e0000", ""]);
	assert.ok(toCsv(defaultPartitions).includes("# Name,"));
});

test("partition table: validation rejects misaligned apps, overlaps and overflow", () => {
	const table = (change: Partial<Partition>, index = 4) =>
		defaultPartitions.map((p, i) => i === index ? { ...p, ...change } : p);
	validatePartitions(defaultPartitions);
	assert.throws(() => validatePartitions(table({ offset: 0x201000 })), /64 KiB/);
	assert.throws(() => validatePartitions(table({ offset: 0x1f0000 })), /overlap/);
	assert.throws(() => validatePartitions(table({ size: 0x210000 })), /past end/);
	assert.throws(() => validatePartitions(table({ offset: 0x8000 }, 0)), /partition table/);
});

// --- otadata ---

const freshOtadata = () => {
	const dir = newFolder();
	return { dir, otadata: otadataAt(dir, new PowerSupply({})) };
};
const otadataAt = (dir: string, power: PowerSupply) => new OtaData(FlashPartition.open(dir, "otadata", 0x2000, power));
const bothValid = () => true;

test("crc: ROM crc32_le convention; otadata seq CRCs match real boards", () => {
	assert.is(crc32Le(0, new TextEncoder().encode("123456789")), 0xcbf43926);
	assert.is(seqCrc(1), 0x4743989a);
	assert.is(seqCrc(2), 0x55f63774);
	// Chaining: a previous result continues the CRC.
	const whole = crc32Le(0, new Uint8Array([1, 2, 3, 4]));
	assert.is(crc32Le(crc32Le(0, new Uint8Array([1, 2])), new Uint8Array([3, 4])), whole);
});

test("otadata: empty boots slot 0 UNDEFINED; setBoot writes the real entry layout", () => {
	const { dir, otadata } = freshOtadata();
	assert.equal(otadata.bootDecision(bothValid), { slot: 0, rolledBack: false, state: OtaState.undefined });
	otadata.setBoot(0);
	const raw = FlashPartition.open(dir, "otadata", 0x2000, new PowerSupply({})).read(0, 32);
	assert.equal(Array.from(raw.subarray(0, 4)), [1, 0, 0, 0]);
	assert.ok(raw.subarray(4, 24).every((b) => b === 0xff), "seq_label left erased");
	assert.equal(Array.from(raw.subarray(24, 28)), [0, 0, 0, 0]);
	assert.equal(Array.from(raw.subarray(28, 32)), [0x9a, 0x98, 0x43, 0x47]);
});

test("otadata: setBoot(1) boots slot 1 PENDING_VERIFY; unconfirmed, the next boot rolls back to slot 0", () => {
	const { dir, otadata } = freshOtadata();
	otadata.setBoot(1);
	assert.equal(otadata.entries()[0], { sector: 0, seq: 2, state: OtaState.new, crc: seqCrc(2), valid: true });
	assert.equal(otadata.bootDecision(bothValid), { slot: 1, rolledBack: false, state: OtaState.pendingVerify });
	const nextBoot = otadataAt(dir, new PowerSupply({}));
	assert.equal(nextBoot.bootDecision(bothValid), { slot: 0, rolledBack: true, state: OtaState.undefined });
	assert.is(nextBoot.state(1), OtaState.aborted);
	// It stays rolled back.
	assert.equal(nextBoot.bootDecision(bothValid), { slot: 0, rolledBack: true, state: OtaState.undefined });
});

test("otadata: rollback goes to the previous valid slot, not the factory slot", () => {
	const { otadata } = freshOtadata();
	otadata.setBoot(1);
	otadata.bootDecision(bothValid);
	otadata.markValid(1);
	otadata.setBoot(0);
	assert.equal(otadata.bootDecision(bothValid), { slot: 0, rolledBack: false, state: OtaState.pendingVerify });
	assert.equal(otadata.bootDecision(bothValid), { slot: 1, rolledBack: true, state: OtaState.valid });
	assert.is(otadata.state(0), OtaState.aborted);
});

test("otadata: setBoot then markValid stays on the new slot", () => {
	const { dir, otadata } = freshOtadata();
	otadata.setBoot(1);
	otadata.bootDecision(bothValid);
	otadata.markValid(1);
	assert.is(otadata.state(1), OtaState.valid);
	for (let boot = 0; boot < 3; boot++) {
		assert.equal(otadataAt(dir, new PowerSupply({})).bootDecision(bothValid), { slot: 1, rolledBack: false, state: OtaState.valid });
	}
});

test("otadata: markValid is a no-op on a factory boot and when already VALID", () => {
	const power = new PowerSupply({});
	const watched = otadataAt(newFolder(), power);
	watched.markValid(0);
	assert.is(power.ops, 0);
	watched.setBoot(0);
	watched.bootDecision(bothValid);
	assert.is(power.ops, 4, "setBoot and the bootloader's NEW → PENDING_VERIFY each erase + write");
	watched.markValid(0);
	assert.is(power.ops, 6, "erase + write");
	watched.markValid(0);
	assert.is(power.ops, 6);
	assert.is(watched.state(0), OtaState.valid);
});

test("otadata: an image failing its check is skipped", () => {
	const { otadata } = freshOtadata();
	otadata.setBoot(0);
	otadata.bootDecision(bothValid);
	otadata.markValid(0);
	otadata.setBoot(1);
	assert.equal(otadata.bootDecision((slot) => slot !== 1), { slot: 0, rolledBack: true, state: OtaState.valid });
	assert.is(otadata.state(1), OtaState.new, "a skipped image is not rewritten");
});

test("otadata: seq arithmetic across switches 0→1→0→1 alternates sectors", () => {
	const { otadata } = freshOtadata();
	const expected = [[0, 1, 0], [1, 2, 1], [0, 3, 0], [1, 4, 1]];
	for (const [slot, seq, sector] of expected) {
		otadata.setBoot(slot);
		const entry = otadata.entries()[sector];
		assert.equal([entry.seq, entry.state, entry.valid], [seq, OtaState.new, true]);
		assert.equal(otadata.bootDecision(bothValid), { slot, rolledBack: false, state: OtaState.pendingVerify });
		otadata.markValid(slot);
		assert.equal(otadata.bootDecision(bothValid), { slot, rolledBack: false, state: OtaState.valid });
	}
	// Asking twice for the same slot skips a seq: (seq - 1) % 2 must name the slot.
	otadata.setBoot(1);
	assert.is(otadata.entries()[0].seq, 6);
	assert.is(otadata.entries()[1].seq, 4, "the newest entry's sector is left alone");
});

test("otadata: a torn entry write is ignored and the previous slot boots", () => {
	let partial = 0;
	for (let seed = 1; seed <= 12; seed++) {
		const dir = newFolder();
		const setup = otadataAt(dir, new PowerSupply({}));
		setup.setBoot(0);
		setup.bootDecision(bothValid);
		setup.markValid(0);
		// setBoot(1) = erase (op 1) + write (op 2); power fails during the write.
		const power = cutPower(2, seed);
		throwsCut(() => otadataAt(dir, power).setBoot(1));
		assert.equal(power.cutAt, { op: 2, kind: "flash-write" });
		const after = otadataAt(dir, new PowerSupply({}));
		const torn = after.entries()[1];
		assert.not.ok(torn.valid, `seed ${seed}: torn entry must not validate`);
		if (torn.seq !== 0xffffffff) partial++;
		assert.equal(after.bootDecision(bothValid), { slot: 0, rolledBack: false, state: OtaState.valid });
	}
	assert.ok(partial > 0, "some torn writes landed part of ota_seq");
});

test("otadata: a cut between the erase and the write of setBoot keeps the previous slot", () => {
	const dir = newFolder();
	const setup = otadataAt(dir, new PowerSupply({}));
	setup.setBoot(1);
	setup.bootDecision(bothValid);
	setup.markValid(1);
	const power = cutPower(1);
	throwsCut(() => otadataAt(dir, power).setBoot(0));
	assert.equal(otadataAt(dir, new PowerSupply({})).bootDecision(bothValid), { slot: 1, rolledBack: false, state: OtaState.valid });
});

test("otadata: a cut while the bootloader marks NEW as PENDING_VERIFY loses the new entry", () => {
	// ESP-IDF rewrites the entry in place (erase, then write): power lost in between leaves no entry
	// for the new image, so the board boots the old one without ever running the update.
	const dir = newFolder();
	const setup = otadataAt(dir, new PowerSupply({}));
	setup.setBoot(0);
	setup.bootDecision(bothValid);
	setup.markValid(0);
	setup.setBoot(1);
	throwsCut(() => otadataAt(dir, cutPower(2)).bootDecision(bothValid));
	const after = otadataAt(dir, new PowerSupply({}));
	assert.equal(after.bootDecision(bothValid), { slot: 0, rolledBack: false, state: OtaState.valid });
	assert.is(after.state(1), OtaState.undefined);
});

// --- board folder ---

test("board: a new folder gets board.json and erased partitions, with no file until written; reopening keeps everything", () => {
	const dir = path.join(newFolder(), "board");
	const board = BoardStorage.open(dir, new PowerSupply({}));
	assert.ok(board.isFresh);
	const config = JSON.parse(fs.readFileSync(path.join(dir, "board.json"), "utf8"));
	assert.equal(config, { chip: "esp32", flashSize: 4194304, partitions: defaultPartitions });
	for (const label of ["ota_0", "ota_1", "otadata", "phy_init"]) {
		assert.ok(board.partition(label).read(0, defaultPartitions.find((p) => p.label === label)!.size).every((byte) => byte === 0xff));
		assert.not.ok(fs.existsSync(path.join(dir, `${label}.bin`)), "nothing written yet: no file");
	}
	assert.is(board.appSlot(1), board.partition("ota_1"));
	assert.is(board.appSlot(0).byteLength, 0x1e0000);
	assert.throws(() => board.partition("nvs"), /^can't find partition$/);
	assert.throws(() => board.appSlot(2), /can't find partition/);

	board.appSlot(1).write(0, 4, new Uint8Array([0xe9, 1, 2, 3]));
	board.nvs.set("ota", "offset", 4096);
	board.otadata.setBoot(1);

	const again = BoardStorage.open(dir, new PowerSupply({}));
	assert.not.ok(again.isFresh);
	assert.equal(Array.from(again.appSlot(1).read(0, 4)), [0xe9, 1, 2, 3]);
	assert.is(again.nvs.get("ota", "offset"), 4096);
	assert.equal(again.otadata.bootDecision(bothValid), { slot: 1, rolledBack: false, state: OtaState.pendingVerify });
});

test("board: one power supply counts ops across flash, preferences and otadata", () => {
	const dir = path.join(newFolder(), "board");
	BoardStorage.open(dir, new PowerSupply({}));
	const power = cutPower(4);
	const board = BoardStorage.open(dir, power);
	board.appSlot(0).erase(0); // 1
	board.nvs.set("d", "k", 1); // 2, 3
	throwsCut(() => board.otadata.setBoot(1)); // 4: the erase
	assert.equal(power.cutAt, { op: 4, kind: "flash-erase" });
	throwsCut(() => board.appSlot(0).read(0, 1));
});

test.run();
