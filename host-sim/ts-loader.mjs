import { transform } from "esbuild";
import { readFile, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";

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
	const source = await readFile(fileURLToPath(url), "utf8");
	const { code } = await transform(source, { loader: "ts", format: "esm", target: "node20", sourcemap: "inline", sourcefile: fileURLToPath(url) });
	return { format: "module", source: code, shortCircuit: true };
}
