// RunningImage over Moddable's "flash" module: "running" is the app slot the board booted from (the host
// simulators provide a module of the same name and behaviour).

import Flash from "flash";
import type { RunningImage } from "./ports";

export class ModdableRunningImage implements RunningImage {
	#flash = new Flash("running");
	readonly byteLength: number;

	constructor() {
		this.byteLength = this.#flash.byteLength;
	}

	// Moddable's read returns a fresh buffer; this is the one copy its API forces on us.
	readInto(offset: number, byteLength: number, into: Uint8Array): void {
		into.set(new Uint8Array(this.#flash.read(offset, byteLength)));
	}
}
