// The simulated NVS's limits and what an entry costs it. The board's store enforces them; the device's
// preference module (in the engine) uses the same sums to know, without asking, that a set cannot fail for
// want of space.

export const maxNameLength = 15;
export const maxValueBytes = 4000;
/** Usable share of the 24 KB NVS partition: NVS keeps pages free for compaction and page headers. */
export const capacityBytes = Math.floor(0x6000 * 0.75);
/** One NVS entry: a domain (namespace) takes one, a value one plus its data in 32-byte spans. */
export const entryBytes = 32;

/** What a value of `valueBytes` bytes costs the store. */
export function entryCost(valueBytes: number): number {
	return entryBytes + Math.ceil(valueBytes / entryBytes) * entryBytes;
}
