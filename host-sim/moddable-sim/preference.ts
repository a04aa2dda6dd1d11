// "preference" for the Linux simulator (mcsim), in place of the SDK's desktop one, which cannot be preloaded.
// The SDK's reads its JSON file in a static class initializer, so in a preloaded build it runs while the
// modules are linked (on the build machine, where the file module cannot run) and its cache ends up an empty
// object in the read-only preloaded heap. JSON.stringify refuses preloaded objects ("read only value"), so its
// first save, which has already deleted and reopened the file, leaves it empty: nothing survives a relaunch.
//
// This one stores each value in a file of its own, as ESP32 NVS stores each key on its own: config.file.root +
// "preferences/<domain>/<key>", one type letter (s string, n number, b boolean, a ArrayBuffer) then the value
// (the buffer's bytes as they are). Nothing is cached: like the native NVS module on the chip, a get takes
// only the value it returns from the XS heap, and a set only what it writes. A set writes a new file aside then
// renames it over the old one, so a simulator killed mid-write keeps the previous value.
// Values are not checked here: platform/preferences.ts enforces the ESP32 NVS limits everywhere.

import { Directory, File, Iterator } from "file";
import config from "mc/config";

type Value = string | number | boolean | ArrayBuffer;

const aside = ".new";

function folder(domain: string): string {
	return `${(config.file as { root?: string } | undefined)?.root ?? "/tmp/"}preferences/${domain}/`;
}

export default class Preference {
	static set(domain: string, key: string, value: Value): void {
		const root = (config.file as { root?: string } | undefined)?.root ?? "/tmp/";
		const directory = folder(domain), next = directory + key + aside;
		try {
			Directory.create(root);
			Directory.create(root + "preferences/");
			Directory.create(directory);
			File.delete(next);
			const file = new File(next, true);
			if (value instanceof ArrayBuffer) file.write("a", value);
			else file.write(typeof value === "string" ? "s" : typeof value === "number" ? "n" : "b", String(value));
			file.close();
			File.rename(next, key);
		}
		catch (error) {
			trace(`preference: save failed: ${error}\n`);
		}
	}

	static get(domain: string, key: string): Value | undefined {
		const path = folder(domain) + key;
		try {
			if (!File.exists(path)) return undefined;
			const file = new File(path);
			const length = file.length;
			const kind = length ? file.read(String, 1) : "";
			const value: Value | undefined = kind === "a" ? file.read(ArrayBuffer, length - 1)
				: kind === "s" ? (length > 1 ? file.read(String, length - 1) : "")
				: kind === "n" ? Number(file.read(String, length - 1))
				: kind === "b" ? file.read(String, length - 1) === "true"
				: undefined;
			file.close();
			return value;
		}
		catch {
			trace(`preference: ${domain}/${key} unreadable\n`);
			return undefined;
		}
	}

	static delete(domain: string, key: string): void {
		try {
			File.delete(folder(domain) + key);
		}
		catch (error) {
			trace(`preference: delete failed: ${error}\n`);
		}
	}

	static keys(domain: string): string[] {
		const keys: string[] = [];
		try {
			for (const item of new Iterator(folder(domain)) as unknown as Iterable<{ name: string; length?: number }>)
				if (item.length !== undefined && !item.name.endsWith(aside)) keys.push(item.name);
		}
		catch {
			// no such domain yet
		}
		return keys;
	}
}
