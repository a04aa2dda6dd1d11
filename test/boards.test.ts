// The device build's manifest: every agent module preloaded, and one board folder per supported ESP32
// (partition table with two OTA slots, rollback on, the chip the image check expects), wired into the
// platforms mcconfig matches (-p esp32, -p esp32/esp32c3, …).

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { chipIdOf } from "../src/agent/image";
import { defaultPartitions, toCsv } from "../host-sim/board/partition-table";

const root = new URL("..", import.meta.url);
const json = (file: string) => JSON.parse(fs.readFileSync(new URL(file, root), "utf8"));
const manifest = json("manifest.json");
const boards = ["esp32", "esp32c3", "esp32s3", "esp32c6"];

/** Module names as manifest.json maps src/: "main", "agent/agent", "lib/crc32", … (every folder it maps as "name/*"). */
function agentModules(): string[] {
	const names = ["main"];
	const folders = Object.keys(manifest.modules).filter((key) => key.endsWith("/*")).map((key) => key.slice(0, -2));
	// A folder of src/ the manifest does not map would not be built for the device at all.
	const sourceFolders = fs.readdirSync(new URL("src/", root), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
	assert.equal(sourceFolders.filter((folder) => !["types", "native"].includes(folder)).sort(), [...folders].sort(), "src folders the manifest maps");
	for (const folder of folders)
		for (const file of fs.readdirSync(new URL(`src/${folder}/`, root)))
			if (file.endsWith(".ts") && !file.endsWith(".d.ts")) names.push(`${folder}/${file.slice(0, -3)}`);
	return names.sort();
}

const rows = (csv: string) => csv.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"))
	.map((line) => line.split(",").map((cell) => cell.trim()));

test("manifest: every agent module is preloaded, and only those", () => {
	assert.equal([...manifest.preload].sort(), agentModules());
});

test("device code: no RegExp is a module constant (preloaded into flash, XS's exec on one crashed the Moddable simulator)", () => {
	// Found on an HTTP resume in the desktop simulator with the C3 creation: a segfault in fx_RegExp_prototype_exec
	// while it built the match of a module-level RegExp that preloading had frozen into flash.
	const offenders: string[] = [];
	const walk = (folder: URL) => {
		for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
			if (entry.isDirectory()) walk(new URL(`${entry.name}/`, folder));
			else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
				for (const line of fs.readFileSync(new URL(entry.name, folder), "utf8").split("\n"))
					if (/^(export )?(const|let|var) \w+\s*(:[^=]+)?=\s*\/.+\/[dgimsuy]*;/.test(line)) offenders.push(`${entry.name}: ${line}`);
		}
	};
	walk(new URL("src/", root));
	assert.equal(offenders, []);
});

test("manifest: the simulator preloads its own flash, ffi and preference (the SDK's desktop preference cannot be)", () => {
	const lin = manifest.platforms.lin;
	assert.equal(lin.preload, ["flash", "mc/ffi", "preference"]);
	assert.is(lin.modules.preference, "./host-sim/moddable-sim/preference");
	assert.ok(!JSON.stringify(manifest.include).includes("files/preference"), "the SDK preference is included for esp32 only");
	assert.ok(json("boards/esp32-common.json").include.some((path: string) => path.includes("files/preference")));
});

test("manifest: Moddable's TLS offers no DHE_RSA suite (it cannot sign a client certificate under one)", () => {
	// With DHE_RSA offered, an OpenSSL server with an RSA key (as AWS IoT Core presents) picks it, and every mutual
	// TLS handshake fails on the device (README: Security, checked by hand).
	assert.is(manifest.config.tls.DHE_RSA, false);
});

test("ESP32 builds: the C helper finds ESP-IDF 6's PSA headers (folders mcconfig turns into -I)", () => {
	const folders: string[] = json("boards/esp32-common.json").modules["*"];
	for (const folder of ["mbedtls/mbedtls/tf-psa-crypto/include/", "mbedtls/port/include/", "mbedtls/port/psa_driver/include/", "esp_security/include/"])
		assert.ok(folders.includes(`$(IDF_PATH)/components/${folder}`), folder);
	const source = fs.readFileSync(new URL("src/native/ota_control.c", root), "utf8");
	assert.not.match(source, /#include\s+["<]mbedtls\/(ecdsa|ecp|bignum|rsa)\.h/, "private in Mbed TLS 4");
	assert.match(source, /#include "psa\/crypto.h"/);
});

test("manifest: each subplatform matches its own board before the esp32/* fallback", () => {
	const keys = Object.keys(manifest.platforms);
	for (const chip of boards.slice(1)) {
		assert.is(manifest.platforms[`esp32/${chip}`].include, `./boards/${chip}/manifest.json`);
		assert.ok(keys.indexOf(`esp32/${chip}`) < keys.indexOf("esp32/*"), `esp32/${chip} before esp32/*`);
	}
	assert.is(manifest.platforms.esp32.include, "./boards/esp32/manifest.json");
	assert.is(manifest.platforms["esp32/*"].include, "./boards/esp32/manifest.json");
	assert.ok(manifest.platforms["esp32/*"].warning);
	assert.is(manifest.config.chip, undefined, "the chip comes from the board");
});

for (const board of boards) {
	test(`boards/${board}: chip, partition table, sdkconfig`, () => {
		const boardManifest = json(`boards/${board}/manifest.json`);
		assert.is(boardManifest.config.chip, board);
		chipIdOf(boardManifest.config.chip);
		assert.is(boardManifest.include, "../esp32-common.json");
		assert.equal(boardManifest.build, { PARTITIONS_FILE: "./partitions.csv", SDKCONFIGPATH: "./" });

		// The table the simulated board and host-sim/moddable-sim/ffi.ts run.
		const table = rows(fs.readFileSync(new URL(`boards/${board}/partitions.csv`, root), "utf8"));
		assert.equal(table, rows(toCsv(defaultPartitions)));
		assert.equal(table.filter((row) => row[1] === "app").map((row) => row[2]), ["ota_0", "ota_1"]);
		assert.ok(table.some((row) => row[1] === "data" && row[2] === "ota"), "otadata");

		const sdkconfig = fs.readFileSync(new URL(`boards/${board}/sdkconfig.defaults`, root), "utf8").split("\n");
		for (const option of ["CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y", "CONFIG_PARTITION_TABLE_CUSTOM=y",
			"CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"partitions.csv\"", "CONFIG_ESPTOOLPY_FLASHSIZE_4MB=y"])
			assert.ok(sdkconfig.includes(option), `${board}: ${option}`);
	});
}

test("bench/ram: one simulator build per target, with the SDK target's heap sizes and the product's stack", () => {
	const creation = (target: string) => json(`bench/ram/${target}/manifest.json`).creation;
	// build/devices/esp32/targets/esp32c3, …/esp32s3 (and esp32c6: the same), and mcconfig's defaults for esp32.
	// No stack: the product's (manifest.json) applies, as it does over the target's on the device.
	assert.equal(creation("esp32c3"), { static: 94208, chunk: { initial: 1536, incremental: 512 }, heap: { initial: 512, incremental: 64 } });
	assert.equal(creation("esp32s3"), { static: 0, chunk: { initial: 78848, incremental: 0 }, heap: { initial: 4928, incremental: 0 } });
	assert.equal(creation("esp32"), { chunk: { initial: 32768, incremental: 1024 }, heap: { initial: 2048, incremental: 64 } });
	// README "RAM on the real runtime" says why 640 (the measured need of each path, with a margin).
	assert.equal(json("manifest.json").creation, { stack: 640 });
});

test.run();
