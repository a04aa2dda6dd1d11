// Pairs of real executables for the patch benchmarks: the native binary an npm package ships, from two adjacent
// releases. `npm pack` fetches each release's tarball into bench/.cache/ (once; later runs read the cache), and
// `tar` takes the one file out. npm pack ignores a package's os and cpu fields, so this works on any host, where
// installing the packages (as devDependency aliases) would refuse a foreign platform. Offline, a pair is skipped
// with the reason, and the benchmarks go on without it.

import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BoardLayout } from "../host-sim/board/partition-table";
import { wrapAppImage } from "../host-sim/image";

export interface RealPair {
	label: string;
	packageName: string;
	from: string;
	to: string;
	/** The binary's path inside the package's tarball. */
	file: string;
	/** The smallest simulated board whose OTA slots hold the images. */
	layout: BoardLayout;
}

export const realPairs: RealPair[] = [
	{ label: "@parcel/watcher watcher.node", packageName: "@parcel/watcher-linux-x64-glibc", from: "2.5.4", to: "2.5.6", file: "package/watcher.node", layout: "4MB" },
	// 2.3 MB: more than the 1.875 MiB slots of boards/*/partitions.csv, so the 16 MB board's 6 MiB slots.
	{ label: "@rollup/rollup .node", packageName: "@rollup/rollup-linux-x64-gnu", from: "4.69.3", to: "4.70.0", file: "package/rollup.linux-x64-gnu.node", layout: "16MB" },
];

export const cacheDir = new URL("./.cache/", import.meta.url).pathname;

/** The pair's two binaries, each the code segment of an app image that carries its release as version. */
export type PairImages = { base: Uint8Array; next: Uint8Array; binaryBytes: [number, number] };

/** The pair's images, or why they could not be had. */
export function loadPair(pair: RealPair): PairImages | { skipped: string } {
	try {
		const [from, to] = [pair.from, pair.to].map((version) => binary(pair, version));
		return {
			base: wrapAppImage(from, { version: pair.from }),
			next: wrapAppImage(to, { version: pair.to }),
			binaryBytes: [from.length, to.length],
		};
	}
	catch (error) {
		return { skipped: `${pair.packageName} ${pair.from} → ${pair.to} skipped: ${(error as Error).message}` };
	}
}

function binary(pair: RealPair, version: string): Uint8Array {
	const dir = path.join(cacheDir, `${pair.packageName.replace("/", "+")}@${version}`);
	const file = path.join(dir, pair.file);
	if (!fs.existsSync(file)) {
		fs.mkdirSync(dir, { recursive: true });
		const npm = spawnSync("npm", ["pack", `${pair.packageName}@${version}`, "--pack-destination", dir, "--fetch-retries", "1"], { encoding: "utf8" });
		if (npm.status !== 0) {
			const why = npm.error?.message ?? npm.stderr.split("\n").find((line) => /error/i.test(line) && !/A complete log/.test(line)) ?? `exit ${npm.status}`;
			throw new Error(`npm pack ${pair.packageName}@${version} failed (is the npm registry reachable?): ${why.trim()}`);
		}
		const tarball = npm.stdout.trim().split("\n").pop()!;
		execFileSync("tar", ["xzf", path.join(dir, tarball), "-C", dir, pair.file]);
		fs.rmSync(path.join(dir, tarball));
	}
	return new Uint8Array(fs.readFileSync(file));
}
