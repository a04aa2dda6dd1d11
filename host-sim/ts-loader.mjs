import { transform, version } from "esbuild";
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

// Transformed modules, by a hash of their path and text: every CLI run and test file loads the same hundred
// modules, and asking esbuild again for each costs most of a command's start-up.
const cacheDir = fileURLToPath(new URL("../node_modules/.cache/xs-ota-ts/", import.meta.url));
const options = { loader: "ts", format: "esm", target: "node20", sourcemap: "inline" };

async function exists(url) {
	try { return (await stat(fileURLToPath(url))).isFile(); } catch { return false; }
}

export async function resolve(specifier, context, next) {
	if ((specifier.startsWith(".") || specifier.startsWith("/")) && context.parentURL?.startsWith("file:")) {
		if (!/\.[cm]?[jt]s$/.test(specifier)) {
			for (const ending of [".ts", "/index.ts"]) {
				const url = new URL(specifier + ending, context.parentURL);
				if (await exists(url)) return { url: url.href, shortCircuit: true };
			}
		}
	}
	return next(specifier, context);
}

export async function load(url, context, next) {
	if (!url.endsWith(".ts")) return next(url, context);
	const file = fileURLToPath(url);
	const source = await readFile(file, "utf8");
	const key = createHash("sha256").update(`${version}\0${file}\0${source}`).digest("hex");
	const cached = `${cacheDir}${key}.js`;
	try {
		return { format: "module", source: await readFile(cached, "utf8"), shortCircuit: true };
	}
	catch {
		// Not transformed yet.
	}
	const { code } = await transform(source, { ...options, sourcefile: file });
	try {
		// Written aside and renamed: test files load modules in parallel, and a reader must never see half a file.
		await mkdir(cacheDir, { recursive: true });
		const aside = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
		await writeFile(aside, code);
		await rename(aside, cached);
	}
	catch {
		// A read-only checkout still runs, only slower.
	}
	return { format: "module", source: code, shortCircuit: true };
}
