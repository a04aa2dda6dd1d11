// FlashSlot over Moddable's "flash" module: "nextota" is the inactive OTA app slot on ESP32 (the host
// simulators provide a module of the same name and behaviour). Moddable's erase clears one 4 KiB sector;
// block erases go through our C helper (src/native/ota_control.c), which erases a range of the same slot.

import Flash from "flash";
import FFI from "mc/ffi";
import type { FlashSlot } from "./ports";

/** The NOR block erase of the flash parts on ESP32 modules. */
const blockSize = 65536;

export class ModdableFlashSlot implements FlashSlot {
	#flash = new Flash("nextota");
	#native = new FFI();
	readonly byteLength: number;
	readonly sectorSize: number;
	readonly blockSize = blockSize;

	constructor() {
		this.byteLength = this.#flash.byteLength;
		this.sectorSize = this.#flash.blockSize;
	}

	erase(sector: number): void {
		this.#flash.erase(sector);
	}

	eraseBlock(block: number): void {
		const error = this.#native.xs_ota_erase_next(block * blockSize, blockSize);
		if (error) throw new Error(`erase failed (${error})`);
	}

	write(offset: number, byteLength: number, buffer: ArrayBuffer): void {
		this.#flash.write(offset, byteLength, buffer);
	}

	// Moddable's read returns a fresh buffer; this is the one copy its API forces on us.
	readInto(offset: number, byteLength: number, into: Uint8Array): void {
		into.set(new Uint8Array(this.#flash.read(offset, byteLength)));
	}
}
