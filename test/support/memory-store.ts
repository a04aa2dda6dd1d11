// A KeyValueStore in memory for unit tests: copies buffers like the preference store, counts writes.

import type { KeyValueStore, StoredValue } from "../../src/platform/ports";

export class MemoryStore implements KeyValueStore {
	values = new Map<string, StoredValue>();
	writes = 0;
	get(key: string) { return this.values.get(key); }
	set(key: string, value: StoredValue) { this.writes++; this.values.set(key, value instanceof ArrayBuffer ? value.slice(0) : value); }
	delete(key: string) { this.values.delete(key); }
}
