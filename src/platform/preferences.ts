// KeyValueStore over Moddable's "preference" module, enforcing the ESP32 NVS limits on every platform so
// a record that works in the simulator cannot fail on the board (the Linux simulator checks nothing).

import Preference from "preference";
import type { KeyValueStore, StoredValue } from "./ports";
import { utf8Length } from "../lib/utf8";

export const maxKeyLength = 15;
export const maxValueBytes = 4000;

export function checkPreference(key: string, value: StoredValue): void {
	if (key.length > maxKeyLength) throw new Error("key too long");
	if (typeof value === "number" && (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff))
		throw new Error("int32 only");
	if (value instanceof ArrayBuffer && value.byteLength > maxValueBytes) throw new Error("value too long");
	if (typeof value === "string" && utf8Length(value) > maxValueBytes) throw new Error("value too long");
}

export class Preferences implements KeyValueStore {
	#domain: string;

	constructor(domain = "xs-ota") {
		if (domain.length > maxKeyLength) throw new Error("domain too long");
		this.#domain = domain;
	}

	get(key: string): StoredValue | undefined {
		return Preference.get(this.#domain, key);
	}

	set(key: string, value: StoredValue): void {
		checkPreference(key, value);
		Preference.set(this.#domain, key, value);
	}

	delete(key: string): void {
		Preference.delete(this.#domain, key);
	}
}
