// A simulated board's persistent storage, one folder per board: board.json (chip and partition table),
// one .bin file per flash partition, and nvs.json for the preference store. Reopening the folder with a
// new PowerSupply is a power-on.

import * as fs from "node:fs";
import * as path from "node:path";
import { HeldWrites } from "./board-file";
import { FlashPartition } from "./flash-chip";
import { PreferenceStore } from "./nvs";
import { OtaData } from "./otadata";
import { boardLayouts, validatePartitions, type BoardLayout, type Partition } from "./partition-table";
import type { PowerSupply } from "./power";

export interface BoardConfig {
	chip: "esp32";
	flashSize: number;
	partitions: Partition[];
}

export interface Wear {
	/** 4 KiB sector erases. */
	flashErases: number;
	/** 64 KiB block erases. */
	flashBlockErases: number;
	flashWrites: number;
	/** Page programs (256-byte pages) the flash writes cost. */
	flashPagePrograms: number;
	flashBytes: number;
	preferenceSets: number;
	preferenceBytes: number;
	preferenceDeletes: number;
}

export function noWear(): Wear {
	return { flashErases: 0, flashBlockErases: 0, flashWrites: 0, flashPagePrograms: 0, flashBytes: 0, preferenceSets: 0, preferenceBytes: 0, preferenceDeletes: 0 };
}

export function addWear(total: Wear, more: Wear): void {
	for (const key of Object.keys(total) as (keyof Wear)[]) total[key] += more[key];
}

/** The file that makes a folder a board: its chip and partition table. */
export const boardFile = "board.json";

export class BoardStorage {
	readonly dir: string;
	readonly config: BoardConfig;
	/** The folder was created by this open: a board fresh from the factory. */
	readonly isFresh: boolean;
	readonly nvs: PreferenceStore;
	readonly otadata: OtaData;
	readonly #partitions: Map<string, FlashPartition>;
	readonly #held: HeldWrites | undefined;

	/**
		`layout` only matters when the folder is new; an existing board keeps the table in its board.json.
		`powered`: a powered board's storage, whose files stay open until close() and whose writes are held
		until the end of the turn (HeldWrites) or the next flush().
	*/
	static open(dir: string, power: PowerSupply, layout: BoardLayout = "4MB", powered = false): BoardStorage {
		const configFile = path.join(dir, boardFile);
		const isFresh = !fs.existsSync(configFile);
		let config: BoardConfig;
		if (isFresh) {
			fs.mkdirSync(dir, { recursive: true });
			const { flashSize, partitions } = boardLayouts[layout];
			config = { chip: "esp32", flashSize, partitions: partitions.map((p) => ({ ...p })) };
			fs.writeFileSync(configFile, JSON.stringify(config, null, "\t") + "\n");
		} else {
			config = JSON.parse(fs.readFileSync(configFile, "utf8")) as BoardConfig;
		}
		validatePartitions(config.partitions, config.flashSize);
		return new BoardStorage(dir, config, isFresh, power, powered);
	}

	private constructor(dir: string, config: BoardConfig, isFresh: boolean, power: PowerSupply, powered: boolean) {
		this.dir = dir;
		this.config = config;
		this.isFresh = isFresh;
		this.#partitions = new Map();
		const held = this.#held = powered ? new HeldWrites() : undefined;
		// NVS is modelled at the key/value level (nvs.json), every other partition as raw flash.
		for (const p of config.partitions) {
			if (p.subtype !== "nvs") this.#partitions.set(p.label, FlashPartition.open(dir, p.label, p.size, power, held));
		}
		this.nvs = PreferenceStore.open(dir, power, held);
		this.otadata = new OtaData(this.partition("otadata"));
	}

	/** Writes what is held: before anyone outside the board looks at its files. */
	flush(): void {
		this.#held?.flush();
	}

	/** Writes what is held and closes the files (a powered board's, at power-off). */
	close(): void {
		this.flush();
		for (const partition of this.#partitions.values()) partition.close();
		this.nvs.close();
	}

	/** Wear caused since this folder was opened: what the benchmarks count per MiB. */
	wear(): Wear {
		const wear = noWear();
		for (const partition of this.#partitions.values()) {
			wear.flashErases += partition.stats.erases;
			wear.flashBlockErases += partition.stats.blockErases;
			wear.flashWrites += partition.stats.writes;
			wear.flashPagePrograms += partition.stats.pagePrograms;
			wear.flashBytes += partition.stats.bytesWritten;
		}
		wear.preferenceSets = this.nvs.stats.setCount;
		wear.preferenceBytes = this.nvs.stats.bytesWritten;
		wear.preferenceDeletes = this.nvs.stats.deletes;
		return wear;
	}

	/** The names of the partition files (nvs.json aside); each is there once its partition has been written. */
	partitionFiles(): string[] {
		return [...this.#partitions.values()].map((partition) => path.basename(partition.file));
	}

	/** The raw flash partition labelled `label` (not nvs). */
	partition(label: string): FlashPartition {
		const found = this.#partitions.get(label);
		if (!found) throw new Error("can't find partition");
		return found;
	}

	/** OTA app slot `index` (0 → ota_0, 1 → ota_1). */
	appSlot(index: number): FlashPartition {
		const entry = this.config.partitions.find((p) => p.type === "app" && p.subtype === `ota_${index}`);
		if (!entry) throw new Error("can't find partition");
		return this.partition(entry.label);
	}
}
