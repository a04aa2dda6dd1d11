// Builds the device bundle that both engines run: src/ on the emulated Moddable modules, one script.

import { buildSync, version } from "esbuild";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

const modules = ["flash", "preference", "timer", "time", "http", "mqtt", "securesocket", "socket", "crypt", "modules", "net", "file", "rng"];
const aliases: Record<string, string> = { Resource: "resource" };
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const cached = new Map<string, string>();

/** Bundles built so far, by entry: a worker thread is handed its parent's instead of building them again. */
export function builtBundles(): Map<string, string> {
	return new Map(cached);
}

export function adoptBundles(bundles: Map<string, string>): void {
	for (const [entry, bundle] of bundles) cached.set(entry, bundle);
}

/** The bundle of device-entry.ts, or of another firmware entry (a test's, relative to the repository root, or absolute). */
export function deviceBundle(entry = "host-sim/device-entry.ts"): string {
	const known = cached.get(entry);
	if (known) return known;
	const alias: Record<string, string> = { "mc/config": here("../modules/config.ts"), "mc/ffi": here("../modules/ffi.ts") };
	for (const name of modules) alias[name] = here(`../modules/${name}.ts`);
	for (const [name, file] of Object.entries(aliases)) alias[name] = here(`../modules/${file}.ts`);
	const root = here("../..");
	const stored = join(cacheDir, `${createHash("sha256").update(`${version}\0${root}\0${entry}`).digest("hex")}.json`);
	let bundle = storedBundle(stored);
	if (bundle === undefined) {
		const result = buildSync({
			entryPoints: [isAbsolute(entry) ? entry : here(`../../${entry}`)],
			absWorkingDir: root,
			bundle: true,
			format: "iife",
			target: "es2022",
			write: false,
			metafile: true,
			alias,
			logLevel: "silent",
		});
		bundle = result.outputFiles[0].text;
		// The options here and the TypeScript settings shape the bundle too.
		const settings = [fileURLToPath(import.meta.url), join(root, "tsconfig.json")];
		storeBundle(stored, bundle, [...settings, ...Object.keys(result.metafile.inputs).map((input) => join(root, input))]);
	}
	cached.set(entry, bundle);
	return bundle;
}

/**
	Bundles built before, on disk with the hash of every file that went in: each CLI run and test file would
	otherwise spend a third of a second of esbuild on the same bundle. Any input changed, or gone: built again.
*/
const cacheDir = here("../../node_modules/.cache/xs-ota-bundle/");

const contentHash = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

function storedBundle(stored: string): string | undefined {
	try {
		const { inputs, bundle } = JSON.parse(fs.readFileSync(stored, "utf8")) as { inputs: Record<string, string>; bundle: string };
		for (const [file, hash] of Object.entries(inputs)) if (contentHash(file) !== hash) return undefined;
		return bundle;
	}
	catch {
		return undefined;
	}
}

function storeBundle(stored: string, bundle: string, inputs: string[]): void {
	try {
		// Written aside and renamed: test files start in parallel, and a reader must never see half a file.
		fs.mkdirSync(cacheDir, { recursive: true });
		pruneGone();
		const aside = `${stored}.${process.pid}.${Math.random().toString(36).slice(2)}`;
		fs.writeFileSync(aside, JSON.stringify({ inputs: Object.fromEntries(inputs.map((file) => [file, contentHash(file)])), bundle }));
		fs.renameSync(aside, stored);
	}
	catch {
		// A read-only checkout still runs, only slower.
	}
}

/**
	Deletes the bundles that can never be used again because a file that went into them is gone (a test's
	temporary entry, a removed clone): without this the cache would grow by one bundle every such run.
*/
function pruneGone(): void {
	for (const name of fs.readdirSync(cacheDir)) {
		if (!name.endsWith(".json")) continue;
		const file = join(cacheDir, name);
		try {
			const { inputs } = JSON.parse(fs.readFileSync(file, "utf8")) as { inputs: Record<string, string> };
			if (Object.keys(inputs).some((input) => !fs.existsSync(input))) fs.rmSync(file, { force: true });
		}
		catch {
			// Deleted meanwhile by another process, or not ours: left alone.
		}
	}
}
