// "preference" for the Linux simulator (mcsim), in place of the SDK's desktop one, which cannot be preloaded.
// The SDK's reads its JSON file in a static class initializer, so in a preloaded build it runs while the
// modules are linked (on the build machine, where the file module cannot run) and its cache ends up an empty
// object in the read-only preloaded heap. JSON.stringify refuses preloaded objects ("read only value"), so its
// first save, which has already deleted and reopened the file, leaves it empty: nothing survives a relaunch.
//
// This one keeps the same file and format (config.file.root + "modpreferences.json": { domain: { key: value } },
// an ArrayBuffer as { buffer: "1,2,3" }), reads it on first use, keeps the cache in RAM, and writes a new file
// aside then renames it over the old one, so a simulator killed mid-write keeps the previous contents.
// Values are not checked here: platform/preferences.ts enforces the ESP32 NVS limits everywhere.

import { Directory, File } from "file";
import config from "mc/config";

type Value = string | number | boolean | ArrayBuffer;
type Stored = string | number | boolean | { buffer: string };
type Domains = { [domain: string]: { [key: string]: Stored } | undefined };

const fileName = "modpreferences.json";

// Filled at run time by the first call, so it is never part of the preloaded heap.
let cache: Domains | undefined;

function root(): string {
	return (config.file as { root?: string } | undefined)?.root ?? "/tmp/";
}

function load(): Domains {
	if (cache) return cache;
	let loaded: Domains = {};
	const path = root() + fileName;
	try {
		if (File.exists(path)) {
			const file = new File(path);
			const text = file.length ? file.read(String) : "";
			file.close();
			const parsed: unknown = text ? JSON.parse(text) : undefined;
			if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) loaded = parsed as Domains;
		}
	}
	catch {
		trace("preference: modpreferences.json unreadable, starting empty\n");
	}
	cache = loaded;
	return loaded;
}

function save(domains: Domains): void {
	const directory = root();
	const next = directory + fileName + ".new";
	try {
		Directory.create(directory);
		File.delete(next);
		const file = new File(next, true);
		file.write(JSON.stringify(domains));
		file.close();
		File.rename(next, fileName);
	}
	catch (error) {
		trace(`preference: save failed: ${error}\n`);
	}
}

// "12,0,255" to bytes, one pass over the characters (no array of strings on the way).
function bytesOf(text: string): ArrayBuffer {
	let count = text.length ? 1 : 0;
	for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 44) count++;
	const bytes = new Uint8Array(count);
	let index = 0, value = 0;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (c === 44) {
			bytes[index++] = value;
			value = 0;
		}
		else value = value * 10 + (c - 48);
	}
	if (count) bytes[index] = value;
	return bytes.buffer;
}

export default class Preference {
	static set(domain: string, key: string, value: Value): void {
		const domains = load();
		const stored: Stored = value instanceof ArrayBuffer ? { buffer: new Uint8Array(value).toString() } : value;
		(domains[domain] ??= {})[key] = stored;
		save(domains);
	}

	static get(domain: string, key: string): Value | undefined {
		const stored = load()[domain]?.[key];
		if (stored && typeof stored === "object") return typeof stored.buffer === "string" ? bytesOf(stored.buffer) : undefined;
		return stored;
	}

	static delete(domain: string, key: string): void {
		const domains = load();
		const values = domains[domain];
		if (!values || values[key] === undefined) return;
		delete values[key];
		if (!Object.keys(values).length) delete domains[domain];
		save(domains);
	}

	static keys(domain: string): string[] {
		const values = load()[domain];
		return values ? Object.keys(values) : [];
	}
}
