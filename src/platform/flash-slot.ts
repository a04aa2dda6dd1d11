// FlashSlot over Moddable's "flash" module: "nextota" is the inactive OTA app slot on ESP32
// (the host simulators provide a module of the same name and behaviour).

import Flash from "flash";
import type { FlashSlot } from "./ports";

export class ModdableFlashSlot implements FlashSlot {
	#flash: Flash;
	readonly byteLength: number;
	readonly sectorSize: number;

	constructor(partition = "nextota") {
		this.#flash = new Flash(partition);
		this.byteLength = this.#flash.byteLength;
		this.sectorSize = this.#flash.blockSize;
	}

	erase(sector: number): void {
		this.#flash.erase(sector);
	}

	write(offset: number, byteLength: number, buffer: ArrayBuffer): void {
		this.#flash.write(offset, byteLength, buffer);
	}

	// Moddable's read returns a fresh buffer; this is the one copy its API forces on us.
	readInto(offset: number, byteLength: number, into: Uint8Array): void {
		into.set(new Uint8Array(this.#flash.read(offset, byteLength)));
	}
}
