// The simulated board's flash layout: a 4 MB ESP32 with two OTA app slots and no factory app
// (with otadata empty the bootloader then boots ota_0). boards/esp32/partitions.csv holds the same table.
// A 16 MB layout with two 6 MiB slots exists for images that do not fit 1.875 MiB (the benchmarks' 4 MiB).

export interface Partition {
	label: string;
	type: "app" | "data";
	subtype: string;
	offset: number;
	size: number;
	flags?: string;
}

export const flashSize = 0x400000;
/** The partition table itself lives at 0x8000..0x9000; partitions start after it. */
export const firstPartitionOffset = 0x9000;
const appAlignment = 0x10000;
const sectorAlignment = 0x1000;

export const defaultPartitions: readonly Partition[] = [
	{ label: "nvs", type: "data", subtype: "nvs", offset: 0x9000, size: 0x6000 },
	{ label: "otadata", type: "data", subtype: "ota", offset: 0xf000, size: 0x2000 },
	{ label: "phy_init", type: "data", subtype: "phy", offset: 0x11000, size: 0x1000 },
	{ label: "ota_0", type: "app", subtype: "ota_0", offset: 0x20000, size: 0x1e0000 },
	{ label: "ota_1", type: "app", subtype: "ota_1", offset: 0x200000, size: 0x1e0000 },
];

const largeFlashSize = 0x1000000;

export const largePartitions: readonly Partition[] = [
	...defaultPartitions.filter((p) => p.type === "data"),
	{ label: "ota_0", type: "app", subtype: "ota_0", offset: 0x20000, size: 0x600000 },
	{ label: "ota_1", type: "app", subtype: "ota_1", offset: 0x620000, size: 0x600000 },
];

export type BoardLayout = "4MB" | "16MB";

export const boardLayouts: Record<BoardLayout, { flashSize: number; partitions: readonly Partition[] }> = {
	"4MB": { flashSize, partitions: defaultPartitions },
	"16MB": { flashSize: largeFlashSize, partitions: largePartitions },
};

const hex = (n: number) => "0x" + n.toString(16);

/** ESP-IDF partitions.csv text for `partitions`. */
export function toCsv(partitions: readonly Partition[]): string {
	const rows = partitions.map((p) => [p.label, p.type, p.subtype, hex(p.offset), hex(p.size), p.flags ?? ""]);
	const header = ["# Name", "Type", "SubType", "Offset", "Size", "Flags"];
	const widths = header.map((_, i) => Math.max(header[i].length, ...rows.map((r) => r[i].length)));
	// Pad every column but the last: ESP-IDF's parser trims whitespace around fields.
	const line = (cells: string[]) => cells.map((c, i) => i < cells.length - 1 ? (c + ",").padEnd(widths[i] + 2) : c).join("").trimEnd();
	return ["# ESP-IDF partition table for xs-ota: 4 MB flash, two OTA app slots", line(header), ...rows.map(line)].join("\n") + "\n";
}

/** Throws a short message naming the first rule `partitions` breaks. */
export function validatePartitions(partitions: readonly Partition[], size = flashSize): void {
	const labels = new Set<string>();
	for (const p of partitions) {
		if (labels.has(p.label)) throw new Error(`duplicate partition ${p.label}`);
		labels.add(p.label);
		if (p.offset % sectorAlignment || p.size % sectorAlignment || p.size <= 0) throw new Error(`partition ${p.label} not 4 KiB aligned`);
		if (p.type === "app" && p.offset % appAlignment) throw new Error(`app partition ${p.label} not 64 KiB aligned`);
		if (p.offset < firstPartitionOffset) throw new Error(`partition ${p.label} overlaps the partition table`);
		if (p.offset + p.size > size) throw new Error(`partition ${p.label} past end of flash`);
	}
	const sorted = [...partitions].sort((a, b) => a.offset - b.offset);
	for (let i = 1; i < sorted.length; i++) {
		if (sorted[i - 1].offset + sorted[i - 1].size > sorted[i].offset) throw new Error(`partitions ${sorted[i - 1].label} and ${sorted[i].label} overlap`);
	}
}

for (const layout of Object.values(boardLayouts)) validatePartitions(layout.partitions, layout.flashSize);
