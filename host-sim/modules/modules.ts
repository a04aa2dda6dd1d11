// The Moddable "modules" module: which optional modules this build has, and loading one at run time.
// The simulated board's build has "file" (as Moddable's Linux simulator build does, and the ESP32 one does not).
import { File } from "./file";

const available: { [name: string]: unknown } = { file: { File } };

export default class Modules {
	static has(name: string): boolean {
		return Object.prototype.hasOwnProperty.call(available, name);
	}

	static importNow(name: string): unknown {
		if (!Modules.has(name)) throw new Error(`module "${name}" not found`);
		return available[name];
	}
}
