// BootControl over our C helper (src/native/ota_control.c) bound with the manifest's "ffi" section:
// the few ESP-IDF calls that Moddable's JavaScript API does not reach.

import FFI from "mc/ffi";
import type { BootControl, ImageStateValue } from "./ports";

const espOk = 0;

export class EspBootControl implements BootControl {
	#native = new FFI();

	runningSlot(): number {
		return this.#native.xs_ota_running_slot();
	}

	runningState(): ImageStateValue {
		return this.#native.xs_ota_running_state() as ImageStateValue;
	}

	runningVersion(): string {
		const bytes = new Uint8Array(32);
		const length = this.#native.xs_ota_running_version(bytes.buffer);
		let version = "";
		for (let i = 0; i < length && bytes[i]; i++)
			version += String.fromCharCode(bytes[i]);
		return version;
	}

	setBootToInactive(): void {
		const error = this.#native.xs_ota_set_boot_next();
		if (error !== espOk) throw new Error(`invalid image (${error})`);
	}

	markValid(): void {
		const error = this.#native.xs_ota_mark_valid();
		if (error !== espOk) throw new Error(`mark valid failed (${error})`);
	}

	restart(): void {
		this.#native.xs_ota_restart();
	}
}
