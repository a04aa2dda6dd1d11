// One flash partition of the simulated board, backed by one file. The file holds the partition from its start
// to the last byte ever programmed; past its end the partition reads erased (0xFF), and a partition never
// written has no file: a board costs only the bytes it was written. The file is the only lasting copy: every erase
// and write reaches it before the call returns or, on a powered board, by the end of the turn and in the order
// made (HeldWrites), so a killed process leaves the bytes a power cut at some write would. Reads come from a
// copy of the file taken at the partition's first use in this power-on and kept in step with every write, in
// 64 KiB pages: a page nothing was written to reads erased.

import * as fs from "node:fs";
import * as path from "node:path";
import { BoardFile, type HeldWrites } from "./board-file";
import { inPartition, sectorSize } from "./flash-range";
import { PowerCutError, type PowerSupply } from "./power";

/** What one block erase clears: 64 KiB, 16 sectors, at a 64 KiB-aligned address. */
export const blockEraseSize = 65536;
/** What erased flash reads: enough for the largest erase and a whole page of the copy. */
const erased = new Uint8Array(blockEraseSize).fill(0xff);
/** The copy's page: a 64 KiB block. */
const copyPage = blockEraseSize;
/** Page programs cover at most one 256-byte page each. */
export const pageSize = 256;

/** Winbond W25Q32JV, the 4 MB part on common ESP32 modules: milliseconds per operation, typical / maximum. */
export const w25q32jv = {
	sectorEraseMs: [45, 400],
	blockEraseMs: [150, 2000],
	pageProgramMs: [0.4, 3],
} as const;

export interface FlashStats {
	/** 4 KiB sector erases. */
	erases: number;
	/** 64 KiB block erases (a torn one counts). */
	blockErases: number;
	writes: number;
	/** Page programs the writes cost: a write that straddles page boundaries costs one per page it touches. */
	pagePrograms: number;
	/** Bytes that actually landed (a torn write counts only its prefix). */
	bytesWritten: number;
	/** Read calls and the bytes they returned: what reading the old image costs a patched update. */
	reads: number;
	bytesRead: number;
}

/** Milliseconds of chip work behind `stats`, [typical, maximum], from the datasheet's per-operation times. */
export function busyMs(stats: FlashStats): number[] {
	return [0, 1].map((i) => stats.erases * w25q32jv.sectorEraseMs[i] + stats.blockErases * w25q32jv.blockEraseMs[i]
		+ stats.pagePrograms * w25q32jv.pageProgramMs[i]);
}

export class FlashPartition {
	readonly label: string;
	readonly file: string;
	readonly byteLength: number;
	readonly blockSize = sectorSize;
	readonly stats: FlashStats = { erases: 0, blockErases: 0, writes: 0, pagePrograms: 0, bytesWritten: 0, reads: 0, bytesRead: 0 };
	/** Told of every erase as it begins (a torn one included): the byte range it clears. */
	onErase: (start: number, end: number) => void = () => {};
	readonly #power: PowerSupply;
	readonly #file: BoardFile;
	/** The copy, from the first access on: page i holds bytes [i × 64 KiB, (i + 1) × 64 KiB); none, erased. */
	#pages: (Uint8Array | undefined)[] | undefined;
	/** Per page: the bytes from here to its end are erased (writes there are copies, not ANDs). */
	#erasedFrom: number[] = [];
	/** How many bytes the file holds, once the copy is taken: as the chip sees it, and as written so far. */
	#fileLength = 0;
	#storedLength = 0;
	/** The bytes changed since the last flush: [from, to). */
	#dirtyFrom = Infinity;
	#dirtyTo = 0;
	readonly #held: HeldWrites | undefined;

	/**
		The partition in `<dir>/<label>.bin`, erased where the file ends or when there is none; the file is read
		at the first access and created at the first write. `held`, a powered board's: the file stays open until
		close() and changes reach it when `held` sends them; without it, the file is closed before the next turn
		of the event loop and changes reach it before each call returns.
	*/
	static open(dir: string, label: string, byteLength: number, power: PowerSupply, held?: HeldWrites): FlashPartition {
		return new FlashPartition(path.join(dir, `${label}.bin`), label, byteLength, power, held);
	}

	constructor(file: string, label: string, byteLength: number, power: PowerSupply, held?: HeldWrites) {
		if (byteLength <= 0 || byteLength % sectorSize) throw new Error("partition size not a multiple of 4096");
		this.file = file;
		this.label = label;
		this.byteLength = byteLength;
		this.#power = power;
		this.#file = new BoardFile(file, held !== undefined);
		this.#held = held;
	}

	erase(sector: number): void {
		this.#power.assertOn();
		if (!Number.isInteger(sector) || sector < 0 || (sector + 1) * sectorSize > this.byteLength) throw new Error("erase failed");
		const start = sector * sectorSize;
		this.onErase(start, start + sectorSize);
		if (this.#power.beginOp("flash-erase") === "torn") {
			// An interrupted NOR erase: part of the sector is erased, the rest keeps its old bits.
			this.#clear(start, Math.floor(this.#power.tearFraction() * sectorSize));
			this.stats.erases++;
			this.#power.cut("flash-erase");
			throw new PowerCutError();
		}
		this.#clear(start, sectorSize);
		this.stats.erases++;
	}

	/**
		Erases 64 KiB block `block` in one operation. A cut during it leaves the block torn: the chip clears it
		in address order here, so the sectors before the cut point read erased, those after keep their old
		bytes, and the sector the cut falls in is partly erased.
	*/
	eraseBlock(block: number): void {
		this.#power.assertOn();
		if (!Number.isInteger(block) || block < 0 || (block + 1) * blockEraseSize > this.byteLength) throw new Error("erase failed");
		const start = block * blockEraseSize;
		this.onErase(start, start + blockEraseSize);
		const torn = this.#power.beginOp("flash-block-erase") === "torn";
		this.#clear(start, torn ? Math.floor(this.#power.tearFraction() * blockEraseSize) : blockEraseSize);
		this.stats.blockErases++;
		if (torn) {
			this.#power.cut("flash-block-erase");
			throw new PowerCutError();
		}
	}

	/** Programs `byteLength` bytes from the start of `buffer` at `offset`. NOR: bits only go 1 → 0. */
	write(offset: number, byteLength: number, buffer: ArrayBuffer | ArrayBufferView): void {
		this.#power.assertOn();
		if (!inPartition(offset, byteLength, this.byteLength)) throw new Error("write failed");
		const data = ArrayBuffer.isView(buffer)
			? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
			: new Uint8Array(buffer);
		if (data.byteLength < byteLength) throw new Error("write failed");
		let landed = byteLength;
		const outcome = this.#power.beginOp("flash-write");
		if (outcome === "torn") landed = Math.floor(this.#power.tearFraction() * byteLength);
		if (landed > 0) {
			const pages = this.#copy();
			for (let at = offset, end = offset + landed; at < end;) {
				const index = Math.floor(at / copyPage), start = at - index * copyPage, count = Math.min(copyPage - start, end - at);
				const page = pages[index] ??= new Uint8Array(copyPage).fill(0xff), from = at - offset;
				if (start >= (this.#erasedFrom[index] ?? 0)) page.set(data.subarray(from, from + count), start);
				else for (let i = 0; i < count; i++) page[start + i] &= data[from + i];
				this.#erasedFrom[index] = Math.max(this.#erasedFrom[index] ?? 0, start + count);
				at += count;
			}
			// Past the file's end, the erased bytes up to this write go in too: the file has no holes.
			this.#changed(Math.min(offset, this.#fileLength), offset + landed);
			this.#fileLength = Math.max(this.#fileLength, offset + landed);
			this.#stored();
		}
		this.stats.writes++;
		if (byteLength) this.stats.pagePrograms += Math.floor((offset + byteLength - 1) / pageSize) - Math.floor(offset / pageSize) + 1;
		this.stats.bytesWritten += landed;
		if (outcome === "torn") {
			this.#power.cut("flash-write");
			throw new PowerCutError();
		}
	}

	/** A copy of `byteLength` bytes at `offset`. */
	read(offset: number, byteLength: number): Uint8Array {
		this.#power.assertOn();
		if (!inPartition(offset, byteLength, this.byteLength)) throw new Error("read failed");
		return this.readInto(offset, byteLength, new Uint8Array(byteLength));
	}

	/** read() into the start of `bytes`, which it returns. */
	readInto(offset: number, byteLength: number, bytes: Uint8Array): Uint8Array {
		this.#power.assertOn();
		if (!inPartition(offset, byteLength, this.byteLength) || bytes.length < byteLength) throw new Error("read failed");
		this.stats.reads++;
		this.stats.bytesRead += byteLength;
		const pages = this.#copy();
		for (let at = offset, end = offset + byteLength; at < end;) {
			const index = Math.floor(at / copyPage), start = at - index * copyPage, count = Math.min(copyPage - start, end - at);
			const page = pages[index];
			if (page) bytes.set(page.subarray(start, start + count), at - offset);
			else bytes.fill(0xff, at - offset, at - offset + count);
			at += count;
		}
		return bytes;
	}

	/** Sets `length` bytes from `start` to 0xFF; the file shrinks when they reach its end. */
	#clear(start: number, length: number): void {
		if (length <= 0) return;
		const pages = this.#copy();
		for (let at = start, end = start + length; at < end;) {
			const index = Math.floor(at / copyPage), from = at - index * copyPage, count = Math.min(copyPage - from, end - at);
			if (count === copyPage) {
				pages[index] = undefined;
				this.#erasedFrom[index] = 0;
			}
			else {
				pages[index]?.fill(0xff, from, from + count);
				if (from + count === copyPage) this.#erasedFrom[index] = Math.min(this.#erasedFrom[index] ?? 0, from);
			}
			at += count;
		}
		if (start >= this.#fileLength) return;
		if (start + length >= this.#fileLength) this.#fileLength = start;
		else this.#changed(start, start + length);
		this.#stored();
	}

	#changed(from: number, to: number): void {
		this.#dirtyFrom = Math.min(this.#dirtyFrom, from);
		this.#dirtyTo = Math.max(this.#dirtyTo, to);
	}

	#stored(): void {
		if (this.#held) this.#held.hold(this);
		else this.flush();
	}

	/** Brings the file up to the copy: shortened if it was, then the changed bytes. */
	flush(): void {
		if (!this.#pages) return;
		if (this.#storedLength > this.#fileLength) {
			fs.ftruncateSync(this.#file.fd, this.#fileLength);
			this.#storedLength = this.#fileLength;
		}
		const pages = this.#copy(), to = Math.min(this.#dirtyTo, this.#fileLength);
		for (let at = this.#dirtyFrom; at < to;) {
			const index = Math.floor(at / copyPage), start = at - index * copyPage, count = Math.min(copyPage - start, to - at);
			fs.writeSync(this.#file.fd, pages[index] ?? erased, start, count, at);
			at += count;
		}
		this.#storedLength = Math.max(this.#storedLength, to);
		this.#dirtyFrom = Infinity;
		this.#dirtyTo = 0;
	}

	/** The copy, read from the file at the first access. */
	#copy(): (Uint8Array | undefined)[] {
		if (!this.#pages) {
			const fd = this.#file.open(false);
			const size = this.#fileLength = this.#storedLength = fd === undefined ? 0 : fs.fstatSync(fd).size;
			if (size > this.byteLength) throw new Error(`partition ${this.label}: file size ${size}, larger than the partition's ${this.byteLength}`);
			const pages: (Uint8Array | undefined)[] = this.#pages = [];
			for (let at = 0; at < size; at += copyPage) {
				const page = pages[at / copyPage] = new Uint8Array(copyPage), count = Math.min(copyPage, size - at);
				this.#erasedFrom[at / copyPage] = count;
				if (fs.readSync(fd!, page, 0, count, at) !== count) throw new Error(`partition ${this.label}: file shorter than it was`);
				page.fill(0xff, count);
			}
		}
		return this.#pages;
	}

	close(): void {
		this.flush();
		this.#file.close();
	}
}
