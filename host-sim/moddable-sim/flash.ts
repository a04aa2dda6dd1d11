// "flash" for the Linux simulator (mcsim), which has none: the ESP32 flavour of Moddable's flash API over
// one file per partition. NOR semantics as on the chip: erase sets a 4 KiB sector to 0xFF, and a write
// can only clear bits (it is ANDed with what is there), so a missed erase shows up here too.

import { File } from "file";
import { partitionFile } from "mc/ffi";

const sectorSize = 4096;
const erased = new Uint8Array(sectorSize).fill(0xff);

// A new partition file reads as erased flash, like a blank chip.
function open(path: string, byteLength: number): File {
	const file = new File(path, true);
	let length = file.length;
	file.position = length;
	while (length < byteLength) {
		const count = Math.min(sectorSize - (length % sectorSize), byteLength - length);
		file.write(count === sectorSize ? erased.buffer : erased.buffer.slice(0, count));
		length += count;
	}
	return file;
}

export default class Flash {
	#file: File;
	readonly byteLength: number;
	readonly blockSize = sectorSize;

	constructor(partition: string) {
		const found = partitionFile(partition);
		if (!found) throw new Error("can't find partition");
		this.byteLength = found.byteLength;
		this.#file = open(found.path, found.byteLength);
	}

	erase(sector: number): void {
		if (!Number.isInteger(sector) || sector < 0 || (sector + 1) * sectorSize > this.byteLength)
			throw new Error("erase failed");
		this.#file.position = sector * sectorSize;
		this.#file.write(erased.buffer);
	}

	read(offset: number, byteLength: number): ArrayBuffer {
		this.#check(offset, byteLength, "read failed");
		if (!byteLength) return new ArrayBuffer(0);
		this.#file.position = offset;
		return this.#file.read(ArrayBuffer, byteLength);
	}

	write(offset: number, byteLength: number, buffer: ArrayBuffer | ArrayBufferView): void {
		this.#check(offset, byteLength, "write failed");
		const data = ArrayBuffer.isView(buffer)
			? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
			: new Uint8Array(buffer);
		if (data.length < byteLength) throw new Error("write failed");
		if (!byteLength) return;
		const merged = new Uint8Array(this.read(offset, byteLength));
		for (let i = 0; i < byteLength; i++) merged[i] &= data[i];
		this.#file.position = offset;
		this.#file.write(merged.buffer);
	}

	#check(offset: number, byteLength: number, message: string): void {
		if (!Number.isInteger(offset) || !Number.isInteger(byteLength) || offset < 0 || byteLength < 0 || offset + byteLength > this.byteLength)
			throw new Error(message);
	}
}
