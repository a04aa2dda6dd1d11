// The reboot warning: a preference flag (xs-ota/reboot, set by the app or by the MQTT command), or on the
// simulators a warning file. The file module is only in the simulator builds (the ESP32 build has no file
// system for it), so it is looked up at run time.

import Modules from "modules";
import type { KeyValueStore, RebootWarning } from "./ports";

interface FileModule {
	File: { exists(path: string): boolean; delete(path: string): boolean };
}

export const warningFlag = "reboot";

export class ModdableRebootWarning implements RebootWarning {
	#store: KeyValueStore;
	#path: string;
	#file: FileModule["File"] | undefined;

	constructor(store: KeyValueStore, path: string) {
		this.#store = store;
		this.#path = path;
		if (path && Modules.has("file")) this.#file = (Modules.importNow("file") as FileModule).File;
	}

	raised(): boolean {
		return this.#store.get(warningFlag) === true || (this.#file?.exists(this.#path) ?? false);
	}

	clear(): void {
		if (this.#store.get(warningFlag) !== undefined) this.#store.delete(warningFlag);
		if (this.#file?.exists(this.#path)) this.#file.delete(this.#path);
	}
}
