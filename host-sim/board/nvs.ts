// The ESP32 preference store (NVS) as Moddable's `preference` module sees it, over one JSON file.
// It enforces the ESP32 limits (the Linux simulator has none) and models that a set is not atomic:
// the key is erased, then written, as two persistent ops a power cut can fall between. Like the flash
// partitions, it reads from a copy loaded at open: one store object per board per power-on.

import * as fs from "node:fs";
import * as path from "node:path";
import { BoardFile, type HeldWrites } from "./board-file";
import { capacityBytes, entryBytes, entryCost, maxNameLength, maxValueBytes } from "./nvs-space";
import { PowerCutError, type PowerSupply } from "./power";

export type PreferenceValue = boolean | number | string | ArrayBuffer;

export interface StoredEntry {
	type: "boolean" | "integer" | "string" | "buffer";
	/** Buffers are stored as hex. */
	value: boolean | number | string;
}

type Domains = Record<string, Record<string, StoredEntry>>;

export interface PreferenceStats {
	setCount: number;
	bytesWritten: number;
	deletes: number;
}

export class PreferenceStore {
	readonly file: string;
	readonly stats: PreferenceStats = { setCount: 0, bytesWritten: 0, deletes: 0 };
	readonly #power: PowerSupply;
	#domains: Domains;
	/** Written at the first set: a board that never set a preference has no nvs.json. */
	#file: BoardFile | undefined;
	#fileLength: number;
	#dirty = false;
	readonly #held: HeldWrites | undefined;

	/** Opens `<dir>/nvs.json`, empty when missing; `held` as FlashPartition.open's. */
	static open(dir: string, power: PowerSupply, held?: HeldWrites): PreferenceStore {
		return new PreferenceStore(path.join(dir, "nvs.json"), power, held);
	}

	constructor(file: string, power: PowerSupply, held?: HeldWrites) {
		this.file = file;
		this.#power = power;
		this.#held = held;
		const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
		this.#domains = text === undefined ? {} : JSON.parse(text) as Domains;
		this.#fileLength = text === undefined ? 0 : Buffer.byteLength(text);
	}

	close(): void {
		this.flush();
		this.#file?.close();
	}

	get(domain: string, key: string): PreferenceValue | undefined {
		this.#power.assertOn();
		checkNames(domain, key);
		const entry = this.#domains[domain]?.[key];
		return entry ? decode(entry) : undefined;
	}

	set(domain: string, key: string, value: PreferenceValue): void {
		this.#power.assertOn();
		checkNames(domain, key);
		const entry = encode(value);
		const needed = this.usedBytes() - this.#costOf(domain, key) + cost(entry) + (this.#domains[domain] ? 0 : entryBytes);

		// Op 1: the old entry is erased and committed. Torn: the erase has landed, nothing more.
		const erase = this.#power.beginOp("pref-erase");
		this.#remove(domain, key);
		this.#save();
		if (erase === "torn") this.#cutNow("pref-erase");
		// The erase already happened, so a full store loses the old value too (set is not atomic).
		if (needed > capacityBytes) throw new Error("no space");

		// Op 2: the new entry. Torn: NVS drops an entry whose CRC fails, so the key stays absent.
		if (this.#power.beginOp("pref-write") === "torn") this.#cutNow("pref-write");
		(this.#domains[domain] ??= {})[key] = entry;
		this.#save();
		this.stats.setCount++;
		this.stats.bytesWritten += valueBytes(entry);
	}

	delete(domain: string, key: string): void {
		this.#power.assertOn();
		checkNames(domain, key);
		const outcome = this.#power.beginOp("pref-delete");
		// Torn: whether the erase landed depends on how far it got.
		if (outcome === "full" || this.#power.tearFraction() >= 0.5) {
			this.#remove(domain, key);
			this.#save();
		}
		this.stats.deletes++;
		if (outcome === "torn") this.#cutNow("pref-delete");
	}

	keys(domain: string): string[] {
		this.#power.assertOn();
		if (domain.length > maxNameLength) throw new Error("domain too long");
		return Object.keys(this.#domains[domain] ?? {});
	}

	/** What a set may still add: capacity less usedBytes(). */
	freeBytes(): number {
		return capacityBytes - this.usedBytes();
	}

	/** Approximate NVS bytes in use: one 32-byte entry per domain, per-entry header plus 32-byte spans of data. */
	usedBytes(): number {
		let total = 0;
		for (const keys of Object.values(this.#domains)) {
			total += entryBytes;
			for (const entry of Object.values(keys)) total += cost(entry);
		}
		return total;
	}

	#costOf(domain: string, key: string): number {
		const entry = this.#domains[domain]?.[key];
		return entry ? cost(entry) : 0;
	}

	#remove(domain: string, key: string): void {
		const keys = this.#domains[domain];
		if (!keys || !(key in keys)) return;
		delete keys[key];
		if (Object.keys(keys).length === 0) delete this.#domains[domain];
	}

	#cutNow(kind: string): never {
		this.#power.cut(kind);
		throw new PowerCutError();
	}

	/**
		One write at offset 0, over the whole file: no temp file and rename per set (a rename costs the host a
		journal commit, and a download makes dozens of sets). A shorter store is padded with spaces to the file's
		length, which JSON ignores, so the file parses whole whenever the process is killed.
	*/
	#save(): void {
		this.#dirty = true;
		if (this.#held) this.#held.hold(this);
		else this.flush();
	}

	/** Writes the store as it stands (the last of the sets held, when they were). */
	flush(): void {
		if (!this.#dirty) return;
		this.#dirty = false;
		const json = JSON.stringify(this.#domains);
		const bytes = Buffer.alloc(Math.max(Buffer.byteLength(json), this.#fileLength), 0x20);
		bytes.write(json);
		this.#file ??= new BoardFile(this.file, this.#held !== undefined);
		fs.writeSync(this.#file.fd, bytes, 0, bytes.length, 0);
		this.#fileLength = bytes.length;
	}
}

function checkNames(domain: string, key: string): void {
	if (domain.length > maxNameLength) throw new Error("domain too long");
	if (key.length > maxNameLength) throw new Error("key too long");
}

function encode(value: unknown): StoredEntry {
	switch (typeof value) {
		case "boolean":
			return { type: "boolean", value };
		case "number":
			if (!Number.isInteger(value)) throw new Error("float unsupported");
			if (value < -0x80000000 || value > 0x7fffffff) throw new Error("integer out of range");
			return { type: "integer", value };
		case "string":
			if (Buffer.byteLength(value, "utf8") > maxValueBytes) throw new Error("value too long");
			return { type: "string", value };
		case "object":
			if (value instanceof ArrayBuffer) {
				if (value.byteLength > maxValueBytes) throw new Error("value too long");
				return { type: "buffer", value: Buffer.from(value).toString("hex") };
			}
	}
	throw new Error("unsupported type");
}

function decode(entry: StoredEntry): PreferenceValue {
	if (entry.type !== "buffer") return entry.value;
	const bytes = Buffer.from(entry.value as string, "hex");
	// A fresh ArrayBuffer, as Moddable's get returns: the caller may keep or change it.
	return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function valueBytes(entry: StoredEntry): number {
	switch (entry.type) {
		case "string": return Buffer.byteLength(entry.value as string, "utf8") + 1;
		case "buffer": return (entry.value as string).length / 2;
		default: return 0;
	}
}

function cost(entry: StoredEntry): number {
	return entryCost(valueBytes(entry));
}
